"""Image-quality metrics in HU windows, by the ldct-benchmark protocol (Eulig et al. 2024).

- SSIM and PSNR on images clipped to the exam window and scaled to [0, 1] (data range 1).
- RMSE on raw values clipped to [0, 2924] of ``HU + 1024`` (i.e. HU in [-1024, 1900]); reported in HU.

The per-image numbers come from MONAI's ``PSNRMetric``, ``SSIMMetric`` and ``RMSEMetric``; this module only
does the windowing and the per-case aggregation (every patient counts equally, as in the benchmark).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from monai.metrics import PSNRMetric, RMSEMetric, SSIMMetric

#: RMSE range of the benchmark, in HU (0..2924 after adding 1024).
RMSE_HU_RANGE = (-1024.0, 1900.0)


def window_to_unit(hu: torch.Tensor, window: tuple[float, float]) -> torch.Tensor:
    """Clip HU to ``window = (low, high)`` and scale to [0, 1]."""
    low, high = window
    return (hu.clamp(low, high) - low) / (high - low)


def _ssim_window(spatial: Sequence[int]) -> int:
    # MONAI's SSIM needs the Gaussian window to fit; 11 (the standard) unless the image is smaller
    size = min(11, *spatial)
    return size if size % 2 == 1 else size - 1


def windowed_metrics(pred_hu: torch.Tensor, target_hu: torch.Tensor, window: tuple[float, float]) -> dict[str, torch.Tensor]:
    """Per-image PSNR (dB), SSIM and RMSE (HU).

    Args:
        pred_hu: ``(B, 1, H, W)`` or ``(B, 1, D, H, W)`` in HU.
        target_hu: same shape, in HU.
        window: ``(low, high)`` HU of the exam window for PSNR/SSIM.

    Returns:
        ``{"psnr": (B,), "ssim": (B,), "rmse": (B,)}`` float32 tensors.
    """
    if pred_hu.shape != target_hu.shape:
        raise ValueError(f"pred_hu {tuple(pred_hu.shape)} and target_hu {tuple(target_hu.shape)} differ in shape")
    if pred_hu.ndim not in (4, 5):
        raise ValueError(f"expected (B, C, H, W) or (B, C, D, H, W), got shape {tuple(pred_hu.shape)}")
    pred, target = pred_hu.detach().float(), target_hu.detach().float()
    spatial_dims = pred.ndim - 2
    pred_u, target_u = window_to_unit(pred, window), window_to_unit(target, window)
    psnr = PSNRMetric(max_val=1.0, reduction="none")(pred_u, target_u)
    ssim = SSIMMetric(spatial_dims=spatial_dims, data_range=1.0, win_size=_ssim_window(pred.shape[2:]),
                      reduction="none")(pred_u, target_u)
    rmse = RMSEMetric(reduction="none")(pred.clamp(*RMSE_HU_RANGE), target.clamp(*RMSE_HU_RANGE))
    # identical images give PSNR = inf; cap it so means stay finite (100 dB ~ error below float precision)
    return {
        "psnr": psnr.reshape(-1).clamp(max=100.0),
        "ssim": ssim.reshape(len(pred), -1).mean(1),
        "rmse": rmse.reshape(-1),
    }


class WindowedMetrics:
    """Accumulates :func:`windowed_metrics` over batches; the result is the mean over cases of the
    per-case mean over images (each patient counts equally).

    Args:
        window: ``(low, high)`` HU of the exam window.
    """

    names = ("psnr", "ssim", "rmse")

    def __init__(self, window: tuple[float, float]) -> None:
        self.window = window
        self.reset()

    def reset(self) -> None:
        self._values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def update(self, pred_hu: torch.Tensor, target_hu: torch.Tensor,
               cases: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Add a batch (layouts as :func:`windowed_metrics`); ``cases`` names each image's case."""
        values = windowed_metrics(pred_hu, target_hu, self.window)
        cases = list(cases) if cases is not None else ["all"] * len(pred_hu)
        if len(cases) != len(pred_hu):
            raise ValueError(f"cases has {len(cases)} names for a batch of {len(pred_hu)}")
        for name in self.names:
            for case, v in zip(cases, values[name].tolist()):
                self._values[name][case].append(v)
        return values

    def compute(self) -> dict[str, float]:
        """``{"psnr", "ssim", "rmse", "cases", "images"}``; NaN metrics when nothing was added."""
        out: dict[str, float] = {}
        for name in self.names:
            per_case = [sum(v) / len(v) for v in self._values[name].values()]
            out[name] = sum(per_case) / len(per_case) if per_case else float("nan")
        out["cases"] = float(len(self._values["ssim"]))
        out["images"] = float(sum(len(v) for v in self._values["ssim"].values()))
        return out
