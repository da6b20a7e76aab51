"""Medical-format I/O: CT in (DICOM, NIfTI, NRRD, MHA) as MONAI ``MetaTensor`` in HU, and back out with
geometry intact (NIfTI/NRRD/MHA files, derived DICOM CT series). Conventions: ``docs/formats.md``.

The names below are imported on first use, so ``medgan.io.formats``, ``medgan.io.scans`` and
``medgan.io.layout`` (paths only) load without torch, MONAI or SimpleITK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_HOMES = {
    "DicomVolume": "dicom_read",
    "read_dicom": "dicom_read",
    "DicomHeaders": "headers",
    "DicomSeriesReader": "reader",
    "LoadCTd": "reader",
    "detect_format": "reader",
    "read_volume": "reader",
    "FORMATS": "formats",
    "WriteVerificationError": "writer",
    "output_format": "writer",
    "write_volume": "writer",
}
__all__ = [
    "FORMATS",
    "DicomHeaders",
    "DicomSeriesReader",
    "DicomVolume",
    "LoadCTd",
    "WriteVerificationError",
    "detect_format",
    "output_format",
    "read_dicom",
    "read_volume",
    "write_volume",
]

if TYPE_CHECKING:
    from medgan.io.dicom_read import DicomVolume, read_dicom
    from medgan.io.formats import FORMATS
    from medgan.io.headers import DicomHeaders
    from medgan.io.reader import DicomSeriesReader, LoadCTd, detect_format, read_volume
    from medgan.io.writer import WriteVerificationError, output_format, write_volume


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'medgan.io' has no attribute '{name}'")
    value = getattr(import_module(f"medgan.io.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
