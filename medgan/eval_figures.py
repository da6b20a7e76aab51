"""Figures of ``medgan-eval``: a comparison panel per case and box plots of per-case metrics per method.

Images are drawn in HU with the exam window; differences in HU with a symmetric colour map (both images
floored at -1024 HU, as in :func:`medgan.figures.panel_views`). A zoomed inset repeats the region of the
target with the most structure, so noise texture and lost edges can be seen at print size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medgan.figures import save_figure

INSET_FRACTION = 0.25  # side of the zoomed region, as a fraction of the slice side


def busiest_region(image: np.ndarray, window: tuple[float, float], size: int) -> tuple[int, int]:
    """Top-left ``(row, col)`` of the ``size x size`` region of ``image`` (rows = first axis) whose windowed
    gradient energy is largest: where edges and small structures are."""
    from scipy import ndimage

    unit = np.clip((np.asarray(image, dtype=np.float64) - window[0]) / (window[1] - window[0]), 0, 1)
    energy = ndimage.gaussian_gradient_magnitude(unit, 1.0) ** 2
    box = ndimage.uniform_filter(energy, size, mode="constant")
    half = size // 2
    inner = box[half:image.shape[0] - half, half:image.shape[1] - half] if min(image.shape) > size else box
    r, c = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return (int(r), int(c)) if min(image.shape) > size else (0, 0)


def save_comparison_panel(
    path: str | os.PathLike,
    views: Mapping[str, np.ndarray],
    window: tuple[float, float],
    scores: Mapping[str, Mapping[str, float]] | None = None,
    diff_range: float | None = None,
    title: str = "",
) -> Path:
    """Save one case's panel: top row each method and the target, bottom row each method minus the target.

    Args:
        path: PNG file.
        views: ``{method: (X, Y) HU slice}`` with ``"target"`` among them, in column order.
        window: ``(low, high)`` HU display window.
        scores: per method ``{"psnr", "ssim", ...}`` shown under its name (e.g. the case means).
        diff_range: +/- HU of the difference maps (default a tenth of the window width: noise stays visible).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if "target" not in views:
        raise ValueError("views needs a 'target' slice")
    methods = [m for m in views if m != "target"]
    columns = [*methods, "target"]
    diff_range = diff_range or (window[1] - window[0]) / 10
    target = views["target"].T  # (X, Y) -> rows = Y, the radiological view for LPS-ordered DICOM
    size = max(8, int(min(target.shape) * INSET_FRACTION))
    r0, c0 = busiest_region(target, window, size)
    fig, axes = plt.subplots(2, len(columns), figsize=(2.6 * len(columns), 5.6), squeeze=False)
    im = None
    for c, name in enumerate(columns):
        image = views[name].T
        ax = axes[0, c]
        ax.imshow(image, cmap="gray", vmin=window[0], vmax=window[1])
        label = name if not scores or name not in scores else (
            f"{name}\nSSIM {scores[name]['ssim']:.4f}  PSNR {scores[name]['psnr']:.2f}")
        ax.set_title(label, fontsize=8)
        inset = ax.inset_axes([0.62, 0.0, 0.38, 0.38])
        inset.imshow(image[r0:r0 + size, c0:c0 + size], cmap="gray", vmin=window[0], vmax=window[1])
        inset.set_xticks([])
        inset.set_yticks([])
        for side in inset.spines.values():
            side.set_edgecolor("yellow")
        ax.add_patch(matplotlib.patches.Rectangle((c0, r0), size, size, fill=False, edgecolor="yellow", lw=0.8))
        ax.set_axis_off()
        bottom = axes[1, c]
        bottom.set_axis_off()
        if name == "target":
            continue
        diff = np.maximum(image, -1024.0) - np.maximum(target, -1024.0)
        im = bottom.imshow(diff, cmap="RdBu_r", vmin=-diff_range, vmax=diff_range)
        bottom.set_title(f"{name} - target", fontsize=8)
    if methods:
        fig.colorbar(im, ax=axes[1, :].tolist(), fraction=0.02, pad=0.01, label="HU")
    fig.suptitle(title or f"window [{window[0]:g}, {window[1]:g}] HU; differences +/-{diff_range:g} HU", fontsize=9)
    return save_figure(fig, path)


def save_metric_boxplots(path: str | os.PathLike, rows: Sequence[Mapping[str, object]], methods: Sequence[str],
                         metrics: Sequence[str] = ("ssim", "psnr", "rmse")) -> Path:
    """Box plots of the per-case values of each metric, one box per method (``rows`` as
    :meth:`medgan.evaluation.Evaluation.case_means`)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    units = {"ssim": "SSIM", "psnr": "PSNR (dB)", "rmse": "RMSE (HU)"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        data = [[float(r[metric]) for r in rows if r["method"] == m] for m in methods]
        ax.boxplot(data, showmeans=True)
        for i, values in enumerate(data, start=1):  # every case as a dot: with few cases a box alone misleads
            ax.plot(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, ".", color="0.3", ms=4)
        ax.set_xticks(range(1, len(methods) + 1), list(methods), rotation=30, fontsize=8)
        ax.set_ylabel(units.get(metric, metric))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("per-case means (every case one dot; triangle = mean over cases)", fontsize=9)
    return save_figure(fig, path)
