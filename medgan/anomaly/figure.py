"""The per-case anomaly figure: one axial slice as image, heat-map overlay and mask contour (all in HU)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medgan.figures import save_figure
from medgan.io.geometry import ras_to_lps


def radiological_view(plane: np.ndarray, affine_ras: np.ndarray | None) -> np.ndarray:
    """An ``(X, Y)`` axial slice as ``(rows, columns)`` for display in the radiological convention: patient's
    anterior at the top, patient's right on the viewer's left (columns towards LPS +x, rows towards LPS +y).

    Each in-plane voxel axis is matched to the world axis (x or y) it is closest to, so stored order (an
    LR-flipped DICOM, a RAS-ordered NRRD) does not change what the figure shows.
    """
    plane = np.asarray(plane)
    if affine_ras is None:
        return plane.T
    lps = ras_to_lps(np.asarray(affine_ras, dtype=np.float64))[:3, :2]
    if abs(lps[1, 0]) > abs(lps[0, 0]):  # voxel axis 0 runs along world y: swap the axes
        plane, lps = plane.T, lps[:, ::-1]
    if lps[0, 0] < 0:
        plane = plane[::-1, :]
    if lps[1, 1] < 0:
        plane = plane[:, ::-1]
    return np.ascontiguousarray(plane.T)


def save_anomaly_figure(
    path: str | os.PathLike,
    image_hu: np.ndarray,
    map_hu: np.ndarray,
    mask: np.ndarray,
    *,
    window: tuple[float, float] = (-1350.0, 150.0),
    map_max_hu: float | None = None,
    affine_ras: np.ndarray | None = None,
    title: str = "",
    map_label: str = "|error| (HU)",
) -> Path:
    """Save a three-panel PNG of one axial slice.

    Args:
        path: PNG file (written through a temporary sibling and renamed).
        image_hu: ``(X, Y)`` slice in HU.
        map_hu: ``(X, Y)`` anomaly map of the slice in HU.
        mask: ``(X, Y)`` bool anomaly mask of the slice.
        window: ``(low, high)`` HU display window of the image (default: chest, C-600/W1500).
        map_max_hu: top of the heat-map colour scale (default: the slice's 99.9th percentile of the map).
        affine_ras: the volume's voxel -> RAS affine, to show the slice in the radiological convention
            (:func:`radiological_view`); ``None`` shows rows = Y, columns = X as stored.
        title: figure title.
        map_label: colour-bar label of the map (its unit).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    image, heat, marked = (radiological_view(a, affine_ras) for a in (image_hu, map_hu, mask))
    top = float(map_max_hu) if map_max_hu else float(np.percentile(heat, 99.9)) or 1.0
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), layout="constrained")
    for ax in axes:
        ax.imshow(image, cmap="gray", vmin=window[0], vmax=window[1])
        ax.set_axis_off()
    axes[0].set_title("image")
    overlay = np.ma.masked_where(heat <= 0.05 * top, heat)  # leave near-zero error see-through
    im = axes[1].imshow(overlay, cmap="inferno", vmin=0.0, vmax=top, alpha=0.7)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02, label=map_label)
    axes[1].set_title("anomaly map")
    if marked.any():
        axes[2].contour(marked.astype(float), levels=[0.5], colors=["#ff5a1a"], linewidths=1.2)
    axes[2].set_title(f"anomaly mask ({int(marked.sum())} voxels)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=90, tight=False)
