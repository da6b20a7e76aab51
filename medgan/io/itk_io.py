"""NIfTI / NRRD / MHA through SimpleITK, which keeps ITK's LPS geometry on every format it writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medgan.errors import InputError
from medgan.io.formats import SUFFIXES as ITK_SUFFIXES  # noqa: F401 - re-exported
from medgan.io.formats import format_of_name
from medgan.io.formats import format_of_name as itk_format_of  # noqa: F401 - re-exported
from medgan.io.geometry import set_sitk_geometry, sitk_lps_affine, zyx_to_xyz
from medgan.io.integrity import check_not_empty, nifti_non_finite


def read_itk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a scalar 2D/3D image.

    Returns:
        ``(array, affine_lps)``: ``(X, Y, Z)`` float32 (2D images get Z = 1) and the 4×4 voxel→LPS affine.
        NaN/±Inf voxels are returned as they are in the file (ITK alone would make them 0 in NIfTI).

    Raises:
        InputError: unreadable, truncated or empty file, several components per voxel, not 2D/3D.
    """
    non_finite = nifti_non_finite(Path(path)) if format_of_name(path) == "nifti" else None
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        detail = " ".join(str(err).split())[-200:]
        raise InputError(f"'{path}' is unreadable or truncated: {detail}") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"'{path}' has {image.GetNumberOfComponentsPerPixel()} components per voxel; a CT volume has 1"
        )
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        # a 3D scan saved with a singleton time axis (common for NIfTI from converters): drop that axis
        image = sitk.Extract(image, (*image.GetSize()[:3], 0), (0, 0, 0, 0))
    if image.GetDimension() not in (2, 3):
        raise InputError(f"'{path}' is {image.GetDimension()}D; medgan reads 2D or 3D scalar images")
    affine = sitk_lps_affine(image)
    array = sitk.GetArrayFromImage(image)  # (Z, Y, X) or (Y, X)
    if array.ndim == 2:
        array = array[None]
    check_not_empty(array.shape, path)
    array = zyx_to_xyz(array, np.float32)
    if non_finite is not None:
        mask, values = non_finite
        array[mask.reshape(array.shape)] = values
    return array, affine


def write_itk(array: np.ndarray, affine_lps: np.ndarray, path: Path) -> None:
    """Write ``(X, Y, Z)`` voxels with the grid of ``affine_lps``; the format follows the file name.

    The dtype is written as given (int16 for CT HU, float32 for maps). Compression is on: NRRD/MHA/NIfTI
    readers all handle gzip and CT compresses ~3×.
    """
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0)))
    set_sitk_geometry(image, affine_lps)
    sitk.WriteImage(image, str(path), useCompression=not str(path).lower().endswith(".nii"))
