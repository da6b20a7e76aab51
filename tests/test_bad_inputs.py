"""The bad-input corpus: every odd or broken input a user can meet, through the commands that meet it.

Each refused input must give exit code 2 and exactly one line on stderr (no traceback, nothing ITK or
argparse printed beside it), leave no output behind and leave the input's bytes as they were. The odd
inputs medgan handles (a fill value asked for, a singleton time axis, gantry tilt into a format that
stores it, DICOM tags that look like paths, a symlink loop beside a series) must give a correct output.
Inputs come from ``tests.dicom_fixtures.make_bad_inputs`` (the session's ``bad_inputs`` fixture).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch

from medgan.cli import convert, infer, simulate
from medgan.nets import build_net
from medgan.package import make_manifest, save_model_package
from tests.dicom_fixtures import BAD_INPUT_MESSAGES, load_chest, write_dicom_series

WINDOW = {"type": "window", "hu_min": -1024.0, "hu_max": 3071.0, "out_min": -1.0, "out_max": 1.0}
#: inputs refused before anything is read, with a message that cannot name the offending file
_UNNAMED = ("missing_path", "empty_folder", "not_dicom", "symlink_loop")
#: inputs a command rightly accepts: to medgan-infer a folder holding two series folders is two scans
_HANDLED = {("two_series", "infer")}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 2D model package small enough that loading it costs nothing (4 channels, 2 layers)."""
    cfg = {"type": "rescnn_lite", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "feature_size": 4,
           "num_layers": 2}
    torch.manual_seed(0)
    state = {f"generator.{k}": v for k, v in build_net(cfg).state_dict().items()}
    manifest = make_manifest(recipe="dae", nets={"generator": cfg}, infer_net="generator", spatial_dims=2,
                             normalization=WINDOW)
    return save_model_package(tmp_path_factory.mktemp("model") / "model", state, manifest)


@pytest.fixture(scope="module")
def small_scan(tmp_path_factory) -> Path:
    """A good 16×16×3 chest crop as NRRD."""
    path = tmp_path_factory.mktemp("scan") / "chest.nrrd"
    chest = load_chest((slice(56, 72), slice(56, 72), slice(10, 13)))
    sitk.WriteImage(sitk.GetImageFromArray(chest.transpose(2, 1, 0)), str(path))
    return path


def _snapshot(path: Path) -> dict[str, str]:
    """Every byte and link under ``path`` (links not followed), to show an input was not touched."""
    if not os.path.lexists(path):
        return {}
    if path.is_symlink() or path.is_file():
        entries = [path]
    else:
        entries = [Path(root) / name for root, dirs, files in os.walk(path) for name in dirs + files]
    out = {}
    for entry in entries:
        key = str(entry.relative_to(path.parent))
        if entry.is_symlink():
            out[key] = "-> " + os.readlink(entry)
        elif entry.is_file():
            out[key] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return out


def _run(main: Callable, argv: list[str], capfd) -> tuple[int, str]:
    """Exit code and stderr of ``main(argv)``; Python warnings count as the stderr lines they would print
    outside pytest (which otherwise collects them quietly)."""
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        code = main([str(a) for a in argv])
    printed = "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    return code, capfd.readouterr().err + printed


