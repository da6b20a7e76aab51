"""NIfTI / NRRD / MHA through SimpleITK, which keeps ITK's LPS geometry on every format it writes."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medgan.errors import InputError
from medgan.io.formats import SUFFIXES as ITK_SUFFIXES  # noqa: F401 - re-exported
from medgan.io.formats import format_of_name
from medgan.io.formats import format_of_name as itk_format_of  # noqa: F401 - re-exported
from medgan.io.geometry import set_sitk_geometry, sitk_lps_affine, zyx_to_xyz
from medgan.io.integrity import check_not_empty, nifti_non_finite

#: The ITK reader of each format, so the file name and the content must agree.
_IMAGE_IO = {"nifti": "NiftiImageIO", "nrrd": "NrrdImageIO", "mha": "MetaImageIO"}


def _itk_reason(err: RuntimeError) -> str:
    """ITK's reason without SimpleITK's source-file preamble, on one line."""
    text = " ".join(str(err).split())
    text = text.rsplit("ITK ERROR:", 1)[-1]
    if "[nrrd]" in text:  # teem nests its reasons: the innermost one is the last
        text = text.rsplit("[nrrd]", 1)[-1]
    text = re.sub(r"^\s*\w+\(0x[0-9a-f]+\):\s*", "", text)
    return text.strip()[-200:]


@contextmanager
def _stderr_kept_quiet() -> Iterator[None]:
    """Silence what ITK's C++ readers print on the process's stderr (MetaIO reports a cut file there,
    beside the exception) so that a refused input stays one line; the exception carries the reason."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_itk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a scalar 2D/3D image.

    Returns:
        ``(array, affine_lps)``: ``(X, Y, Z)`` float32 (2D images get Z = 1) and the 4×4 voxel→LPS affine.
        NaN/±Inf voxels are returned as they are in the file (ITK alone would make them 0 in NIfTI).

    Raises:
        InputError: unreadable, truncated or empty file, several components per voxel, not 2D/3D.
    """
    fmt = format_of_name(path)
    non_finite = nifti_non_finite(Path(path)) if fmt == "nifti" else None
    try:
        with _stderr_kept_quiet():
            # the name decides the format: a DICOM or NIfTI file under another name is refused, not
            # read by whichever ITK reader takes it (a DICOM read that way would skip every DICOM check)
            image = sitk.ReadImage(str(path), imageIO=_IMAGE_IO.get(fmt, ""))
    except RuntimeError as err:
        raise InputError(
            f"'{path}' is unreadable or truncated (or not a {fmt} file despite its name): {_itk_reason(err)}"
        ) from None
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
    try:
        sitk.WriteImage(image, str(path), useCompression=not str(path).lower().endswith(".nii"))
    except RuntimeError as err:  # ITK's I/O failures (a full disk) come as RuntimeError
        raise OSError(errno.EIO, " ".join(str(err).split())[-200:], str(path)) from None
