"""PatchGAN and PixelGAN discriminators of Pix2Pix / CycleGAN (Isola et al. 2017; Zhu et al. 2017).

Layer for layer the ``NLayerDiscriminator`` and ``PixelDiscriminator`` of the authors'
pytorch-CycleGAN-and-pix2pix code: with ``num_layers=3`` every output logit sees a 70×70 input patch and
the 64-channel, instance-norm, 3-input-channel net has 2,764,737 parameters. MONAI's
``PatchDiscriminator(norm="INSTANCE", bias=True)`` gives the same count for that variant, but its single
``bias`` flag cannot express the batch-norm variant of Pix2Pix (bias on the first and last conv only), it
has no spectral norm, and its state-dict keys differ from the authors' checkpoints; hence this module.

Both return raw logits (no sigmoid): the adversarial losses in :mod:`medgan.losses` apply their own
activation. ``forward(x, return_features=True)`` also returns the activations after every LeakyReLU,
for the ``feature_matching`` loss.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from medgan.nets._layers import (
    NORMS,
    conv,
    conv_bias,
    norm_layer,
    parse_choice,
    parse_int,
    parse_spatial_dims,
)


class _TappedSequential(nn.Module):
    """Runs a flat ``nn.Sequential`` (the reference's layout, so its state-dict keys match) and can
    return the output of every LeakyReLU as a feature map."""

    def _run(
        self, body: nn.Sequential, x: torch.Tensor, return_features: bool
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for module in body:
            x = module(x)
            if return_features and isinstance(module, nn.LeakyReLU):
                features.append(x)
        return (x, features) if return_features else x


class PatchDiscriminator(_TappedSequential):
    """``num_layers`` stride-2 conv4 blocks (width doubling up to 8x), one stride-1 block, conv4 -> 1.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (Pix2Pix: source + target concatenated, e.g. 2 for CT).
        feature_size: base width (the reference's ``ndf``, 64).
        num_layers: stride-2 blocks; 3 gives the 70×70 receptive field, 1 a 16×16 one.
        norm: ``instance`` (CycleGAN), ``batch`` (Pix2Pix default) or ``none``.
        spectral_norm: wrap every conv in spectral normalisation (Miyato et al. 2018) to bound D's
            Lipschitz constant, a mode-collapse counter; usually with ``norm="none"``.

    Input ``(B, in_channels, *spatial)`` normalised, each side >= 3 * 2**num_layers (24 at 3); output logits
    ``(B, 1, *grid)``, one per overlapping patch.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        feature_size: int = 64,
        num_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        name = "patchgan"
        d = parse_spatial_dims(spatial_dims, name)
        in_channels = parse_int(in_channels, "in_channels", name)
        ch = parse_int(feature_size, "feature_size", name)
        num_layers = parse_int(num_layers, "num_layers", name, minimum=1)
        norm = parse_choice(norm, "norm", NORMS, name)
        bias = conv_bias(norm)
        sn = apply_spectral_norm if spectral_norm else (lambda m: m)

        layers: list[nn.Module] = [sn(conv(d)(in_channels, ch, kernel_size=4, stride=2, padding=1)),
                                   nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, num_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < num_layers else 1  # the last block keeps resolution (reference)
            layers += [
                sn(conv(d)(ch * prev, ch * mult, kernel_size=4, stride=stride, padding=1, bias=bias)),
                norm_layer(norm, d, ch * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(sn(conv(d)(ch * mult, 1, kernel_size=4, stride=1, padding=1)))
        self.model = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, C, *spatial)`` -> logits ``(B, 1, *patch_grid)``; with ``return_features`` also the
        activation after every LeakyReLU (shallow to deep)."""
        return self._run(self.model, x, return_features)


class PixelDiscriminator(_TappedSequential):
    """1×1 PatchGAN ("PixelGAN"): classifies every pixel on its own, penalising colour/intensity
    statistics but not structure.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        feature_size: base width (64 in the reference).
        norm: ``instance``, ``batch`` (reference default) or ``none``.
        spectral_norm: spectral normalisation on every conv.

    Input ``(B, in_channels, *spatial)``; output logits ``(B, 1, *spatial)``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        feature_size: int = 64,
        norm: str = "batch",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        name = "pixelgan"
        d = parse_spatial_dims(spatial_dims, name)
        in_channels = parse_int(in_channels, "in_channels", name)
        ch = parse_int(feature_size, "feature_size", name)
        norm = parse_choice(norm, "norm", NORMS, name)
        bias = conv_bias(norm)
        sn = apply_spectral_norm if spectral_norm else (lambda m: m)
        self.net = nn.Sequential(
            sn(conv(d)(in_channels, ch, kernel_size=1)),
            nn.LeakyReLU(0.2, True),
            sn(conv(d)(ch, ch * 2, kernel_size=1, bias=bias)),
            norm_layer(norm, d, ch * 2),
            nn.LeakyReLU(0.2, True),
            sn(conv(d)(ch * 2, 1, kernel_size=1, bias=bias)),
        )

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, C, *spatial)`` -> logits ``(B, 1, *spatial)`` [, the two hidden activations]."""
        return self._run(self.net, x, return_features)
