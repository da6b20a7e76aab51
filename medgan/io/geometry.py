"""Voxel-to-world geometry: LPS/RAS affines, SimpleITK grids and DICOM plane attributes.

Conventions (see ``docs/formats.md``):

* A volume in memory is indexed ``(X, Y, Z)``: X = DICOM column / ITK x, Y = DICOM row / ITK y,
  Z = slice.
* The affine maps voxel index ``(i, j, k, 1)`` to world millimetres. DICOM, ITK, NRRD and MHA use the
  patient's LPS frame (x → Left, y → Posterior, z → Superior); NIfTI and MONAI use RAS. The two differ by
  ``diag(-1, -1, 1, 1)`` on the left: ``A_ras = FLIP @ A_lps``.
* An ITK grid is ``origin + direction @ diag(spacing) @ index`` in LPS, so the LPS affine's columns are
  ``direction[:, c] * spacing[c]`` and its translation is the origin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

#: LPS <-> RAS: negate the first two world axes (its own inverse).
LPS_RAS_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_to_ras(affine: np.ndarray) -> np.ndarray:
    """Convert a 4×4 voxel→LPS-mm affine to voxel→RAS-mm (also RAS→LPS: the flip is an involution)."""
    return LPS_RAS_FLIP @ np.asarray(affine, dtype=np.float64)


ras_to_lps = lps_to_ras


def voxel_spacing(affine: object) -> np.ndarray:
    """Voxel size in mm along each array axis ``(x, y, z)``: the lengths of a 4×4 affine's first three
    columns (a NumPy array or a tensor, e.g. a ``MetaTensor``'s ``.affine``); ``None`` gives 1 mm each."""
    if affine is None:
        return np.ones(3)
    if hasattr(affine, "detach"):  # a torch tensor, possibly on a device
        affine = affine.detach().cpu().numpy()
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def affine_from_grid(origin: Sequence[float], spacing: Sequence[float], direction: np.ndarray) -> np.ndarray:
    """4×4 voxel→world affine from an ITK-style grid (all in the same world frame).

    Args:
        origin: world position (mm) of voxel (0, 0, 0).
        spacing: voxel size (mm) along each voxel axis.
        direction: 3×3 matrix whose column ``c`` is the unit world direction of voxel axis ``c``.
    """
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(direction, dtype=np.float64).reshape(3, 3) * np.asarray(spacing, dtype=np.float64)
    affine[:3, 3] = np.asarray(origin, dtype=np.float64)
    return affine


def grid_from_affine(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a 4×4 affine into ``(origin (3,), spacing (3,), direction (3, 3))``; inverse of
    :func:`affine_from_grid`. Spacing is the length of each column, so it is always positive."""
    affine = np.asarray(affine, dtype=np.float64)
    linear = affine[:3, :3]
    spacing = voxel_spacing(affine)
    if np.any(spacing <= 0):
        raise ValueError(f"affine has a zero-length voxel axis: spacing {spacing.tolist()}")
    return affine[:3, 3].copy(), spacing, linear / spacing


def sitk_lps_affine(image: sitk.Image) -> np.ndarray:
    """The 4×4 voxel→LPS affine of a 3D SimpleITK image (2D images get a 1 mm unit z axis)."""
    dim = image.GetDimension()
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dim, dim)
    origin, spacing = list(image.GetOrigin()), list(image.GetSpacing())
    if dim == 2:
        full = np.eye(3)
        full[:2, :2] = direction
        direction, origin, spacing = full, origin + [0.0], spacing + [1.0]
    return affine_from_grid(origin, spacing, direction)


def set_sitk_geometry(image: sitk.Image, affine_lps: np.ndarray) -> sitk.Image:
    """Give a 3D SimpleITK image the grid of a voxel→LPS affine (in place; returns the image)."""
    origin, spacing, direction = grid_from_affine(affine_lps)
    image.SetOrigin(tuple(float(v) for v in origin))
    image.SetSpacing(tuple(float(v) for v in spacing))
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return image


def dicom_plane_affine(
    position: Sequence[float],
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    slice_step: Sequence[float],
) -> np.ndarray:
    """Voxel→LPS affine of a stack of DICOM slices, indexed (column, row, slice).

    Args:
        position: ImagePositionPatient of the first slice (mm, centre of its first pixel).
        orientation: ImageOrientationPatient: the row direction (towards increasing column index)
            then the column direction (towards increasing row index), unit vectors in LPS.
        pixel_spacing: PixelSpacing as DICOM stores it, **[row spacing, column spacing]** = [dy, dx].
        slice_step: world vector (mm) from one slice's position to the next one's.
    """
    iop = np.asarray(orientation, dtype=np.float64)
    dy, dx = (float(v) for v in pixel_spacing)
    affine = np.eye(4)
    affine[:3, 0] = iop[:3] * dx
    affine[:3, 1] = iop[3:] * dy
    affine[:3, 2] = np.asarray(slice_step, dtype=np.float64)
    affine[:3, 3] = np.asarray(position, dtype=np.float64)
    return affine


def dicom_plane_attributes(affine_lps: np.ndarray) -> tuple[list[float], list[float], float, np.ndarray]:
    """DICOM plane attributes of a voxel→LPS affine; inverse of :func:`dicom_plane_affine`.

    Returns:
        ``(orientation, pixel_spacing, slice_spacing, step)``: ImageOrientationPatient (6 floats),
        PixelSpacing as **[row, column]** = [dy, dx], the distance between slices (mm) and the world step
        vector between slices. Slice ``k`` sits at ``affine[:3, 3] + k * step``.
    """
    affine = np.asarray(affine_lps, dtype=np.float64)
    col_x, col_y, step = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    dx, dy = float(np.linalg.norm(col_x)), float(np.linalg.norm(col_y))
    orientation = np.concatenate([col_x / dx, col_y / dy]).tolist()
    return orientation, [dy, dx], float(np.linalg.norm(step)), step.copy()


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal of a DICOM plane: row direction × column direction (LPS)."""
    iop = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    return normal / np.linalg.norm(normal)


def zyx_to_xyz(array: np.ndarray, dtype: np.dtype | type | None = None, block: int = 32) -> np.ndarray:
    """C-contiguous ``(X, Y, Z)`` copy of a ``(Z, Y, X)`` array (SimpleITK / stacked-DICOM order), cast to
    ``dtype`` on the way (default: keep the dtype).

    Copied in ``block``×``block`` in-plane tiles: a plain ``ascontiguousarray(a.transpose(2, 1, 0))``
    walks memory with a large stride and is ~1.7× slower on a 512²×64 CT here.
    """
    n_z, n_y, n_x = array.shape
    out = np.empty((n_x, n_y, n_z), dtype=array.dtype if dtype is None else dtype)
    for x0 in range(0, n_x, block):
        for y0 in range(0, n_y, block):
            out[x0:x0 + block, y0:y0 + block] = array[:, y0:y0 + block, x0:x0 + block].transpose(2, 1, 0)
    return out
