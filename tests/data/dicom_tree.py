"""A small writer of CT DICOM series for tests, built on pydicom's CT_small.dcm header."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def write_series(
    folder: Path,
    patient_id: str,
    description: str,
    hu: np.ndarray,
    *,
    study_uid: str | None = None,
    spacing: tuple[float, float, float] = (0.8, 0.8, 2.0),
) -> Path:
    """Write ``hu`` (Z, rows, columns) as a CT series of ``Z`` files in ``folder``; returns ``folder``."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid = generate_uid(), study_uid or generate_uid()
    frame_uid = generate_uid()
    for k, plane in enumerate(hu):
        ds = copy.deepcopy(template)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PatientID = ds.PatientName = patient_id
        ds.SeriesDescription = description
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-50.0, -60.0, k * spacing[2]]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.asarray(plane, dtype=np.int16).tobytes()
        ds.save_as(folder / f"1-{k + 1:03d}.dcm", enforce_file_format=True)
    return folder


def tcia_tree(root: Path, patients: dict[str, int], size: int = 16, slices: int = 3) -> Path:
    """``root/<patient>/<study>/<n-Full Dose Images-x>`` and ``... Low Dose Images ...`` folders, TCIA style.

    ``patients`` maps a patient id to a seed; full dose is a disc phantom, low dose the same plus noise.
    """
    yy, xx = np.mgrid[:size, :size]
    disc = np.where((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2, 40, -1000)
    for patient, seed in patients.items():
        rng = np.random.default_rng(seed)
        full = np.stack([disc + 10 * k for k in range(slices)])
        low = full + rng.normal(0, 50, full.shape).round()
        study = root / patient / f"08-13-2018-NA-NA-{seed:05d}"
        study_uid = generate_uid()
        write_series(
            study / f"1.000000-Full Dose Images-{seed:05d}",
            patient,
            "Full Dose Images",
            full,
            study_uid=study_uid,
        )
        write_series(
            study / f"2.000000-Low Dose Images-{seed:05d}",
            patient,
            "Low Dose Images",
            low,
            study_uid=study_uid,
        )
    return root
