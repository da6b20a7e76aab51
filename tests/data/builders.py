"""Small inputs for the data tests, cut from the real chest CT: volume files and TCIA-like DICOM trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.uid import generate_uid

from tests.dicom_fixtures import load_chest, write_dicom_series


def write_case(image: sitk.Image, path: Path) -> Path:
    """Write ``image`` to ``path`` (format from the extension), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def noisy(image: sitk.Image, seed: int, sigma: float = 30.0) -> sitk.Image:
    """The image plus Gaussian noise, rounded to int16 HU (stands in for a low-dose scan)."""
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    arr += np.random.default_rng(seed).normal(0, sigma, arr.shape)
    out = sitk.GetImageFromArray(np.round(arr).astype(np.int16))
    out.CopyInformation(image)
    return out


def shifted(image: sitk.Image, k: int) -> sitk.Image:
    """A different-looking case: the crop rolled by ``k`` voxels in x (same geometry)."""
    out = sitk.GetImageFromArray(np.roll(sitk.GetArrayFromImage(image), k, axis=2))
    out.CopyInformation(image)
    return out


def tcia_tree(root: Path, patients: dict[str, int], size: int = 16, slices: int = 2) -> Path:
    """``root/<patient>/<study>/<n.000000-Full Dose Images-x>`` and ``...Low Dose Images...`` series, as the
    TCIA LDCT-and-Projection-data download names them, with matching SeriesDescription tags.

    ``patients`` maps a patient id to a seed. Full dose is a ``size``² x ``slices`` crop of the real chest CT
    (offset by the seed), low dose the same plus 50 HU noise; both in one study.
    """
    for patient, seed in patients.items():
        x0 = 30 + 4 * seed
        full = load_chest((slice(x0, x0 + size), slice(50, 50 + size), slice(15, 15 + slices))).astype(
            np.int32
        )
        low = full + np.random.default_rng(seed).normal(0, 50, full.shape).round().astype(np.int32)
        study = root / patient / f"08-13-2018-NA-NA-{seed:05d}"
        study_uid = generate_uid()
        for number, (kind, data) in enumerate((("Full", full), ("Low", low)), start=1):
            write_dicom_series(
                data,
                study / f"{number}.000000-{kind} Dose Images-{seed:05d}",
                study_uid=study_uid,
                series_number=number,
                description=f"{kind} Dose Images",
                patient_id=patient,
                seed=seed,
            )
    return root
