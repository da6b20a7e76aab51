"""Weight initialisation schemes of the pytorch-CycleGAN-and-pix2pix reference (``init_weights``)."""

from __future__ import annotations

import torch.nn as nn
from torch.nn.utils import parametrize

SCHEMES = ("normal", "xavier", "kaiming", "orthogonal")
_CONV_LINEAR = (nn.modules.conv._ConvNd, nn.Linear)
_BATCH_NORMS = (nn.modules.batchnorm._BatchNorm,)


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every conv / transposed conv / linear weight and every batch-norm scale in place.

    Conv and linear weights: ``normal`` N(0, gain), ``xavier`` Xavier-normal with ``gain``, ``kaiming``
    Kaiming-normal (fan-in, ``gain`` unused), ``orthogonal`` with ``gain``; their biases 0. Batch-norm
    scales N(1, gain), shifts 0 (the reference does this for 2D BN only; here for every BN). For a weight
    under spectral normalisation the underlying (original) weight is initialised.

    Args:
        net: the module to initialise.
        init_type: one of ``normal``, ``xavier``, ``kaiming``, ``orthogonal``.
        gain: std for ``normal`` and BN, scale for ``xavier`` / ``orthogonal``.

    Returns:
        ``net`` (for chaining).
    """
    if init_type not in SCHEMES:
        raise ValueError(f"init_weights: init_type={init_type!r} is not allowed; allowed: {', '.join(SCHEMES)}")

    def init_module(m: nn.Module) -> None:
        if isinstance(m, _CONV_LINEAR):
            if parametrize.is_parametrized(m, "weight"):
                weight = m.parametrizations.weight.original
            else:
                weight = m.weight
            if init_type == "normal":
                nn.init.normal_(weight.data, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(weight.data, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(weight.data, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight.data, gain=gain)
            if m.bias is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif isinstance(m, _BATCH_NORMS) and m.affine:
            nn.init.normal_(m.weight.data, 1.0, gain)
            nn.init.constant_(m.bias.data, 0.0)

    net.apply(init_module)
    return net
