"""One suffix table and one "scan or folder of scans" walk: discovery, the reader and the writer agree."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medgan.errors import InputError, MissingFileError
from medgan.io import read_volume
from medgan.io.formats import (
    DEFAULT_SUFFIX,
    FORMATS,
    SUFFIXES,
    VOLUME_SUFFIXES,
    format_of_name,
    volume_suffix,
)
from medgan.io.layout import discover_cases
from medgan.io.scans import find_scans, is_single_scan
from medgan.io.writer import output_format


@pytest.mark.parametrize("suffix", VOLUME_SUFFIXES)
def test_every_suffix_is_discovered_read_and_written(tmp_path, suffix):
    voxels = np.arange(4 * 5 * 3, dtype=np.int16).reshape(3, 5, 4)
    sitk.WriteImage(sitk.GetImageFromArray(voxels), str(tmp_path / f"case{suffix}"))
    found = discover_cases(tmp_path)
    assert list(found) == ["case"], sorted(p.name for p in tmp_path.iterdir())
    volume = read_volume(found["case"])
    assert volume.meta["source_format"] == format_of_name(found["case"])
    np.testing.assert_array_equal(volume[0].numpy(), voxels.transpose(2, 1, 0))
    assert output_format(tmp_path / f"out{suffix}") == format_of_name(f"x{suffix}")


def test_table_is_consistent():
    assert {fmt for _, fmt in SUFFIXES} | {"dicom"} == set(FORMATS) == set(DEFAULT_SUFFIX)
    assert all(volume_suffix(f"a{s}") == s for s in VOLUME_SUFFIXES)  # longest ending wins (.nii.gz)
    assert volume_suffix("a.raw") is None and format_of_name("A.NII.GZ") == "nifti"


def test_find_scans_one_scan_or_a_folder(tmp_path):
    for name in ("b.nrrd", "a.nii.gz", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert find_scans(tmp_path / "a.nii.gz") == {"a": tmp_path / "a.nii.gz"}
    assert list(find_scans(tmp_path)) == ["a", "b"]
    assert is_single_scan(tmp_path / "b.nrrd") and not is_single_scan(tmp_path)
    (tmp_path / "a b.nrrd").write_bytes(b"x")
    assert list(find_scans(tmp_path, rename=lambda n: n.replace(" ", "_"))) == ["a", "a_b", "b"]
    (tmp_path / "a_b.mha").write_bytes(b"x")
    with pytest.raises(InputError, match="both give the output name 'a_b'"):
        find_scans(tmp_path, rename=lambda n: n.replace(" ", "_"))
    with pytest.raises(MissingFileError, match="--normal .*nope does not exist"):
        find_scans(tmp_path / "nope", "--normal")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no scan"):
        find_scans(tmp_path / "empty")


def test_detached_headers_become_single_files_in_a_dataset(tmp_path):
    """``.nhdr``/``.mhd`` are discovered now, so a prepared dataset must not copy the header alone."""
    from medgan.data.prepare import output_name

    assert output_name("c", tmp_path / "c.nhdr", "same") == "c.nrrd"
    assert output_name("c", tmp_path / "c.mhd", "same") == "c.mha"
    assert output_name("c", tmp_path / "c.nii.gz", "same") == "c.nii.gz"
    assert output_name("c", tmp_path / "c.nhdr", "nifti") == "c.nii.gz"