def _assert_refused(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one line:\n{err}"
    assert "Traceback" not in err and "usage:" not in err
    for fragment in fragments:
        assert fragment in err, err


def _commands(model: Path) -> dict[str, Callable[[Path, Path], tuple[Callable, list]]]:
    return {
        "convert": lambda src, out: (convert.main, [src, out]),
        "infer": lambda src, out: (infer.main, ["--model", model, "--input", src, "--output", out, "--no-progress"]),
        "simulate": lambda src, out: (simulate.main, ["--input", src, "--output", out, "--dose", "0.5"]),
    }


@pytest.mark.parametrize("command", ["convert", "infer", "simulate"])
@pytest.mark.parametrize("name", sorted(BAD_INPUT_MESSAGES))
def test_bad_input_is_refused_in_one_line_leaving_nothing(bad_inputs, tiny_model, tmp_path, capfd, name, command):
    if (name, command) in _HANDLED:
        pytest.skip(f"medgan-{command} handles {name}")
    src = bad_inputs[name]
    before = _snapshot(src)
    main, argv = _commands(tiny_model)[command](src, tmp_path / "out" / "x.nii.gz")
    code, err = _run(main, argv, capfd)
    fragments = [f"medgan-{command}: error: "]
    if command == "convert":
        fragments.append(BAD_INPUT_MESSAGES[name])
    if name not in _UNNAMED:
        fragments.append(src.name)  # the file or folder at fault is named
    _assert_refused(code, err, *fragments)
    assert not (tmp_path / "out").exists()
    assert _snapshot(src) == before


def test_corpus_is_large_enough(bad_inputs):
    assert len(BAD_INPUT_MESSAGES) >= 30 and set(bad_inputs) == set(BAD_INPUT_MESSAGES)


def _read_only_folder(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes through permission bits; /sys refuses even root
        return Path("/sys/medgan-read-only")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder / "sub"


_SIMULATED = ("read_only", "parent_is_a_file", "name_too_long", "exists", "same_as_input")  # refused before simulating


@pytest.mark.parametrize("command", ["convert", "infer", "simulate"])
@pytest.mark.parametrize("case", ["read_only", "parent_is_a_file", "name_too_long", "full_disk", "exists",
                                  "same_as_input", "inside_input", "format_contradicts_name"])
def test_output_problems_are_refused_in_one_line_leaving_nothing(small_scan, chest_dicom_dir, tiny_model, tmp_path,
                                                                 capfd, monkeypatch, case, command):
    if command == "simulate" and case not in _SIMULATED:
        pytest.skip("needs a simulation first (covered by medgan-convert and medgan-infer)")
    src, out, extra, fragment = small_scan, tmp_path / "out.nii.gz", [], "out.nii.gz"
    if case == "read_only":
        out = _read_only_folder(tmp_path) / "out.nii.gz"
    elif case == "parent_is_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out.nii.gz"
    elif case == "name_too_long":
        out, fragment = tmp_path / ("n" * 300 + ".nii.gz"), "File name too long"
    elif case == "full_disk":
        def no_space(*args, **kwargs):
            raise RuntimeError("ITK ERROR: NiftiImageIO(0x1): Could not write: No space left on device")

        monkeypatch.setattr(sitk, "WriteImage", no_space)
        fragment = "No space left on device"
    elif case == "exists":
        out.write_bytes(b"old")
        fragment = "--overwrite"
    elif case == "same_as_input":
        out, fragment = small_scan, "input"
    elif case == "inside_input":
        src, out, fragment = chest_dicom_dir, chest_dicom_dir / "derived", "input"
    elif case == "format_contradicts_name":
        extra, fragment = ["--format", "nrrd"], "nrrd"
    before, around = _snapshot(src), sorted(p.name for p in out.parent.iterdir()) if out.parent.is_dir() else None
    old = out.read_bytes() if case in ("exists", "same_as_input") else None
    main, argv = _commands(tiny_model)[command](src, out)
    code, err = _run(main, argv + extra, capfd)
    _assert_refused(code, err, f"medgan-{command}: error: ", fragment)
    assert _snapshot(src) == before
    if old is not None:
        assert out.read_bytes() == old
    elif case != "name_too_long":  # the system cannot even look that name up
        assert not os.path.lexists(out)
    if around is not None:
        assert sorted(p.name for p in out.parent.iterdir()) == around  # no temporary sibling left


def test_nan_fill_gives_a_finite_output(bad_inputs, tiny_model, tmp_path, capfd):
    for main, argv in (
        (convert.main, [bad_inputs["nan_nifti"], tmp_path / "c.nrrd", "--nan-fill", "-1000"]),
        (infer.main, ["--model", tiny_model, "--input", bad_inputs["all_nan_nifti"], "--output", tmp_path / "i.nrrd",
                      "--nan-fill", "-1000", "--no-progress"]),
    ):
        code, err = _run(main, argv, capfd)
        assert code == 0, err
    converted = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "c.nrrd")))
    assert converted.dtype == np.int16 and (converted == -1000).sum() == 2 and (converted == 30).sum() == 254
    assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "i.nrrd")))).all()
    code, err = _run(convert.main, [bad_inputs["nan_nifti"], tmp_path / "d.nrrd", "--nan-fill", "nan"], capfd)
    _assert_refused(code, err, "--nan-fill")
    _assert_refused(*_run(convert.main, [bad_inputs["nan_nifti"], tmp_path / "d.nrrd", "--nan-fill", "abc"], capfd),
                    "argument --nan-fill: invalid float value: 'abc'")


def test_singleton_time_axis_is_read_as_3d(tmp_path, capfd):
    import nibabel as nib

    src = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(8 * 8 * 4, dtype=np.int16).reshape(8, 8, 4, 1), np.eye(4)), src)
    code, err = _run(convert.main, [src, tmp_path / "out.nrrd"], capfd)
    assert code == 0, err
    assert sitk.ReadImage(str(tmp_path / "out.nrrd")).GetSize() == (8, 8, 4)


def _tilted_series(folder: Path, degrees: float = 15.0) -> Path:
    """A gantry-tilted series: each slice shifts along y by tan(tilt) × its z step (a sheared grid)."""
    files = write_dicom_series(load_chest((slice(56, 72), slice(56, 72), slice(10, 14))), folder)
    for k, file in enumerate(files):
        ds = pydicom.dcmread(file)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k * 2.5 * float(np.tan(np.radians(degrees))), z]
        ds.save_as(file, enforce_file_format=True)
    return folder


