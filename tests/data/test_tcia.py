"""Finding TCIA LDCT full/low-dose series in a synthetic tree that mimics the real download."""

from __future__ import annotations

import shutil

import pytest

from medgan.data.tcia import find_tcia_patients
from medgan.errors import InputError, MissingFileError
from tests.data.builders import tcia_tree
from tests.dicom_fixtures import load_chest, write_dicom_series


def test_finds_full_and_low_series_by_description(tmp_path):
    root = tcia_tree(tmp_path / "LDCT", {"L067": 1, "C002": 2, "N005": 3}, slices=1)
    found = find_tcia_patients(root)
    assert [(p.patient, p.exam) for p in found] == [("C002", "C"), ("L067", "L"), ("N005", "N")]
    l067 = found[1]
    assert "Full Dose Images" in l067.full.name and "Low Dose Images" in l067.low.name


def test_description_wins_over_folder_name(tmp_path):
    root = tmp_path / "LDCT"
    hu = load_chest((slice(0, 8), slice(0, 8), slice(0, 1)))
    # folder names say nothing; only the SeriesDescription tag tells the series apart
    for folder, description in (
        ("s1", "Full Dose Images"),
        ("s2", "Low Dose Images"),
        ("s3", "Full Dose Projections"),
    ):
        write_dicom_series(hu, root / "L001" / "study" / folder, description=description, patient_id="L001")
    (found,) = find_tcia_patients(root)
    assert found.full.name == "s1" and found.low.name == "s2"


def test_missing_or_duplicate_series_are_listed(tmp_path):
    root = tcia_tree(tmp_path / "LDCT", {"L067": 1, "C002": 2}, slices=1)
    low = next((root / "C002").glob("*/*Low Dose*"))
    shutil.rmtree(low)
    with pytest.raises(InputError, match="C002: 0 low-dose series"):
        find_tcia_patients(root)


def test_empty_and_missing_roots(tmp_path):
    with pytest.raises(MissingFileError, match="nope"):
        find_tcia_patients(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no LDCT patient series"):
        find_tcia_patients(tmp_path / "empty")
