"""SRResNet, the generator of SRGAN (Ledig et al. 2017).

9×9 conv (64) + PReLU -> 16 residual blocks (conv3, BN, PReLU, conv3, BN, skip) -> conv3 + BN + a long
skip -> one sub-pixel ×2 stage per factor of two (conv3 -> PixelShuffle -> PReLU) -> 9×9 conv. The
sub-pixel stages are MONAI's ``SubpixelUpsample`` (which also does 3D pixel shuffle and ICNR init,
Aitken et al. 2017, against checkerboard artefacts).

Do no harm by construction (``interpolation``, default ``"bspline"``): the net's output is a fixed
interpolation of its input (:class:`medgan.nets.upsample.InterpolateUp`, cubic B-spline in normalised HU)
plus the learned correction, and the last conv starts at zero, so the untrained net *is* B-spline
up-sampling and training only has to learn what the interpolation misses (the global residual of VDSR, Kim et al. 2016). A net
trained on one scanner then falls back towards interpolation, not towards arbitrary intensities, on another.
``interpolation: none`` is the paper's plain SRResNet.

``consistency: true`` makes every output agree exactly with its input under the degradation model of
``medgan-prepare sr`` (:func:`medgan.transforms.degrade.degrade_for_sr`: each input voxel is the mean of its
block of output voxels): the output is projected onto that set, ``y - up(blockmean(y) - x)`` with ``up``
the nearest-neighbour repeat (the orthogonal projection, since ``blockmean · up = I``). The truth of such a
pair lies in the set, so the projection never moves an estimate away from it (in HU, before any display
window), and the learned correction can no longer shift the mean of any block: no intensity bias, no
low-frequency change, only detail inside each block. Leave it off for real low/high-resolution pairs
whose point-spread function is not a block mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import SubpixelUpsample

from medgan.errors import ConfigError
from medgan.nets._layers import (
    NORMS,
    centre_channel,
    check_residual_channels,
    conv,
    norm_layer,
    parse_choice,
    parse_int,
    parse_spatial_dims,
)
from medgan.nets.upsample import MODES, InterpolateUp

NAME = "srresnet"
UPSCALES = (1, 2, 3, 4, 8)


def _parse_scale(scale: Any, dims: int) -> tuple[int, ...]:
    """An int (every axis) or one factor per spatial axis, each in :data:`UPSCALES`."""
    factors = [scale] * dims if isinstance(scale, int) and not isinstance(scale, bool) else scale
    if (not isinstance(factors, (list, tuple)) or len(factors) != dims
            or any(isinstance(f, bool) or f not in UPSCALES for f in factors)):
        raise ConfigError(f"net '{NAME}': scale={scale!r} is not allowed; allowed: one of {list(UPSCALES)} or "
                          f"{dims} of them (one per axis, e.g. [1, 1, 4] for thick -> thin slices)")
    return tuple(int(f) for f in factors)


def _stages(factor: int) -> list[int]:
    return [3] if factor == 3 else [2] * (factor.bit_length() - 1)


class _AxisShuffle(nn.Module):
    """Sub-pixel up-sampling with a factor per axis: conv to ``C·prod(f)`` channels, then rearrange
    ``(B, C·f1·f2[·f3], *n)`` -> ``(B, C, n1·f1, n2·f2[, n3·f3])``; ICNR-initialised (every sub-pixel starts as
    the same kernel, so the stage starts free of checkerboards, Aitken et al. 2017)."""

    def __init__(self, spatial_dims: int, channels: int, factors: Sequence[int]) -> None:
        super().__init__()
        self.factors = tuple(int(f) for f in factors)
        n = math.prod(self.factors)
        self.conv = conv(spatial_dims)(channels, channels * n, kernel_size=3, padding=1)
        with torch.no_grad():
            base = torch.empty_like(self.conv.weight[:channels])
            nn.init.kaiming_normal_(base)
            self.conv.weight.copy_(base.repeat_interleave(n, dim=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        b, n = y.shape[0], y.shape[2:]
        d = len(n)
        y = y.reshape(b, -1, *self.factors, *n)
        # (B, C, f1..fd, n1..nd) -> (B, C, n1, f1, ..., nd, fd)
        order = [0, 1] + [i for a in range(d) for i in (2 + d + a, 2 + a)]
        return y.permute(order).reshape(b, -1, *[k * f for k, f in zip(n, self.factors)])


class _ResidualBlock(nn.Module):
    def __init__(self, spatial_dims: int, channels: int, norm: str) -> None:
        super().__init__()
        bias = norm != "batch"
        self.body = nn.Sequential(
            conv(spatial_dims)(channels, channels, kernel_size=3, padding=1, bias=bias),
            norm_layer(norm, spatial_dims, channels),
            nn.PReLU(),
            conv(spatial_dims)(channels, channels, kernel_size=3, padding=1, bias=bias),
            norm_layer(norm, spatial_dims, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """Super-resolution residual net.

    Args:
        spatial_dims: 2 (in-plane SR of slices, as the paper) or 3 (isotropic SR of volumes).
        in_channels: input channels (1, or a 2.5D stack).
        out_channels: output channels.
        feature_size: feature maps (64 in the paper).
        num_res_blocks: residual blocks (16 in the paper).
        scale: 1 (same size, e.g. denoising), 2, 3, 4 or 8; one sub-pixel stage per factor of 2 (or one ×3).
            Or one factor per axis, e.g. ``[1, 1, 4]`` (3D: thick -> thin slices) or ``[2, 2, 4]``.
        norm: ``batch`` (paper) or ``none`` (EDSR's choice) or ``instance``.
        interpolation: ``bspline`` (default), ``cubic`` (Keys) or ``linear``: the output is this interpolation of the input
            (its centre slice for a 2.5D stack) plus the net's correction, which starts at exactly zero;
            ``none``: the paper's net, output = the net alone.
        consistency: project the output so that its block means equal the input (see the module
            docstring); needs ``in_channels == out_channels`` or a 2.5D centre slice.
        outer_kernel: kernel of the first and the last conv (9 in the paper; 3 costs 9x less at the
            high-resolution end and, with a zero-initialised last conv, bounds how far Adam's first
            steps can move the output: each step moves every weight by about ``lr``).

    Input ``(B, in_channels, *spatial)`` normalised; output ``(B, out_channels, *(spatial * scale))``,
    unbounded (no tanh, so the net can reach the ends of the normalised range).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        feature_size: int = 64,
        num_res_blocks: int = 16,
        scale: int = 4,
        norm: str = "batch",
        interpolation: str = "bspline",
        outer_kernel: int = 9,
        consistency: bool = False,
    ) -> None:
        super().__init__()
        d = parse_spatial_dims(spatial_dims, NAME)
        in_channels = parse_int(in_channels, "in_channels", NAME)
        out_channels = parse_int(out_channels, "out_channels", NAME)
        ch = parse_int(feature_size, "feature_size", NAME)
        num_res_blocks = parse_int(num_res_blocks, "num_res_blocks", NAME, minimum=0)
        norm = parse_choice(norm, "norm", NORMS, NAME)
        interpolation = parse_choice(interpolation, "interpolation", (*MODES, "none"), NAME)
        self.scales = _parse_scale(scale, d)
        isotropic = len(set(self.scales)) == 1
        self.scale: int | tuple[int, ...] = self.scales[0] if isotropic else self.scales
        k = parse_int(outer_kernel, "outer_kernel", NAME)
        if k % 2 == 0:
            raise ConfigError(f"net '{NAME}': outer_kernel={outer_kernel!r} must be odd")
        self.head = nn.Sequential(conv(d)(in_channels, ch, kernel_size=k, padding=k // 2), nn.PReLU())
        self.body = nn.Sequential(
            *[_ResidualBlock(d, ch, norm) for _ in range(num_res_blocks)],
            conv(d)(ch, ch, kernel_size=3, padding=1, bias=norm != "batch"),
            norm_layer(norm, d, ch),
        )
        if isotropic:  # the paper's stages (MONAI, ICNR): the state-dict layout of every earlier package
            self.upsample = nn.Sequential(*[
                nn.Sequential(SubpixelUpsample(d, ch, ch, scale_factor=f, apply_pad_pool=False), nn.PReLU())
                for f in _stages(self.scales[0])
            ])
        else:
            per_axis = [_stages(f) for f in self.scales]
            steps = max(len(p) for p in per_axis)
            stages = [[p[i] if i < len(p) else 1 for p in per_axis] for i in range(steps)]
            self.upsample = nn.Sequential(*[nn.Sequential(_AxisShuffle(d, ch, f), nn.PReLU()) for f in stages])
        self.tail = conv(d)(ch, out_channels, kernel_size=k, padding=k // 2)
        self.out_channels = out_channels
        self.base: InterpolateUp | None = None
        if interpolation != "none":
            check_residual_channels(in_channels, out_channels, NAME)
            self.base = InterpolateUp(self.scales, interpolation)
            # zero correction at the start: the untrained net is the interpolation itself
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
        if not isinstance(consistency, bool):
            raise ConfigError(f"net '{NAME}': consistency={consistency!r} must be true or false")
        if consistency:
            check_residual_channels(in_channels, out_channels, NAME)
        self.consistency = consistency

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial)`` -> ``(B, C_out, *(spatial * scales))``."""
        head = self.head(x)
        out = self.tail(self.upsample(head + self.body(head)))
        low = centre_channel(x, self.out_channels)
        if self.base is not None:
            out = self.base(low) + out
        if self.consistency:
            pool = F.avg_pool2d if out.ndim == 4 else F.avg_pool3d
            out = out - F.interpolate(pool(out, self.scales) - low, scale_factor=self.scales, mode="nearest")
        return out
