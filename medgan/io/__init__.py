"""Medical-format I/O: CT in (DICOM, NIfTI, NRRD, MHA) as MONAI ``MetaTensor`` in HU, and back out with
geometry intact (NIfTI/NRRD/MHA files, derived DICOM CT series). Conventions: ``docs/formats.md``."""

from medgan.io.dicom_read import DicomVolume, read_dicom
from medgan.io.headers import DicomHeaders
from medgan.io.reader import DicomSeriesReader, LoadCTd, detect_format, read_volume
from medgan.io.writer import FORMATS, WriteVerificationError, output_format, write_volume

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
