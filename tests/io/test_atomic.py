"""Staged outputs: all-or-nothing, multi-file formats moved together, inputs protected."""

from __future__ import annotations

import pytest

from medgan.errors import InputError, OutputExistsError
from medgan.io.atomic import check_output, staged_output


def test_files_appear_only_on_success(tmp_path):
    target = tmp_path / "out" / "x.mhd"
    with staged_output(target) as staged:
        assert staged.name == "x.mhd" and staged.parent != target.parent
        staged.write_text("header")
        (staged.parent / "x.raw").write_text("voxels")
        assert not target.exists()
    assert target.read_text() == "header" and (target.parent / "x.raw").read_text() == "voxels"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.mhd", "x.raw"]


def test_failure_leaves_the_old_output(tmp_path):
    target = tmp_path / "x.nrrd"
    target.write_text("old")
    with pytest.raises(RuntimeError), staged_output(target) as staged:
        staged.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.nrrd"]


def test_folder_replaced_whole(tmp_path):
    target = tmp_path / "series"
    target.mkdir()
    (target / "old.dcm").write_text("old")
    with staged_output(target) as staged:
        staged.mkdir()
        (staged / "new.dcm").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.dcm"]
    assert [p.name for p in tmp_path.iterdir()] == ["series"]


def test_check_output(tmp_path):
    existing = tmp_path / "a.nrrd"
    existing.write_text("x")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output(existing, overwrite=False)
    check_output(existing, overwrite=True)
    check_output(tmp_path / "new.nrrd", overwrite=False)
    series = tmp_path / "series"
    for output, source in ((series, series / "001.dcm"), (series / "sub", series), (existing, existing)):
        with pytest.raises(InputError, match="would overwrite the input"):
            check_output(output, overwrite=True, inputs=[source])
