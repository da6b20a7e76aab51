"""Output grids of super-resolution models.

A net with in-plane ``scale`` s turns an ``(X, Y, Z)`` grid into ``(s·X, s·Y, Z)``. For the result to overlay
its input in world coordinates, output voxel ``i'`` must sit at the centre of the ``i'``-th of the s
sub-voxels that split input voxel ``i' // s``. In input index units that centre is
``(i' + 0.5) / s - 0.5``: the spacing shrinks by s and the origin moves by ``(1 - s) / (2 s)`` of an input
voxel (a quarter voxel towards the corner for s = 2), so the outer faces of the two grids coincide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def upscaled_affine(affine: np.ndarray | torch.Tensor, scales: Sequence[float]) -> np.ndarray:
    """Affine of the grid that splits every voxel of ``affine`` into ``scales[ax]`` parts along each axis.

    Args:
        affine: 4×4 voxel-index → world-mm matrix (RAS or LPS: the convention is kept as given).
        scales: up-sampling factor per voxel axis (X, Y, Z), each > 0; 1 leaves an axis unchanged,
            e.g. ``(2, 2, 1)`` for a 2D ×2 net run slice by slice.

    Returns:
        The 4×4 float64 affine of the fine grid; its voxel ``(i', j', k')`` has the world position of input
        index ``((i' + 0.5) / s_x - 0.5, (j' + 0.5) / s_y - 0.5, (k' + 0.5) / s_z - 0.5)``.
    """
    if len(scales) != 3 or not all(s > 0 for s in scales):
        raise ValueError(f"scales must be three factors > 0 (X, Y, Z), got {tuple(scales)}")
    a = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    fine_to_coarse = np.eye(4)
    for ax, s in enumerate(scales):
        fine_to_coarse[ax, ax] = 1.0 / s
        fine_to_coarse[ax, 3] = (1.0 - s) / (2.0 * s)
    return a @ fine_to_coarse
