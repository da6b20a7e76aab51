"""Noise-level guard for residual denoisers: remove no more than the input's own noise explains.

A net trained on pairs with tens of HU of dose noise, shown a scan with little noise (a lossy-compressed
or high-dose image, 1-3 HU), still removes tens of HU of "noise", which is then anatomy and texture: the
output is worse than its input. The guard measures the input's noise sigma the way the simulator does
(:func:`medgan.transforms.noise_level.homogeneous_window_stats`:
plane-detrended sds of 15x15 windows of homogeneous soft tissue) and shrinks the predicted noise ``r``
where its local power exceeds that sigma's:

    r' = r * min(1, (k sigma)^2 / local_mean(r^2))

This is the linear minimum-mean-square-error weight of ``r`` if ``r`` holds the input's noise (power
``sigma^2`` at most) plus something uncorrelated with it (anatomy the net mistook for noise): with
``k = 1`` removing ``r'`` never increases the expected squared error over the input's. Where the net's
residual looks like noise of the measured level it is left untouched. A slice with too little soft tissue
to measure (fewer than 8 windows) is left to the net.

:func:`tissue_gate` is the stricter, opt-in companion (``tissue_gate`` of the residual nets, in training
and inference): the residual is kept only where the input's local mean lies in a HU band (e.g. soft tissue
and its edges, -400 to 500 HU); outside it (air, lung, bone) the net returns its input unchanged. An unpaired
denoiser whose only denoising signal is measured in soft tissue has nothing that tells it what noise is
elsewhere, and what it changed in air and lung early in training made the image worse.

Every step is a tensor operation (the median is a sort and a gather), so the guard is part of the traced
ONNX graph and runs in ``medgan-infer`` with either backend.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from medgan.transforms.noise_level import MIN_WINDOWS, WINDOW, homogeneous_window_stats


def _hu(source: torch.Tensor, hu_window: Sequence[float]) -> torch.Tensor:
    """The normalised input (window ``hu_window`` -> [-1, 1]) back in HU, float32."""
    return (source.float() + 1.0) * ((float(hu_window[1]) - float(hu_window[0])) / 2.0) + float(hu_window[0])


def noise_sigma_hu(hu: torch.Tensor, quantile: float = 1 / 3) -> torch.Tensor:
    """Noise sigma per slice of ``hu`` ``(B, H, W)``: the ``quantile`` of the soft-tissue window sds
    (structure only adds larger sds, so a low quantile sits at the noise mode); ``inf`` where fewer than
    ``MIN_WINDOWS`` windows qualify. Returns ``(B,)``."""
    mask, sd = homogeneous_window_stats(hu.float(), WINDOW, None)
    mask = mask.flatten(1)
    values = torch.where(mask, sd.flatten(1), torch.full_like(sd.flatten(1), float("inf")))
    ordered = torch.sort(values, dim=1).values
    count = mask.sum(1)
    index = ((count.float() - 1) * quantile).floor().clamp_min(0).long()
    sigma = ordered.gather(1, index[:, None])[:, 0]
    return torch.where(count >= MIN_WINDOWS, sigma, torch.full_like(sigma, float("inf")))


def source_sigma_hu(source: torch.Tensor, hu_window: Sequence[float]) -> torch.Tensor:
    """:func:`noise_sigma_hu` of the normalised centre input ``source`` ``(B, 1, H, W)`` (window
    ``hu_window``): ``(B,)`` HU, ``inf`` where it cannot be measured."""
    return noise_sigma_hu(_hu(source, hu_window)[:, 0])


def noise_level_channel(source: torch.Tensor, hu_window: Sequence[float],
                        sigma: torch.Tensor | None = None) -> torch.Tensor:
    """The measured noise level of the normalised centre input ``source`` ``(B, 1, H, W)`` as a constant
    channel ``(B, 1, H, W)``: ``log2(sigma / 1 HU) / 8`` (0 at 1 HU, 1 at 256 HU), with ``sigma`` from
    :func:`noise_sigma_hu`, or -1 where the slice (or training patch) has too little soft tissue to measure.
    A residual denoiser given it can tell a nearly clean scan from a noisy one, which the texture of a
    patch alone does not tell it reliably (a lossy-compressed slice: a few HU of noise over plateaus).
    ``sigma`` ``(B,)`` HU, if already measured."""
    with torch.no_grad():
        sigma = source_sigma_hu(source, hu_window) if sigma is None else sigma
        level = torch.log2(sigma.clamp(min=0.5, max=1e4)) / 8.0
        level = torch.where(torch.isfinite(sigma), level, torch.full_like(level, -1.0))
    return level[:, None, None, None].expand(source.shape[0], 1, *source.shape[2:]).float()


def guard_residual(source: torch.Tensor, residual: torch.Tensor, factor: float,
                   hu_window: Sequence[float], smooth: int = 9, sigma: torch.Tensor | None = None) -> torch.Tensor:
    """Shrink the predicted noise ``residual`` ``(B, C, H, W)`` of the normalised centre input ``source``
    ``(B, 1, H, W)`` (window normalisation ``hu_window`` -> [-1, 1]) to the input's measured noise level
    times ``factor`` (module docstring); ``smooth`` is the side of the local power's window; ``sigma``
    ``(B,)`` HU, if already measured (:func:`noise_sigma_hu`)."""
    half_range = (float(hu_window[1]) - float(hu_window[0])) / 2.0
    sigma = source_sigma_hu(source, hu_window) if sigma is None else sigma  # (B,) HU
    power = F.avg_pool2d((residual.float() * half_range) ** 2, smooth, stride=1, padding=smooth // 2,
                         count_include_pad=False)
    allowed = (factor * sigma)[:, None, None, None] ** 2
    weight = torch.clamp(allowed / power.clamp_min(1e-12), max=1.0)
    return residual * weight.to(residual.dtype)


def tissue_gate(source: torch.Tensor, hu_window: Sequence[float], hu_band: Sequence[float],
                smooth: int = 5) -> torch.Tensor:
    """1 where the local mean (``smooth`` pixels a side) of the normalised centre input ``source``
    ``(B, 1, *spatial)``, 2D or 3D, lies within ``hu_band`` ``(low, high)`` HU, else 0; the same shape.
    The local mean keeps the dose noise from flipping single pixels between classes."""
    pool = F.avg_pool3d if source.dim() == 5 else F.avg_pool2d
    mean = pool(_hu(source, hu_window), smooth, stride=1, padding=smooth // 2, count_include_pad=False)
    return ((mean >= float(hu_band[0])) & (mean <= float(hu_band[1]))).to(source.dtype)
