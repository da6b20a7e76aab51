"""Anomaly masks: the map above its calibrated threshold, inside the body, without specks.

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


def anomaly_mask(anomaly_map: torch.Tensor, body: torch.Tensor, threshold: float, min_size_mm3: float = 0.0,
                 affine: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """``(1, X, Y, Z)`` bool: ``map > threshold`` inside ``body``, regions under ``min_size_mm3`` removed.

    Args:
        anomaly_map: ``(1, X, Y, Z)`` map; its ``affine`` (a ``MetaTensor``'s) gives the spacing unless
            ``affine`` is passed (else 1 mm voxels).
        body: ``(1, X, Y, Z)`` bool region.
        threshold: voxel threshold in the map's unit.
        min_size_mm3: regions (face-connected) up to this volume are dropped, mm³ (rounded up to whole
            voxels); 0 keeps everything.
    """
    if not min_size_mm3 >= 0:
        raise ConfigError(f"min_size_mm3: got {min_size_mm3}; must be >= 0")
    values = anomaly_map.as_tensor() if hasattr(anomaly_map, "as_tensor") else torch.as_tensor(anomaly_map)
    region = body.as_tensor() if hasattr(body, "as_tensor") else torch.as_tensor(body)
    mask = (values > threshold) & region.bool()  # plain tensors: MONAI takes the spacing from pixdim below
    if min_size_mm3 == 0 or not bool(mask.any()):
        return mask
    from monai.transforms import RemoveSmallObjects

    affine = getattr(anomaly_map, "affine", None) if affine is None else affine
    matrix = np.eye(4) if affine is None else np.asarray(torch.as_tensor(affine).cpu(), dtype=np.float64)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    with warnings.catch_warnings():  # MONAI passes skimage's deprecated min_size; the result is the same
        warnings.filterwarnings("ignore", message=".*min_size.*deprecated.*", category=FutureWarning)
        cleaned = RemoveSmallObjects(min_size=min_size_mm3, connectivity=1, by_measure=True, pixdim=spacing)(mask)
    return torch.as_tensor(cleaned).bool()
