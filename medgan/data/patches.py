"""Cutting samples out of whole volumes: slices, 2.5D slice stacks, padded random or centred patches.

Layouts: a volume is ``(1, X, Y, Z)`` (MONAI channel-first, X = columns, Y = rows, Z = slices). A 2D
sample is ``(C, X, Y)``; a 3D one ``(C, X, Y, Z)``. Padding and cropping use MONAI's ``SpatialPad`` and
``SpatialCrop`` so the layout and the pad mode are the same as in the rest of a MONAI pipeline. The
corner is drawn here rather than by ``RandSpatialCrop`` because a super-resolution target must be cut at
``scale`` times the source corner, and because the random state comes from the sampler's per-sample seed
(reproducible whatever the worker count).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.transforms import SpatialCrop, SpatialPad

AIR_HU = -1024.0


def stack_context(hu: torch.Tensor, start: int, stop: int, context: int) -> torch.Tensor:
    """Slices ``start..stop-1`` of ``hu`` ``(X, Y, Z)`` with ``context`` neighbours on each side as channels
    (the 2.5D input of training and of inference alike).

    Returns:
        ``(stop - start, 2·context + 1, X, Y)``; channel ``c`` holds slice ``z + c - context`` (ascending z),
        clamped to the volume, i.e. edge slices are repeated (replicate padding), so the first and last
        slices are usable centres.
    """
    z = torch.arange(start, stop).unsqueeze(1) + torch.arange(-context, context + 1).unsqueeze(0)
    z = z.clamp_(0, hu.shape[-1] - 1)
    return hu[:, :, z].permute(2, 3, 0, 1)  # (X, Y, S, C) -> (S, C, X, Y)


def slice_stack(volume: torch.Tensor, z: int, context: int = 0) -> torch.Tensor:
    """Slice ``z`` of ``volume`` (1, X, Y, Z) with its :func:`stack_context` neighbours: (2·context+1, X, Y)."""
    return stack_context(volume[0], z, z + 1, context)[0]


def map_slice(z: int, source_affine: torch.Tensor, target_affine: torch.Tensor, target_depth: int) -> int:
    """The target slice whose centre is nearest to source slice ``z`` in world space.

    Used when source and target have different slice counts (super-resolution with a thicker source
    slice): both affines are voxel -> mm, so the source slice position goes through the target's inverse.
    """
    point = torch.tensor([0.0, 0.0, float(z), 1.0], dtype=torch.float64)
    index = torch.linalg.solve(target_affine.to(torch.float64), source_affine.to(torch.float64) @ point)
    return int(min(max(round(float(index[2])), 0), target_depth - 1))


def pad_to(image: torch.Tensor, size: Sequence[int], value: float) -> torch.Tensor:
    """Pad ``image`` (C, *spatial) at the end of each axis up to at least ``size`` with ``value``.

    Padding at the end (not symmetric) keeps voxel (0, 0) in place, so a source patch and a target patch
    ``scale`` times larger stay aligned after both are padded.
    """
    size = [max(s, n) for s, n in zip(size, image.shape[1:])]
    if list(image.shape[1:]) == size:
        return image
    padded = SpatialPad(size, method="end", mode="constant", value=value)(image)
    return padded.as_tensor() if hasattr(padded, "as_tensor") else padded


def crop(image: torch.Tensor, start: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """The patch of ``image`` (C, *spatial) starting at ``start`` with ``size`` voxels per axis."""
    out = SpatialCrop(roi_start=list(start), roi_end=[s + n for s, n in zip(start, size)])(image)
    return out.as_tensor() if hasattr(out, "as_tensor") else out


def random_start(shape: Sequence[int], size: Sequence[int], rng: np.random.Generator) -> list[int]:
    """A uniformly random corner so that a ``size`` patch fits inside ``shape`` (0 where it does not fit)."""
    return [int(rng.integers(0, max(n - s, 0) + 1)) for n, s in zip(shape, size)]


def centre_start(shape: Sequence[int], size: Sequence[int]) -> list[int]:
    """The corner of the centred ``size`` patch inside ``shape`` (0 where it does not fit)."""
    return [max(n - s, 0) // 2 for n, s in zip(shape, size)]
