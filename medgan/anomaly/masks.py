"""Anomaly masks: the map above its calibrated threshold, inside the body, grown to the lesion, without specks.

The map ranks blobs first (its opening keeps only the core of a lesion that holds the whole square), so
the voxels above the threshold are seeds rather than the lesion's outline. With ``grow`` each seed region
takes, within its axial slice, the connected voxels of the voxel residual (``|scan - restoration|``) of at
least ``grow`` times the region's peak residual: at 0.5 the lesion's half-maximum outline, which is what a
mask of the lesion means when its edge is blurred (the synthetic lesions' truth is where they reach half
their contrast). Slices are grown alone because on thick slices a small lesion lies in one, and no
further than one voxel from the seeds (the rim a lesion has around the opening's core): unbounded, the
false seeds grew along tissue edges. Measured in ``docs/anomaly.md``; off by default.

A lesion a radiologist wants flagged is a compact blob of several mm, while a thresholded voxel map is
speckled by noise and edges. Connected regions smaller than ``min_size_mm3`` are dropped with MONAI's
``RemoveSmallObjects`` (scikit-image underneath), measured in mm³ from the scan's spacing so the same
setting means the same on any grid.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from medgan.errors import ConfigError
from medgan.io.geometry import voxel_spacing


def grow_to_half_max(seeds: np.ndarray, residual: np.ndarray, grow: float) -> np.ndarray:
    """``(X, Y, Z)`` bool: ``seeds`` plus, per seed region and within its slices, the voxels connected (in-plane,
    face) to the region's peak whose ``residual`` is at least ``grow`` times that peak, at most one voxel
    (in-plane) from the seeds."""
    from scipy.ndimage import binary_dilation, find_objects, label

    grown = seeds.copy()
    labels, _ = label(seeds)
    for index, box in enumerate(find_objects(labels), start=1):
        inside = labels[box] == index
        local = np.where(inside, residual[box], -np.inf)
        for z in range(local.shape[2]):  # every slice of the region: its own peak
            if not inside[..., z].any():
                continue
            peak = np.unravel_index(np.argmax(local[..., z]), local.shape[:2])
            x, y, k = peak[0] + box[0].start, peak[1] + box[1].start, z + box[2].start
            level = grow * residual[x, y, k]
            if level <= 0:
                continue
            parts, _ = label(residual[..., k] >= level)
            grown[..., k] |= parts == parts[x, y]
    return grown & binary_dilation(seeds, np.ones((3, 3, 1), dtype=bool))


def anomaly_mask(anomaly_map: torch.Tensor, body: torch.Tensor, threshold: float, min_size_mm3: float = 0.0,
                 affine: torch.Tensor | np.ndarray | None = None, grow: float = 0.0,
                 residual: torch.Tensor | None = None) -> torch.Tensor:
    """``(1, X, Y, Z)`` bool: ``map > threshold`` inside ``body``, grown, regions under ``min_size_mm3`` removed.

    Args:
        anomaly_map: ``(1, X, Y, Z)`` map; its ``affine`` (a ``MetaTensor``'s) gives the spacing unless
            ``affine`` is passed (else 1 mm voxels).
        body: ``(1, X, Y, Z)`` bool region.
        threshold: voxel threshold in the map's unit.
        min_size_mm3: regions (face-connected) up to this volume are dropped, mm³ (rounded up to whole
            voxels); 0 keeps everything.
        grow: fraction of each seed region's peak ``residual`` its slice-wise growth reaches down to, in
            (0, 1]; 0 does not grow (module docstring).
        residual: ``(1, X, Y, Z)`` voxel residual to grow on (needed when ``grow > 0``).
    """
    if not min_size_mm3 >= 0:
        raise ConfigError(f"min_size_mm3: got {min_size_mm3}; must be >= 0")
    if not 0 <= grow <= 1:
        raise ConfigError(f"grow: got {grow}; must be in [0, 1] (0: no growth)")
    values = anomaly_map.as_tensor() if hasattr(anomaly_map, "as_tensor") else torch.as_tensor(anomaly_map)
    region = body.as_tensor() if hasattr(body, "as_tensor") else torch.as_tensor(body)
    mask = (values > threshold) & region.bool()  # plain tensors: MONAI takes the spacing from pixdim below
    if grow > 0 and bool(mask.any()):
        if residual is None:
            raise ConfigError("grow > 0 needs the voxel residual to grow on")
        data = torch.as_tensor(residual).detach().cpu().numpy().reshape(mask.shape[-3:])
        inside = region.bool().reshape(mask.shape[-3:]).numpy()
        mask = torch.from_numpy(grow_to_half_max(mask.reshape(mask.shape[-3:]).numpy(), data, grow) & inside)
        mask = mask.reshape(values.shape)
    if min_size_mm3 == 0 or not bool(mask.any()):
        return mask
    from monai.transforms import RemoveSmallObjects

    affine = getattr(anomaly_map, "affine", None) if affine is None else affine
    spacing = voxel_spacing(affine)
    with warnings.catch_warnings():  # MONAI passes skimage's deprecated min_size; the result is the same
        warnings.filterwarnings("ignore", message=".*min_size.*deprecated.*", category=FutureWarning)
        cleaned = RemoveSmallObjects(min_size=min_size_mm3, connectivity=1, by_measure=True, pixdim=spacing)(mask)
    return torch.as_tensor(cleaned).bool()
