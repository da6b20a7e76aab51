"""The VGG-style discriminator of SRGAN (Ledig et al. 2017).

Eight 3×3 convs (64, 64↓, 128, 128↓, 256, 256↓, 512, 512↓; ↓ = stride 2), BN after all but the first,
LeakyReLU 0.2, then dense 1024 -> LeakyReLU -> dense 1. The paper's dense layer assumes 96×96 inputs
(6×6 after four halvings); here an adaptive average pool to ``pool_size`` in front of it lets the net take
any input size, and is the identity for the paper's 96×96.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from monai.networks.layers import Pool

from medgan.nets._layers import NORMS, conv, norm_layer, parse_choice, parse_int, parse_spatial_dims

NAME = "srgan_discriminator"


class SRGANDiscriminator(nn.Module):
    """Image -> one logit.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        feature_size: width of the first block (64 in the paper); blocks go ×1, ×2, ×4, ×8.
        dense_units: hidden units of the dense head (1024 in the paper).
        pool_size: spatial size fed to the dense head; default 6 in 2D (the paper's 96/16) and 3 in 3D
            (6³·512·1024 would be 113 M weights).
        norm: ``batch`` (paper), ``instance`` or ``none`` (use ``none`` with WGAN-GP, whose penalty is
            per-sample).

    Input ``(B, in_channels, *spatial)``, spatial >= 16; output logits ``(B, 1)``. With
    ``return_features=True`` also the activation of every conv block.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        feature_size: int = 64,
        dense_units: int = 1024,
        pool_size: int | None = None,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        d = parse_spatial_dims(spatial_dims, NAME)
        in_channels = parse_int(in_channels, "in_channels", NAME)
        ch = parse_int(feature_size, "feature_size", NAME)
        dense_units = parse_int(dense_units, "dense_units", NAME)
        if pool_size is None:
            pool_size = 6 if d == 2 else 3
        pool_size = parse_int(pool_size, "pool_size", NAME)
        norm = parse_choice(norm, "norm", NORMS, NAME)
        widths = [ch, ch, ch * 2, ch * 2, ch * 4, ch * 4, ch * 8, ch * 8]
        stages: list[nn.Module] = []
        prev = in_channels
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [
                conv(d)(prev, width, kernel_size=3, stride=1 + i % 2, padding=1, bias=i == 0 or norm != "batch")
            ]
            if i > 0:
                layers.append(norm_layer(norm, d, width))
            layers.append(nn.LeakyReLU(0.2, True))
            stages.append(nn.Sequential(*layers))
            prev = width
        self.stages = nn.ModuleList(stages)
        self.pool = Pool[Pool.ADAPTIVEAVG, d](pool_size)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(prev * math.prod([pool_size] * d), dense_units),
            nn.LeakyReLU(0.2, True),
            nn.Linear(dense_units, 1),
        )

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, C, *spatial)`` -> logits ``(B, 1)`` [, list of block activations]."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        logits = self.head(self.pool(x))
        return (logits, features) if return_features else logits
