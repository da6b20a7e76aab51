"""The file formats medgan reads and writes, and the one table from file-name endings to format names.

Everything that asks "what format is this name?" or "what ending does a nifti output get?" asks here:
discovery of cases, the reader, the writer, ``medgan-infer``'s output names. No torch, no SimpleITK, so
the command-line front ends can use it for ``--help`` and argument checks.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Format names, as ``--format`` takes them. A DICOM output is a folder (a series), the others one file.
FORMATS: tuple[str, ...] = ("dicom", "nifti", "nrrd", "mha")

#: File-name endings of volume files and their format, longest first so ``.nii.gz`` wins over ``.nii``.
SUFFIXES: tuple[tuple[str, str], ...] = (
    (".nii.gz", "nifti"),
    (".nii", "nifti"),
    (".nrrd", "nrrd"),
    (".nhdr", "nrrd"),
    (".mha", "mha"),
    (".mhd", "mha"),
)
VOLUME_SUFFIXES: tuple[str, ...] = tuple(suffix for suffix, _ in SUFFIXES)

#: Headers whose voxels live in a second file beside them (``.raw``, ``.raw.gz``): copying the header
#: alone does not copy the scan.
DETACHED_HEADER_SUFFIXES: tuple[str, ...] = (".nhdr", ".mhd")

#: The ending a new output of each format gets (DICOM: none, it is a folder).
DEFAULT_SUFFIX: dict[str, str] = {"dicom": "", "nifti": ".nii.gz", "nrrd": ".nrrd", "mha": ".mha"}

#: Endings of single DICOM files (many DICOM files have none at all).
DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom", ".ima")


def volume_suffix(path: str | os.PathLike) -> str | None:
    """The recognised volume ending of ``path`` (``".nii.gz"``, ``".nhdr"`` ...), or ``None``."""
    name = Path(path).name.lower()
    return next((suffix for suffix in VOLUME_SUFFIXES if name.endswith(suffix)), None)


def format_of_name(path: str | os.PathLike) -> str | None:
    """``"nifti" | "nrrd" | "mha"`` from the file name, or ``None`` when it has no volume ending."""
    name = Path(path).name.lower()
    return next((fmt for suffix, fmt in SUFFIXES if name.endswith(suffix)), None)


def suffixes_of(fmt: str) -> tuple[str, ...]:
    """The endings that name a ``fmt`` file (empty for ``"dicom"``)."""
    return tuple(suffix for suffix, name in SUFFIXES if name == fmt)
