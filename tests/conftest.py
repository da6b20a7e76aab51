"""Shared fixtures: the real CT that ships in the slicerio and pydicom wheels."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """One intra-op thread per test unless MEDGAN_TEST_THREADS says otherwise.

    The tests use tiny tensors, where handing work to a second thread costs more than the work; on a
    busy 2-core machine an 8x8 forward pass took 0.35 s with two threads and 0.2 ms with one. Set before
    every test because a Lightning ``Trainer`` resets the count (from OMP_NUM_THREADS) when it starts.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("MEDGAN_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(previous)


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


@pytest.fixture(scope="session")
def chest_dicom_dir(tmp_path_factory) -> Path:
    """The chest CT as a DICOM series with 0.7 (row) × 0.8 (column) mm pixels and 2.5 mm slices
    (``tests.dicom_fixtures.write_dicom_series`` defaults). Read-only: tests must not modify it."""
    from tests.dicom_fixtures import load_chest, write_dicom_series

    folder = tmp_path_factory.mktemp("chest_dicom") / "series"
    write_dicom_series(load_chest(), folder)
    return folder


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory) -> dict[str, Path]:
    """Every input medgan must refuse, by name (see ``tests.dicom_fixtures.BAD_INPUT_MESSAGES``)."""
    from tests.dicom_fixtures import make_bad_inputs

    return make_bad_inputs(tmp_path_factory.mktemp("bad_inputs"))
