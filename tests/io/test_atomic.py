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


def test_atomic_write_and_output_errors_name_the_path(tmp_path):
    import os

    from medgan.errors import OutputError
    from medgan.io.atomic import atomic_write

    assert atomic_write(tmp_path / "a.json", "{}\n").read_text() == "{}\n"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"cannot write '.*file/x.nrrd'.*nothing was written"):
        atomic_write(blocker / "x.nrrd", b"data")
    with pytest.raises(OutputError, match="File name too long"):
        atomic_write(tmp_path / ("n" * 300 + ".nrrd"), b"data")
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="read-only folder"):
                atomic_write(locked / "x.nrrd", b"data")
        finally:
            locked.chmod(0o755)
        assert list(locked.iterdir()) == []


def test_a_full_disk_inside_the_writer_leaves_nothing(tmp_path):
    import errno

    from medgan.errors import OutputError

    with pytest.raises(OutputError, match=r"'.*x.nrrd': No space left on device"), staged_output(tmp_path / "x.nrrd") as s:
        s.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_swapped_in_without_ever_being_absent(tmp_path, monkeypatch):
    """The old folder stays in place until the new one is: no rename step finds the target missing."""
    import medgan.io.atomic as atomic

    probe_a, probe_b = tmp_path / "probe_a", tmp_path / "probe_b"
    probe_a.mkdir()
    probe_b.mkdir()
    if not atomic._exchange(probe_a, probe_b):
        pytest.skip("this system cannot swap two paths in one step")
    target = tmp_path / "package"
    target.mkdir()
    (target / "old").write_text("old")
    real_replace = atomic.os.replace

    def checked_replace(src, dst):
        assert target.exists(), "the package was absent during the replacement"
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", checked_replace)
    with staged_output(target) as staged:
        staged.mkdir()
        (staged / "new").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["package", "probe_a", "probe_b"]


def test_folders_made_for_a_failed_output_are_removed(tmp_path):
    with pytest.raises(RuntimeError), staged_output(tmp_path / "a" / "b" / "x.nrrd") as staged:
        staged.write_text("half")
        raise RuntimeError("model failed")
    assert list(tmp_path.iterdir()) == []


def test_check_writable_probes_without_leaving_anything(tmp_path):
    from medgan.errors import OutputError
    from medgan.io.atomic import check_writable

    check_writable(tmp_path / "a" / "b" / "x.nii.gz")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="File name too long"):
        check_writable(tmp_path / ("n" * 300 + ".nii.gz"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="file, not a folder"):
        check_writable(tmp_path / "file" / "x.nrrd")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_folder_another_writer_filled_is_kept(tmp_path):
    """Two ranks writing into one new output folder: a failure in one never deletes the other's outputs."""
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_output(out / "a.nrrd") as staged:
        (out / "b.nrrd").write_text("the other rank's finished output")
        staged.write_text("half")
        raise RuntimeError("this rank failed")
    assert [p.name for p in out.iterdir()] == ["b.nrrd"]


def test_a_folder_is_never_replaced_by_a_file(tmp_path):
    from medgan.errors import OutputError

    (tmp_path / "x.nrrd").mkdir()
    (tmp_path / "x.nrrd" / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="folder of that name is in the way"), staged_output(tmp_path / "x.nrrd") as s:
        s.write_text("new")
    assert (tmp_path / "x.nrrd" / "notes.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["x.nrrd"]
