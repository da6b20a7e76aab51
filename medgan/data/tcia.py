"""Find the full-dose / low-dose image series of TCIA "LDCT-and-Projection-data" patients.

The image-domain download is laid out as ``ROOT/<patient>/<study>/<series>/*.dcm``, e.g.
``L067/08-13-2018-NA-NA-12345/1.000000-Full Dose Images-67890/1-001.dcm``. Patient ids are a letter for
the exam type (C chest, L abdomen ("liver"), N head ("neuro")) and three digits. Which series is which is
read from the DICOM ``SeriesDescription`` (0008,103E) ("Full Dose Images" / "Low Dose Images"), falling
back to the folder name; projection data folders are ignored. The dose fractions are the dataset's own
(McCollough et al. 2020, as used by the ldct-benchmark): chest 10 %, abdomen and head 25 %.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from medgan.errors import InputError, MissingFileError
from medgan.io.layout import is_dicom_file

EXAMS = {"C": "chest", "L": "abdomen", "N": "head"}
DOSE = {"C": 0.10, "L": 0.25, "N": 0.25}
LABELS = {"C": 0, "L": 1, "N": 2}
_PATIENT = re.compile(r"^[CLN]\d{3}$")


@dataclass(frozen=True)
class TciaPatient:
    """One patient: id (``L067``), exam letter (``L``), and the full-dose and low-dose series folders."""

    patient: str
    exam: str
    full: Path
    low: Path


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and is_dicom_file(f))


def series_kind(folder: Path, first_file: Path) -> str | None:
    """``"full"``, ``"low"`` or ``None`` (not an image series of interest) for one series folder."""
    import pydicom

    try:
        ds = pydicom.dcmread(
            first_file, stop_before_pixels=True, specific_tags=["SeriesDescription", "PatientID"]
        )
        text = str(ds.get("SeriesDescription", ""))
    except Exception:  # noqa: BLE001 - an unreadable header: fall back to the folder name
        text = ""
    for label in (text, folder.name):
        lowered = label.lower()
        if "projection" in lowered:
            return None
        if "full dose" in lowered or "full-dose" in lowered:
            return "full"
        if "low dose" in lowered or "low-dose" in lowered or "quarter dose" in lowered:
            return "low"
    return None


def _patient_of(folder: Path, root: Path) -> str | None:
    for part in folder.relative_to(root).parts:
        if _PATIENT.match(part):
            return part
    return None


def find_tcia_patients(root: str | os.PathLike) -> list[TciaPatient]:
    """Every patient under ``root`` with exactly one full-dose and one low-dose image series.

    Raises:
        MissingFileError: ``root`` does not exist.
        InputError: no DICOM series of LDCT patients under ``root``; a patient with a missing or a
            duplicate full/low series (the message lists them).
    """
    base = Path(root)
    if not base.is_dir():
        raise MissingFileError(f"--input: TCIA folder not found: {base}")
    found: dict[str, dict[str, list[Path]]] = {}
    for dirpath, _dirnames, _files in sorted(os.walk(base)):
        folder = Path(dirpath)
        patient = _patient_of(folder, base)
        if patient is None:
            continue
        files = _dicom_files(folder)
        if not files:
            continue
        kind = series_kind(folder, files[0])
        if kind:
            found.setdefault(patient, {"full": [], "low": []})[kind].append(folder)
    if not found:
        raise InputError(
            f"--input: no LDCT patient series under {base} (expected <C|L|N><3 digits>/<study>/<series> folders "
            "with SeriesDescription 'Full Dose Images' / 'Low Dose Images')"
        )
    problems = []
    for patient, series in sorted(found.items()):
        for kind in ("full", "low"):
            if len(series[kind]) != 1:
                problems.append(f"{patient}: {len(series[kind])} {kind}-dose series")
    if problems:
        raise InputError(
            f"--input: each patient needs one full-dose and one low-dose series; {'; '.join(problems)}"
        )
    return [TciaPatient(p, p[0], s["full"][0], s["low"][0]) for p, s in sorted(found.items())]
