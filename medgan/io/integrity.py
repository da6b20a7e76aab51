"""Refuse what would otherwise read as a silently wrong volume: NaN/Inf voxels, truncated or empty files.

ITK's NIfTI reader turns NaN and ±Inf into 0 (water) and fills a cut-short ``.nii``/``.nii.gz`` with
zeros without an error, and reads a header with 0 slices as one slice; these checks read the NIfTI
header with nibabel before ITK reads the voxels. NRRD and MHA keep NaN/Inf and fail on cut data in ITK
itself, and DICOM is decoded by pydicom; :func:`fill_non_finite` then covers every format alike.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from medgan.errors import ConfigError, InputError

_CHUNK = 1 << 20


def check_nan_fill(nan_fill: float | None) -> float | None:
    """``nan_fill`` if it is ``None`` or a finite number.

    Raises:
        ConfigError: a NaN/Inf fill value (it would not fill anything).
    """
    if nan_fill is not None and not math.isfinite(float(nan_fill)):
        raise ConfigError(f"--nan-fill: expected a finite HU value, got {nan_fill}")
    return nan_fill


def fill_non_finite(array: np.ndarray, path: str | Path, nan_fill: float | None) -> np.ndarray:
    """Refuse NaN/±Inf voxels, or replace them in place by ``nan_fill`` HU.

    Args:
        array: the voxels as read (float); modified in place when filled.
        path: the file, for the message.
        nan_fill: HU to put in place of NaN/±Inf voxels; ``None`` refuses them.

    Raises:
        InputError: ``array`` holds NaN/±Inf voxels and ``nan_fill`` is ``None``; the message gives the counts.
    """
    if not np.issubdtype(array.dtype, np.floating) or math.isfinite(float(array.sum(dtype=np.float64))):
        return array  # a finite sum means no NaN/Inf, without a mask the size of the volume
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if not count:  # the float64 sum overflowed: huge but finite values are the user's business
        return array
    if check_nan_fill(nan_fill) is None:
        nan = int(np.isnan(array).sum())
        raise InputError(
            f"'{path}' has {count} of {array.size} voxels that are not numbers ({nan} NaN, {count - nan} ±Inf); "
            "medgan will not guess their HU: pass --nan-fill HU (nan_fill=) to replace them"
        )
    array[bad] = nan_fill
    return array


def check_not_empty(shape: tuple[int, ...], path: str | Path) -> None:
    """Raise :class:`InputError` when a volume has no voxels (a 0-slice file)."""
    if 0 in shape or not shape:
        raise InputError(f"'{path}' holds no voxels: its size is {tuple(shape)} (a dimension of 0)")


def check_nifti(path: Path) -> np.ndarray | None:
    """Check a NIfTI file before ITK reads it; for float data, return its voxels with NaN/±Inf kept.

    Returns:
        ``None`` for integer data (ITK reads those faithfully), else the voxels as float32 in nibabel's
        axis order ``(i, j[, k, ...])`` = ITK's x, y, z, scaled like ITK scales them: ITK would turn
        NaN/±Inf into 0, so the caller takes the voxels from here and only the grid from ITK.

    Raises:
        InputError: a dimension of 0, or fewer bytes of image data than the header announces (a cut
            ``.nii``, or a ``.nii.gz`` whose gzip stream ends early or is corrupt).
    """
    import nibabel as nib

    compressed = str(path).lower().endswith(".gz")
    try:
        image = nib.load(str(path))
    except Exception:  # noqa: BLE001 - a header nibabel cannot parse: ITK's reader gives the error ...
        if compressed:
            _gzip_length(path, -1)  # ... unless the gzip stream is cut, which ITK reads without one
        return None
    header = image.header
    shape = tuple(int(n) for n in header.get_data_shape())
    check_not_empty(shape, path)
    dtype = header.get_data_dtype()
    offset = int(getattr(image.dataobj, "offset", header.get_data_offset()))  # where nibabel reads from
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    actual = _gzip_length(path, expected) if compressed else path.stat().st_size
    if actual < expected:
        raise InputError(
            f"'{path}' is truncated: {actual} bytes of {expected} (header and {'x'.join(map(str, shape))} "
            f"{dtype} voxels); the file was cut short"
        )
    if dtype.kind != "f":
        return None
    return np.asarray(image.dataobj, dtype=np.float32)


def _gzip_length(path: Path, expected: int) -> int:
    """The uncompressed length of a gzip file.

    The gzip trailer stores the length modulo 2**32: when it matches ``expected`` the file ends where a
    whole stream ends (a cut file ends in compressed data, which matches by chance once in 4e9). Anything
    else is decompressed to be sure.
    """
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() >= 18:
            fh.seek(-4, 2)
            if int.from_bytes(fh.read(4), "little") == expected % (1 << 32):
                return expected
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while block := fh.read(_CHUNK):
                total += len(block)
    except (EOFError, OSError, zlib.error) as err:
        raise InputError(f"'{path}' is truncated or corrupt: its gzip stream ends early or is damaged "
                         f"({' '.join(str(err).split()) or type(err).__name__})") from None
    return total
