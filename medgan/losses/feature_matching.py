"""Feature matching on the discriminator's intermediate activations (Salimans et al. 2016; pix2pixHD).

Needs no pretrained weights, so it is medgan's default content term where a VGG loss would be used
(SRGAN) on machines without internet. Get the features with ``d(x, return_features=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from medgan.errors import ConfigError


class FeatureMatchingLoss(nn.Module):
    """Mean over layers of the distance between D's features of fakes and of reals (reals detached).

    Args:
        weight: factor on the loss (pix2pixHD uses 10).
        criterion: ``l1`` (pix2pixHD) or ``l2``.

    ``forward(fake_features, real_features)``: two equally long lists of tensors ``(B, C_i, *spatial_i)``.
    """

    def __init__(self, weight: float = 1.0, criterion: str = "l1") -> None:
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise ConfigError(f"loss 'feature_matching': criterion={criterion!r} is not allowed; allowed: l1, l2")
        self.weight = float(weight)
        self.distance = F.l1_loss if criterion == "l1" else F.mse_loss

    def forward(self, fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(fake_features) != len(real_features) or not fake_features:
            raise ValueError(
                f"feature_matching: got {len(fake_features)} fake and {len(real_features)} real feature maps; "
                "need the same non-zero number"
            )
        terms = [self.distance(f, r.detach()) for f, r in zip(fake_features, real_features)]
        return self.weight * torch.stack(terms).mean()
