"""Image-quality metrics by the ldct-benchmark protocol (Eulig et al., Med Phys 2024), exactly as its code does.

Per 2D (axial) slice:

- the slice is windowed to the exam window and scaled to [0, 1] with DICOM's linear VOI function, as the
  benchmark's ``apply_center_width`` does: ``(x - (c - 0.5)) / (w - 1) + 0.5`` clipped to [0, 1], i.e.
  ``(HU - low) / (width - 1)`` with ``low = c - w/2`` (float32);
- SSIM = ``skimage.metrics.structural_similarity(target, pred, data_range=1.0)`` with scikit-image's defaults
  (7x7 uniform window, sample covariance, borders cropped);
- PSNR = ``10 log10(1 / MSE)`` on the same windowed images (capped at 100 dB for identical images);
- RMSE on ``HU + 1024`` clipped to [0, 2924], i.e. HU clipped to [-1024, 1900]; reported in HU.

A case's value is the mean over its slices, the summary the mean over cases (every patient counts equally).
``docs/evaluation.md`` explains the protocol and how it differs from other papers' choices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

#: RMSE range of the benchmark, in HU (0..2924 after adding 1024).
RMSE_HU_RANGE = (-1024.0, 1900.0)
#: PSNR of identical images (infinite) is reported as this, so means stay finite.
PSNR_CAP_DB = 100.0
#: scikit-image's default SSIM window (7x7, uniform); smaller odd windows only for slices under 7 pixels.
SSIM_WIN = 7
METRIC_NAMES = ("psnr", "ssim", "rmse")


def window_to_unit(hu: torch.Tensor | np.ndarray, window: tuple[float, float]) -> torch.Tensor | np.ndarray:
    """Window HU to [0, 1] as the benchmark does: ``clip((hu - low) / (high - low - 1), 0, 1)``.

    This is DICOM's linear VOI function ``(x - (c - 0.5)) / (w - 1) + 0.5`` for ``c = (low + high) / 2`` and
    ``w = high - low``: ``low`` maps to 0 and ``high - 1`` to 1.

    Args:
        hu: HU values, any shape (tensor or array; the type is kept).
        window: ``(low, high)`` HU, ``high - low`` = the window width (> 1).
    """
    low, high = float(window[0]), float(window[1])
    if not high - low > 1.0:
        raise ValueError(f"window: got {window}, the width high - low must be > 1 HU")
    scale = high - low - 1.0
    if isinstance(hu, torch.Tensor):
        return ((hu - low) / scale).clamp(0.0, 1.0)
    return np.clip((np.asarray(hu, dtype=np.float32) - np.float32(low)) / np.float32(scale), 0.0, 1.0)


def _ssim(target_u: np.ndarray, pred_u: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    small = min(target_u.shape)
    win = SSIM_WIN if small >= SSIM_WIN else max(3, small - (1 - small % 2))
    return float(structural_similarity(target_u, pred_u, data_range=1.0, win_size=win))


def slice_metrics(pred_hu: np.ndarray, target_hu: np.ndarray, window: tuple[float, float]) -> dict[str, float]:
    """PSNR (dB), SSIM and RMSE (HU) of one 2D slice pair ``(H, W)`` in HU, by the benchmark protocol."""
    pred = np.asarray(pred_hu, dtype=np.float32)
    target = np.asarray(target_hu, dtype=np.float32)
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"expected two 2D slices of one shape, got {pred.shape} and {target.shape}")
    pred_u, target_u = window_to_unit(pred, window), window_to_unit(target, window)
    mse = float(np.mean((target_u.astype(np.float64) - pred_u) ** 2))
    psnr = min(PSNR_CAP_DB, 10.0 * np.log10(1.0 / mse)) if mse > 0 else PSNR_CAP_DB
    diff = np.clip(pred, *RMSE_HU_RANGE).astype(np.float64) - np.clip(target, *RMSE_HU_RANGE)
    return {"psnr": float(psnr), "ssim": _ssim(target_u, pred_u), "rmse": float(np.sqrt(np.mean(diff**2)))}


def _as_slices(x: torch.Tensor) -> np.ndarray:
    # (B, C, X, Y) -> (B, X, Y); (B, C, X, Y, Z) -> (B, Z, X, Y): every axial slice is one image
    arr = x.detach().float().cpu().numpy()[:, 0]
    return arr[:, None] if arr.ndim == 3 else np.moveaxis(arr, -1, 1)


def windowed_metrics(pred_hu: torch.Tensor, target_hu: torch.Tensor, window: tuple[float, float]) -> dict[str, torch.Tensor]:
    """Per-image PSNR (dB), SSIM and RMSE (HU), each the mean of :func:`slice_metrics` over the image's axial
    slices (one slice for 2D images).

    Args:
        pred_hu: ``(B, 1, H, W)`` or ``(B, 1, X, Y, Z)`` in HU (axial slices along the last axis in 3D).
        target_hu: same shape, in HU.
        window: ``(low, high)`` HU of the exam window for PSNR/SSIM.

    Returns:
        ``{"psnr": (B,), "ssim": (B,), "rmse": (B,)}`` float32 tensors.
    """
    if pred_hu.shape != target_hu.shape:
        raise ValueError(f"pred_hu {tuple(pred_hu.shape)} and target_hu {tuple(target_hu.shape)} differ in shape")
    if pred_hu.ndim not in (4, 5):
        raise ValueError(f"expected (B, C, H, W) or (B, C, D, H, W), got shape {tuple(pred_hu.shape)}")
    pred, target = _as_slices(pred_hu), _as_slices(target_hu)
    out = np.zeros((len(pred), len(METRIC_NAMES)), dtype=np.float64)
    for b in range(len(pred)):
        per_slice = [slice_metrics(p, t, window) for p, t in zip(pred[b], target[b])]
        out[b] = [np.mean([m[k] for m in per_slice]) for k in METRIC_NAMES]
    return {k: torch.as_tensor(out[:, i], dtype=torch.float32) for i, k in enumerate(METRIC_NAMES)}


def mean_over_cases(values: Sequence[float], cases: Sequence[str]) -> float:
    """Mean over cases of the per-case mean of ``values`` (every patient counts equally); NaN when empty."""
    groups: dict[str, list[float]] = defaultdict(list)
    for case, v in zip(cases, values):
        groups[case].append(float(v))
    return float(np.mean([np.mean(v) for v in groups.values()])) if groups else float("nan")


class WindowedMetrics:
    """Accumulates :func:`windowed_metrics` over batches; the result is the mean over cases of the
    per-case mean over images (each patient counts equally).

    Args:
        window: ``(low, high)`` HU of the exam window.
    """

    names = METRIC_NAMES

    def __init__(self, window: tuple[float, float]) -> None:
        self.window = window
        self.reset()

    def reset(self) -> None:
        self._values: dict[str, list[float]] = {name: [] for name in self.names}
        self._cases: list[str] = []

    def update(self, pred_hu: torch.Tensor, target_hu: torch.Tensor,
               cases: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Add a batch (layouts as :func:`windowed_metrics`); ``cases`` names each image's case."""
        cases = list(cases) if cases is not None else ["all"] * len(pred_hu)
        if len(cases) != len(pred_hu):
            raise ValueError(f"cases has {len(cases)} names for a batch of {len(pred_hu)}")
        values = windowed_metrics(pred_hu, target_hu, self.window)
        for name in self.names:
            self._values[name].extend(values[name].tolist())
        self._cases.extend(cases)
        return values

    def compute(self) -> dict[str, float]:
        """``{"psnr", "ssim", "rmse", "cases", "images"}``; NaN metrics when nothing was added."""
        out = {name: mean_over_cases(self._values[name], self._cases) for name in self.names}
        out["cases"] = float(len(set(self._cases)))
        out["images"] = float(len(self._cases))
        return out
