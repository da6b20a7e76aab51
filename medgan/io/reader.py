"""``read_volume``: any supported CT file or DICOM series → a MONAI ``MetaTensor`` in HU with a RAS affine."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.image_reader import ImageReader
from monai.transforms import MapTransform

from medgan.errors import InputError, MissingFileError
from medgan.io.dicom_read import read_dicom
from medgan.io.formats import DICOM_SUFFIXES, VOLUME_SUFFIXES, format_of_name
from medgan.io.geometry import lps_to_ras
from medgan.io.integrity import check_nan_fill, fill_non_finite
from medgan.io.itk_io import read_itk


def detect_format(path: str | Path) -> str:
    """``"dicom" | "nifti" | "nrrd" | "mha"`` of an existing input (folder → DICOM series).

    Raises:
        MissingFileError: the path does not exist.
        InputError: a file that is neither an ITK image name nor a DICOM file.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"input '{path}' does not exist")
    if path.is_dir():
        return "dicom"
    fmt = format_of_name(path)
    if fmt is not None:
        return fmt
    with open(path, "rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM" or path.suffix.lower() in (*DICOM_SUFFIXES, ""):
        return "dicom"
    allowed = ", ".join(VOLUME_SUFFIXES)
    raise InputError(f"input '{path}' is not a supported format: expected a DICOM file/folder or {allowed}")


def read_volume(path: str | Path, series_uid: str | None = None, nan_fill: float | None = None) -> MetaTensor:
    """Read a CT volume.

    Args:
        path: a DICOM series folder, a single DICOM file, an enhanced multi-frame DICOM file, or a
            ``.nii``/``.nii.gz``/``.nrrd``/``.nhdr``/``.mha``/``.mhd`` file.
        series_uid: SeriesInstanceUID to pick when a DICOM folder holds several series.
        nan_fill: HU to put in place of NaN/±Inf voxels; ``None`` (default) refuses a volume that has any.

    Returns:
        ``(1, X, Y, Z)`` float32 HU (X = DICOM column / ITK x, Y = row, Z = slice; a 2D image has Z = 1).
        ``.affine`` is the 4×4 float64 voxel→RAS-mm matrix; ``meta`` holds ``filename_or_obj``,
        ``source_format``, ``spatial_shape``, ``space`` = ``"RAS"`` and, for DICOM, ``dicom_headers``
        (:class:`medgan.io.DicomHeaders`, one header per slice in z order) and ``series_uid``.

    Raises:
        MissingFileError, InputError: see :func:`detect_format` and :func:`medgan.io.dicom_read.read_dicom`;
        also NaN/±Inf voxels without ``nan_fill``, a truncated or empty (0-slice) file.
        ConfigError: a non-finite ``nan_fill``.
    """
    path = Path(path)
    check_nan_fill(nan_fill)
    fmt = detect_format(path)
    extra: dict[str, Any] = {}
    if fmt == "dicom":
        dicom = read_dicom(path, series_uid)
        array, affine_lps = dicom.array, dicom.affine_lps
        extra = {"dicom_headers": dicom.headers, "series_uid": dicom.headers.series_uid}
    else:
        if series_uid is not None:
            raise InputError(f"series_uid applies to DICOM input only; '{path}' is {fmt}")
        array, affine_lps = read_itk(path)
    array = fill_non_finite(array, path, nan_fill)
    return _to_meta_tensor(array, lps_to_ras(affine_lps), path, fmt, extra)


def _to_meta_tensor(array: np.ndarray, affine_ras: np.ndarray, path: Path, fmt: str, extra: dict) -> MetaTensor:
    affine = torch.as_tensor(affine_ras, dtype=torch.float64)
    meta = {
        "filename_or_obj": str(path),
        "source_format": fmt,
        "spatial_shape": np.asarray(array.shape),
        "space": "RAS",
        "original_affine": affine.clone(),
        "original_channel_dim": 0,
        **extra,
    }
    return MetaTensor(torch.from_numpy(array[None]), affine=affine, meta=meta)


class DicomSeriesReader(ImageReader):
    """A MONAI ``ImageReader`` for DICOM series folders / files, for ``LoadImage(reader=DicomSeriesReader())``.

    It returns ``(X, Y, Z)`` HU with a RAS affine, like MONAI's ``ITKReader``. MONAI's ``LoadImage`` only
    accepts plain metadata, so the per-slice source headers are *not* included; use :class:`LoadCTd` (or
    :func:`read_volume`) when a DICOM series is to be written back as a derived series.

    Args:
        series_uid: SeriesInstanceUID to pick in folders that hold several series.
        nan_fill: HU for NaN/±Inf voxels (float pixel data); ``None`` refuses them.
    """

    def __init__(self, series_uid: str | None = None, nan_fill: float | None = None) -> None:
        super().__init__()
        self.series_uid = series_uid
        self.nan_fill = check_nan_fill(nan_fill)

    def verify_suffix(self, filename: Any) -> bool:
        names = filename if isinstance(filename, (list, tuple)) else [filename]
        try:
            return all(detect_format(n) == "dicom" for n in names)
        except (InputError, MissingFileError, OSError):
            return False

    def read(self, data: Any, **kwargs: Any) -> Any:
        names = data if isinstance(data, (list, tuple)) else [data]
        if len(names) != 1:
            raise InputError(f"DicomSeriesReader reads one series folder or file at a time, got {len(names)}")
        volume = read_dicom(Path(names[0]), kwargs.get("series_uid", self.series_uid))
        fill_non_finite(volume.array, names[0], self.nan_fill)
        return volume

    def get_data(self, img: Any) -> tuple[np.ndarray, dict]:
        affine = lps_to_ras(img.affine_lps)
        meta = {
            "affine": affine,
            "original_affine": affine.copy(),
            "spatial_shape": np.asarray(img.array.shape),
            "space": "RAS",
            "original_channel_dim": "no_channel",
            "source_format": "dicom",
            "series_uid": img.headers.series_uid,
        }
        return img.array, meta


class LoadCTd(MapTransform):
    """Load ``data[key]`` (a path) with :func:`read_volume` into a ``(1, X, Y, Z)`` HU ``MetaTensor``.

    Unlike ``LoadImaged`` it keeps the DICOM source headers (``meta["dicom_headers"]``) needed to write a
    derived series, and it reads every format medgan supports.

    Args:
        keys: keys of the paths to load.
        series_uid: SeriesInstanceUID to pick in folders that hold several series.
        nan_fill: HU for NaN/±Inf voxels; ``None`` refuses them.
        allow_missing_keys: skip absent keys instead of raising.
    """

    def __init__(self, keys: KeysCollection, series_uid: str | None = None, nan_fill: float | None = None,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.series_uid = series_uid
        self.nan_fill = check_nan_fill(nan_fill)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = read_volume(d[key], self.series_uid, self.nan_fill)
        return d
