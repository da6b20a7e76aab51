"""Where a soft-tissue lesion can be: the search region of the ``soft`` map setting, from the scan alone.

On chest CT the normal voxels that outrank a soft-tissue lesion are not soft tissue: gas pockets (-950 HU
next to muscle), lung vessels against air, rib and vertebra edges, whose partial-volume rim on thick slices
looks like a +200 HU lesion. The search region keeps a voxel when

- its own HU is above :data:`AIR_HU` (gas and lung are not a soft-tissue finding);
- its *background* -- the in-plane median over a :data:`BACKGROUND_MM` disc, wide enough that a lesion of up
  to 15 mm covers a minority of it -- lies within :data:`SOFT_HU`;
- it is neither bone nor within :data:`RIM_MM` of bone. Bone is hysteresis-thresholded per axial slice
  (scikit-image): voxels above :data:`BONE_HU` ``[0]`` connected to a core above :data:`BONE_HU` ``[1]``.
  A +200 HU lesion in soft tissue stays below the core, so it is not taken for bone unless it touches it.

The map outside the region is not zeroed but down-weighted (``MapConfig.outside_weight``), so every voxel
is still ranked and a lesion reaching into fat or lung keeps a score.
"""

from __future__ import annotations

import numpy as np
import torch

from medgan.io.geometry import voxel_spacing

#: background HU range of soft tissue (fat to enhanced muscle)
SOFT_HU = (-200.0, 200.0)
#: voxels below this are gas or lung
AIR_HU = -400.0
#: bone: above the first value and connected (in-plane) to a core above the second
BONE_HU = (150.0, 450.0)
#: radius of the background median disc, mm
BACKGROUND_MM = 15.0
#: width of the partial-volume rim around bone left out, mm
RIM_MM = 3.0


def disc_footprint(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """``(2rx+1, 2ry+1, 1)`` bool in-plane disc of ``radius_mm`` (at least one voxel each way)."""
    rx, ry = (max(1, int(round(radius_mm / s))) for s in spacing[:2])
    gx, gy = np.ogrid[-rx:rx + 1, -ry:ry + 1]
    return ((gx / rx) ** 2 + (gy / ry) ** 2 <= 1.0)[:, :, None]


def soft_tissue_region(volume: torch.Tensor) -> torch.Tensor:
    """``(1, X, Y, Z)`` bool search region of a ``(1, X, Y, Z)`` HU scan (see the module docstring)."""
    from scipy.ndimage import binary_dilation, median_filter
    from skimage.filters import apply_hysteresis_threshold

    spacing = voxel_spacing(getattr(volume, "affine", None))
    hu = torch.as_tensor(volume).detach().cpu().numpy().reshape(volume.shape[-3:]).astype(np.float32)
    background = median_filter(hu, footprint=disc_footprint(BACKGROUND_MM, spacing), mode="nearest")
    region = (hu > AIR_HU) & (background > SOFT_HU[0]) & (background < SOFT_HU[1])
    bone = np.stack([apply_hysteresis_threshold(hu[..., k], *BONE_HU) for k in range(hu.shape[2])], axis=-1)
    rim = [max(0, int(round(RIM_MM / s))) for s in spacing[:2]]
    if any(rim):
        bone = binary_dilation(bone, np.ones((2 * rim[0] + 1, 2 * rim[1] + 1, 1), dtype=bool))
    return torch.from_numpy(region & ~bone)[None]
