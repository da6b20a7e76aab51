"""Shared fixtures: the real CT that ships in the slicerio and pydicom wheels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def ct_chest_path() -> Path:
    """slicerio's chest CT: 128x128x34 voxels, HU, NRRD."""
    import slicerio

    path = Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def ct_small_path() -> Path:
    """pydicom's single-slice CT test file."""
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("CT_small.dcm"))
