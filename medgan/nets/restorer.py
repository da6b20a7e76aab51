"""A restoration net for anomaly detection: a residual U-Net trained to undo coarse corruption of normal anatomy.

An autoencoder asked to copy its input learns to copy lesions too. Kascenas et al. 2022 ("Denoising
autoencoders for unsupervised anomaly detection in brain MRI", MIDL) instead add *coarse* noise (Gaussian
noise drawn on a low-resolution grid and upsampled, i.e. smooth blobs of random sign and size) to normal
images and train the net to restore them; at inference the net removes what does not look like normal
anatomy, and ``|scan - restoration|`` is the anomaly map. This module is that corruption wrapped around
:class:`medgan.nets.resunet.ResUNet` (2.5D input: the neighbouring slices are context, the centre slice is
restored). The corruption runs only in training mode; ``eval()`` restores its input as given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from medgan.errors import ConfigError
from medgan.nets.resunet import ResUNet


class AnomalyRestorer(ResUNet):
    """:class:`ResUNet` that corrupts its centre slice with coarse noise while training.

    Args:
        spatial_dims, in_channels, out_channels, channels, num_res_blocks: as :class:`ResUNet` (2D only).
        noise_std: largest standard deviation of the coarse noise, in normalised units (the default window
            maps 1 HU to 2/4095, so 0.1 ≈ 205 HU); each sample draws its own from ``U(0, noise_std)``.
        blob_px: ``[low, high]`` size of the noise blobs in pixels (the low-resolution grid step).
        context_prob: probability that the context slices get the same corruption (a lesion thicker than a
            slice), else only the centre slice is corrupted.
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1,
                 channels: Sequence[int] = (16, 32, 64), num_res_blocks: int = 1, noise_std: float = 0.1,
                 blob_px: Sequence[float] = (2.0, 8.0), context_prob: float = 0.5) -> None:
        if spatial_dims != 2:
            raise ConfigError(f"net 'anomaly_restorer': spatial_dims={spatial_dims!r}; only 2 (2D / 2.5D) is supported")
        super().__init__(spatial_dims, in_channels, out_channels, channels, num_res_blocks)
        blob = tuple(float(v) for v in blob_px) if isinstance(blob_px, Sequence) else ()
        if len(blob) != 2 or not 1.0 <= blob[0] <= blob[1]:
            raise ConfigError(f"net 'anomaly_restorer': blob_px={blob_px!r} must be [low, high] with 1 <= low <= high")
        if not noise_std > 0:
            raise ConfigError(f"net 'anomaly_restorer': noise_std={noise_std!r} must be > 0")
        if not 0 <= context_prob <= 1:
            raise ConfigError(f"net 'anomaly_restorer': context_prob={context_prob!r} must be in [0, 1]")
        self.noise_std, self.blob_px, self.context_prob = float(noise_std), blob, float(context_prob)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, H, W)`` plus coarse noise on the centre slice (and, sometimes, on its context)."""
        b, c, h, w = x.shape
        out = x.clone()
        mid = c // 2
        for i in range(b):
            step = float(torch.empty(()).uniform_(*self.blob_px))
            grid = torch.randn(1, 1, max(2, round(h / step)), max(2, round(w / step)), device=x.device)
            noise = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
            noise = noise * float(torch.empty(()).uniform_(0.0, self.noise_std))
            if c > 1 and float(torch.rand(())) < self.context_prob:
                out[i] += noise.to(x.dtype)
            else:
                out[i, mid] += noise.to(x.dtype)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.corrupt(x) if self.training else x)