def test_gantry_tilt_goes_where_it_can_be_stored(tmp_path, capfd):
    src = _tilted_series(tmp_path / "tilted")
    before = _snapshot(src)
    code, err = _run(convert.main, [src, tmp_path / "out.nii.gz"], capfd)
    _assert_refused(code, err, "sheared", "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()
    code, err = _run(convert.main, [src, tmp_path / "out.nrrd"], capfd)
    assert code == 0, err
    image = sitk.ReadImage(str(tmp_path / "out.nrrd"))
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    assert abs(np.degrees(np.arctan2(direction[1, 2], direction[2, 2])) - 15.0) < 0.01  # the tilt is kept
    assert _snapshot(src) == before


def test_tags_that_look_like_paths_name_nothing(tmp_path, tiny_model, capfd):
    src = tmp_path / "series"
    for file in write_dicom_series(load_chest((slice(56, 72), slice(56, 72), slice(10, 13))), src):
        ds = pydicom.dcmread(file)
        ds.PatientID, ds.SeriesDescription, ds.StudyDescription = "../../escape", "../../../x", "/etc/passwd"
        ds.save_as(file, enforce_file_format=True)
    code, err = _run(convert.main, [src, tmp_path / "out" / "converted"], capfd)
    assert code == 0, err
    code, err = _run(infer.main, ["--model", tiny_model, "--input", src, "--output", tmp_path / "out" / "denoised",
                                  "--no-progress"], capfd)
    assert code == 0, err
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    outputs = [p for p in written if p.parts[0] == "out"]
    assert len(outputs) == 6 and all(p.parts[1] in ("converted", "denoised") and len(p.parts) == 3 for p in outputs)
    assert not (tmp_path.parent / "escape").exists()


def test_symlink_loop_beside_a_series_is_ignored(tmp_path, capfd):
    src = tmp_path / "series"
    write_dicom_series(load_chest((slice(56, 72), slice(56, 72), slice(10, 13))), src)
    os.symlink(".", src / "loop")
    code, err = _run(convert.main, [src, tmp_path / "out.nrrd"], capfd)
    assert code == 0, err
    assert sitk.ReadImage(str(tmp_path / "out.nrrd")).GetSize() == (16, 16, 3)


@pytest.mark.parametrize("case", ["empty_folder", "garbage_ckpt", "garbage_onnx", "manifest_not_utf8",
                                  "manifest_alias_bomb", "cut_safetensors", "weights_do_not_fit", "not_a_model"])
def test_bad_model_is_refused_in_one_line_leaving_nothing(tiny_model, small_scan, tmp_path, capfd, case):
    import shutil

    model, extra = tmp_path / "model", []
    if case == "empty_folder":
        model.mkdir()
    elif case == "garbage_ckpt":
        model = tmp_path / "model.ckpt"
        model.write_bytes(b"\x80\x02garbage" * 10)
    elif case == "garbage_onnx":
        model, extra = tmp_path / "model.onnx", ["--backend", "onnx"]
        model.write_bytes(b"not onnx" * 10)
    elif case == "not_a_model":
        model = small_scan
    else:
        shutil.copytree(tiny_model, model)
        if case == "manifest_not_utf8":
            (model / "medgan.yaml").write_bytes(b"recipe: \xff\xfe\n")
        elif case == "manifest_alias_bomb":
            bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
            (model / "medgan.yaml").write_text(bomb)
        elif case == "cut_safetensors":
            weights = model / "model.safetensors"
            weights.write_bytes(weights.read_bytes()[:200])
        elif case == "weights_do_not_fit":
            text = (model / "medgan.yaml").read_text()
            (model / "medgan.yaml").write_text(text.replace("feature_size: 4", "feature_size: 8"))
    before = _snapshot(model)
    code, err = _run(infer.main, ["--model", model, "--input", small_scan, "--output", tmp_path / "out" / "x.nrrd",
                                  "--no-progress", *extra], capfd)
    _assert_refused(code, err, "medgan-infer: error: ", model.name)
    assert not (tmp_path / "out").exists() and _snapshot(model) == before


def test_onnx_backend_without_onnxruntime_says_what_to_install(tiny_model, small_scan, tmp_path, capfd, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, err = _run(infer.main, ["--model", tiny_model, "--input", small_scan, "--output", tmp_path / "out.nrrd",
                                  "--backend", "onnx", "--no-progress"], capfd)
    _assert_refused(code, err, 'pip install "medgan[export]"')
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["cut_nii_gz", "nan_nifti", "all_nan_nifti", "zero_slice_nifti", "non_ct_modality"])
def test_eval_refuses_what_it_cannot_score(bad_inputs, small_scan, tmp_path, capfd, name):
    from medgan.cli import eval as eval_cli

    code, err = _run(eval_cli.main, ["--pred", bad_inputs[name], "--target", small_scan,
                                     "--output", tmp_path / "scores.csv", "--no-progress"], capfd)
    _assert_refused(code, err, "medgan-eval: error: ", bad_inputs[name].name)
    assert list(tmp_path.iterdir()) == []


def test_eval_bm3d_without_the_baselines_extra_says_what_to_install(small_scan, tmp_path, capfd, monkeypatch):
    import sys

    from medgan.cli import eval as eval_cli

    monkeypatch.setitem(sys.modules, "bm3d", None)
    code, err = _run(eval_cli.main, ["--pred", small_scan, "--target", small_scan, "--input", small_scan,
                                     "--baselines", "bm3d", "--output", tmp_path / "scores.csv", "--no-progress"], capfd)
    _assert_refused(code, err, 'pip install "medgan[baselines]"')
    assert list(tmp_path.iterdir()) == []
