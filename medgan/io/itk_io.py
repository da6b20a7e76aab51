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
from medgan.io.integrity import check_nifti, check_not_empty

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
        NaN/±Inf voxels are returned as they are in the file (ITK alone would make them 0 in NIfTI: float
        NIfTI voxels are read with nibabel, the grid with ITK).

    Raises:
        InputError: unreadable, truncated or empty file, several components per voxel, not 2D/3D.
    """
    fmt = format_of_name(path)
    voxels = check_nifti(Path(path)) if fmt == "nifti" else None
    try:
        with _stderr_kept_quiet():
            image, size = _open(path, fmt, grid_only=voxels is not None)
    except RuntimeError as err:
        raise InputError(
            f"'{path}' is unreadable or truncated (or not a {fmt} file despite its name): {_itk_reason(err)}"
        ) from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"'{path}' has {image.GetNumberOfComponentsPerPixel()} components per voxel; a CT volume has 1"
        )
    if len(size) == 4 and size[3] == 1:
        # a 3D scan saved with a singleton time axis (common for NIfTI from converters): drop that axis
        image, size = sitk.Extract(image, (*image.GetSize()[:3], 0), (0, 0, 0, 0)), size[:3]
    if len(size) not in (2, 3):
        raise InputError(f"'{path}' is {len(size)}D; medgan reads 2D or 3D scalar images")
    check_not_empty(size, path)
    affine = sitk_lps_affine(image)
    if voxels is not None:
        return voxels.reshape(size[0], size[1], size[2] if len(size) == 3 else 1), affine
    array = sitk.GetArrayFromImage(image)  # (Z, Y, X) or (Y, X)
    if array.ndim == 2:
        array = array[None]
    return zyx_to_xyz(array, np.float32), affine


def _open(path: Path, fmt: str | None, grid_only: bool) -> tuple[sitk.Image, tuple[int, ...]]:
    """The image and the size of the file's grid. The name decides the format: a DICOM or NIfTI file under
    another name is refused, not read by whichever ITK reader takes it (a DICOM read that way would skip
    every DICOM check). ``grid_only`` reads one voxel: the grid is all that is wanted from ITK."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(_IMAGE_IO.get(fmt or "", ""))
    if not grid_only:
        image = reader.Execute()
        return image, tuple(image.GetSize())
    reader.ReadImageInformation()
    size = tuple(reader.GetSize())
    reader.SetExtractSize([1] * len(size))
    return reader.Execute(), size


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
