"""Training figures: the validation panel (input / output / target / difference) and the diversity curve.

Everything drawn is in HU. Files are written to a temporary sibling and renamed, so a viewer never sees
half a PNG. matplotlib is used with the non-interactive Agg canvas (no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medgan.io.atomic import staged_output


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100, tight: bool = True) -> Path:
    """Write the Matplotlib figure ``fig`` to ``path`` as PNG (``tight``: cropped to what is drawn) and close
    it. The file is written to a temporary sibling and renamed (:func:`medgan.io.atomic.staged_output`), so a
    viewer never sees half a PNG."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with staged_output(path) as staged:
            fig.savefig(staged, dpi=dpi, format="png", bbox_inches="tight" if tight else None)
    finally:
        plt.close(fig)
    return path


def centre_slice(image: np.ndarray) -> np.ndarray:
    """A 2D view of a ``(H, W)``, ``(C, H, W)`` or ``(C, D, H, W)`` array: the centre channel / slice."""
    image = np.asarray(image)
    while image.ndim > 2:
        image = image[image.shape[0] // 2]
    return image


def panel_views(row: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The 2D views of one panel row: centre slices, plus ``difference`` = output - target when a target
    is given. Below -1024 HU is air to every net and to the metrics, so both are floored there: the
    -3024 HU padding outside a scanner's field of view would otherwise swamp the difference column."""
    views = {k: centre_slice(v) for k, v in row.items()}
    if "target" in views:
        views["difference"] = np.maximum(views["output"], -1024.0) - np.maximum(views["target"], -1024.0)
    return views


def save_panel(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, np.ndarray]],
    window: tuple[float, float],
    diff_range: float | None = None,
    title: str = "",
) -> Path:
    """Save a grid: one row per sample, columns ``input``, ``output``, ``target`` and ``output - target``.

    Args:
        path: PNG file.
        rows: per sample, HU arrays under ``"input"``, ``"output"`` and optionally ``"target"`` (2D, or
            channel/volume arrays of which the centre slice is shown). Inputs of another size (SR) are shown
            at their own resolution.
        window: ``(low, high)`` HU display window of the image columns (with a colour bar).
        diff_range: +/- HU of the difference column (default: a quarter of the window width).
        title: figure title (e.g. the step).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("save_panel needs at least one row")
    diff_range = diff_range or (window[1] - window[0]) / 4
    columns = ["input", "output", "target", "difference"]
    fig, axes = plt.subplots(len(rows), 4, figsize=(14.5, 3.2 * len(rows)), squeeze=False)
    fig.subplots_adjust(wspace=0.45)  # room for each colour bar's "HU" label before the next image
    for r, row in enumerate(rows):
        views = panel_views(row)
        for c, name in enumerate(columns):
            ax = axes[r, c]
            ax.set_axis_off()
            if name not in views:
                continue
            is_diff = name == "difference"
            # arrays are (X, Y) in the file's index order: the transpose puts Y on rows, which is the radiological
            # view for DICOM's usual LPS index order (volumes stored RAS-ordered show rotated by 180 degrees)
            im = ax.imshow(views[name].T, cmap="RdBu_r" if is_diff else "gray",
                           vmin=-diff_range if is_diff else window[0], vmax=diff_range if is_diff else window[1])
            if r == 0:
                ax.set_title(name if not is_diff else "output - target")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="HU")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def mean_pairwise_distance(samples: np.ndarray) -> float:
    """Mean absolute difference over all pairs of ``samples`` ``(N, ...)``: 0 when every output is the same.

    A generator that collapses to one output for many inputs (or latent vectors) drives it towards 0.
    """
    flat = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    if len(flat) < 2:
        raise ValueError(f"need at least 2 samples for a pairwise distance, got {len(flat)}")
    total, pairs = 0.0, 0
    for i in range(len(flat) - 1):
        total += float(np.abs(flat[i + 1:] - flat[i]).mean(axis=1).sum())
        pairs += len(flat) - 1 - i
    return total / pairs


def save_diversity_plot(path: str | os.PathLike, steps: Sequence[int], values: Sequence[float],
                        warn_fraction: float) -> Path:
    """Plot diversity against step with the mode-collapse threshold (``warn_fraction`` x first value)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(list(steps), list(values), marker="o", label="mean pairwise distance")
    if len(values):
        ax.axhline(values[0] * warn_fraction, color="tab:red", linestyle="--",
                   label=f"collapse warning ({warn_fraction:g} x first)")
    ax.set_xlabel("step")
    ax.set_ylabel("diversity (normalised units)")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
