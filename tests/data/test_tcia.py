"""Finding TCIA LDCT full/low-dose series in a synthetic tree that mimics the real download."""

from __future__ import annotations

import shutil

import pytest

from medgan.data.tcia import find_tcia_patients
from medgan.errors import InputError, MissingFileError

from .dicom_tree import tcia_tree, write_series


def test_finds_full_and_low_series_by_description(tmp_path):
    root = tcia_tree(tmp_path / "LDCT", {"L067": 1, "C002": 2, "N005": 3}, slices=1)
    found = find_tcia_patients(root)
    assert [(p.patient, p.exam) for p in found] == [("C002", "C"), ("L067", "L"), ("N005", "N")]
    l067 = found[1]
    assert "Full Dose Images" in l067.full.name and "Low Dose Images" in l067.low.name


def test_description_wins_over_folder_name(tmp_path):
    import numpy as np

    root = tmp_path / "LDCT"
    # folder names say nothing; only the SeriesDescription tag tells the series apart
    write_series(root / "L001" / "study" / "s1", "L001", "Full Dose Images", np.zeros((1, 8, 8)))
    write_series(root / "L001" / "study" / "s2", "L001", "Low Dose Images", np.zeros((1, 8, 8)))
    write_series(root / "L001" / "study" / "s3", "L001", "Full Dose Projections", np.zeros((1, 8, 8)))
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
