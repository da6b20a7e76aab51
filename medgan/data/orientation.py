"""One voxel-axis order for everything the nets see: i -> patient Left, j -> Posterior, k -> Superior.

Scans arrive in any storage order (this project's own test CT is stored right-to-left and
anterior-to-posterior, a typical DICOM series left-to-right and top-down). A 2D net trained on slices of
one order and run on another sees mirrored anatomy, and figures come out upside down. The datasets
therefore reorient every volume to ``CANONICAL`` (a permutation and flips of voxel axes only: no
resampling, so HU values are untouched), and inference reorients its input the same way and back.
With this order an axial slice shown as ``array.T`` is in the radiological convention: anterior at the top,
the patient's right on the viewer's left.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from nibabel import orientations as ornt

#: voxel-axis codes in RAS world terms (nibabel convention)
CANONICAL = "LPS"


def _transform(affine_ras: np.ndarray | torch.Tensor, axcodes: str) -> np.ndarray:
    current = ornt.io_orientation(np.asarray(affine_ras, dtype=np.float64))
    return ornt.ornt_transform(current, ornt.axcodes2ornt(tuple(axcodes)))


def reoriented_geometry(shape: Sequence[int], affine_ras: np.ndarray | torch.Tensor,
                        axcodes: str = CANONICAL) -> tuple[tuple[int, int, int], torch.Tensor]:
    """Spatial shape and RAS affine after :func:`reorient`, computed from the header alone."""
    transform = _transform(affine_ras, axcodes)
    new_shape = tuple(int(shape[int(axis)]) for axis in np.argsort(transform[:, 0]))
    new_affine = np.asarray(affine_ras, dtype=np.float64) @ ornt.inv_ornt_aff(transform, tuple(shape))
    return new_shape, torch.as_tensor(new_affine, dtype=torch.float64)  # type: ignore[return-value]


def reorient(image: torch.Tensor, affine_ras: np.ndarray | torch.Tensor,
             axcodes: str = CANONICAL) -> tuple[torch.Tensor, torch.Tensor]:
    """Permute/flip the voxel axes of ``image`` (C, X, Y, Z) to ``axcodes``; returns (image, RAS affine).

    Every voxel keeps its world position: ``new_affine @ new_index == affine @ old_index``.
    """
    transform = _transform(affine_ras, axcodes)
    spatial = tuple(image.shape[1:])
    out = image
    for axis, (_, flip) in enumerate(transform):
        if flip < 0:
            out = out.flip(axis + 1)
    order = [int(a) for a in np.argsort(transform[:, 0])]
    out = out.permute(0, *(a + 1 for a in order)).contiguous()
    _, new_affine = reoriented_geometry(spatial, affine_ras, axcodes)
    return out, new_affine
