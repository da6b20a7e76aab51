"""Pixel losses ``l1``, ``l2``, ``charbonnier`` and the role-named ``cycle`` / ``identity``.

All take ``(pred, target)`` of the same shape (any layout, normalised units) and return
``weight * mean(...)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from medgan.errors import ConfigError


class L1Loss(nn.Module):
    """Mean absolute error (Pix2Pix's 100 × L1; robust to outliers)."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * F.l1_loss(pred, target)


class L2Loss(L1Loss):
    """Mean squared error (RED-CNN's loss; maximises PSNR, blurs)."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * F.mse_loss(pred, target)


class CharbonnierLoss(L1Loss):
    """``mean(sqrt((pred - target)^2 + eps^2))`` (Lai et al. 2017): L1 that is smooth at 0.

    Args:
        weight: factor on the loss.
        eps: smoothing, in normalised units.
    """

    def __init__(self, weight: float = 1.0, eps: float = 1e-3) -> None:
        super().__init__(weight)
        if not eps > 0:
            raise ConfigError(f"loss 'charbonnier': eps={eps!r} must be > 0")
        self.eps = float(eps)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * torch.sqrt((pred - target) ** 2 + self.eps**2).mean()


_CRITERIA = {"l1": L1Loss, "l2": L2Loss, "charbonnier": CharbonnierLoss}


class CycleLoss(nn.Module):
    """Cycle consistency ``||G_BA(G_AB(a)) - a||`` (Zhu et al. 2017; they weight it 10 per direction).

    Args:
        weight: factor on the loss.
        criterion: ``l1`` (CycleGAN), ``l2`` or ``charbonnier``.

    ``forward(reconstructed, original)``.
    """

    name = "cycle"

    def __init__(self, weight: float = 1.0, criterion: str = "l1") -> None:
        super().__init__()
        if criterion not in _CRITERIA:
            raise ConfigError(
                f"loss '{self.name}': criterion={criterion!r} is not allowed; allowed: {', '.join(_CRITERIA)}"
            )
        self.criterion = _CRITERIA[criterion](weight)

    def forward(self, reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return self.criterion(reconstructed, original)


class IdentityLoss(CycleLoss):
    """Identity ``||G_AB(b) - b||``: a generator fed an image of its output domain should leave it alone
    (CycleGAN weight 0.5 × cycle weight); keeps CT intensities from drifting.

    ``forward(mapped, original)``.
    """

    name = "identity"
