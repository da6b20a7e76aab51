"""``medgan-infer`` end to end on real CT in every format, with nets from the medgan registry."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch

from medgan.cli.infer import main
from medgan.nets import build_net
from medgan.package import make_manifest, save_model_package

WINDOW = {"type": "window", "hu_min": -1024.0, "hu_max": 3071.0, "out_min": -1.0, "out_max": 1.0}


def _package(folder: Path, net_cfg: dict, zero_last: bool = False, **kw) -> Path:
    torch.manual_seed(0)
    net = build_net(net_cfg)
    if zero_last:  # rescnn_lite = centre slice - body(x): a zero last conv makes it the identity
        last = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))][-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    state = {f"generator.{k}": v for k, v in net.state_dict().items()}
    manifest = make_manifest(recipe="test", nets={"generator": net_cfg}, infer_net="generator",
                             spatial_dims=net_cfg["spatial_dims"], normalization=WINDOW, **kw)
    return save_model_package(folder, state, manifest)


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory) -> Path:
    cfg = {"type": "rescnn_lite", "spatial_dims": 2, "in_channels": 3, "out_channels": 1, "feature_size": 4,
           "num_layers": 3}
    return _package(tmp_path_factory.mktemp("m") / "identity", cfg, zero_last=True, input_mode="2.5d",
                    context_slices=1, patch_size=[64, 64], description="medgan test identity")


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory) -> Path:
    cfg = {"type": "srresnet", "spatial_dims": 2, "feature_size": 4, "num_res_blocks": 1, "scale": 2}
    return _package(tmp_path_factory.mktemp("m") / "sr", cfg, scale=2)


@pytest.fixture(scope="module")
def scans(tmp_path_factory, ct_chest_path) -> dict[str, Path]:
    """The chest CT cropped non-square (96 x 80 x 6), as an oblique NIfTI, an LPS NRRD and a DICOM series."""
    from medgan.io import read_volume, write_volume

    root = tmp_path_factory.mktemp("scans")
    img = sitk.ReadImage(str(ct_chest_path))[16:112, 30:110, 14:20]
    sitk.WriteImage(img, str(root / "chest.nrrd"))
    oblique = sitk.Image(img)
    rot = sitk.VersorTransform((0.2, 0.1, 0.9), 0.4).GetMatrix()
    oblique.SetDirection(rot)
    oblique.SetSpacing((0.7, 0.8, 2.5))
    sitk.WriteImage(oblique, str(root / "oblique.nii.gz"))
    write_volume(read_volume(root / "oblique.nii.gz"), root / "series", "dicom", description="fixture")
    return {"nrrd": root / "chest.nrrd", "nifti": root / "oblique.nii.gz", "dicom": root / "series"}


def _sitk_read(path: Path) -> sitk.Image:
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path)))
        return reader.Execute()
    return sitk.ReadImage(str(path))


@pytest.mark.parametrize("kind", ["nrrd", "nifti", "dicom"])
def test_identity_model_reproduces_input_hu_and_geometry(identity_model, scans, tmp_path, kind):
    src = scans[kind]
    out = tmp_path / ("out" + {"nrrd": ".nrrd", "nifti": ".nii.gz", "dicom": ""}[kind])
    assert main(["--model", str(identity_model), "--input", str(src), "--output", str(out),
                 "--roi-size", "48,40", "--overlap", "0.5", "--slab-slices", "4", "--no-progress"]) == 0
    a, b = _sitk_read(src), _sitk_read(out)
    # the model's window tops out at 3071 HU; the -3024 padding below its floor is passed through
    expected = np.minimum(sitk.GetArrayFromImage(a), 3071)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(b), expected)
    assert b.GetSize() == a.GetSize()
    np.testing.assert_allclose(b.GetOrigin(), a.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(b.GetSpacing(), a.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(b.GetDirection(), a.GetDirection(), atol=1e-5)


def _dicoms(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]


def test_dicom_in_gives_derived_series_of_the_same_study(identity_model, scans, tmp_path):
    out = tmp_path / "derived"
    assert main(["--model", str(identity_model), "--input", str(scans["dicom"]), "--output", str(out),
                 "--no-progress"]) == 0
    src, dst = _dicoms(scans["dicom"]), _dicoms(out)
    assert len(dst) == len(src)
    assert {d.StudyInstanceUID for d in dst} == {src[0].StudyInstanceUID}
    assert {d.FrameOfReferenceUID for d in dst} == {src[0].FrameOfReferenceUID}
    assert {d.SeriesInstanceUID for d in dst}.isdisjoint({s.SeriesInstanceUID for s in src})
    assert {d.SOPInstanceUID for d in dst}.isdisjoint({s.SOPInstanceUID for s in src})
    assert "medgan test identity" in str(dst[0].get("DerivationDescription", ""))
    _assert_dciodvfy_clean(out)


def _assert_dciodvfy_clean(folder: Path) -> None:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    for path in sorted(folder.iterdir())[:2]:
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [ln for ln in (report.stdout + report.stderr).splitlines() if ln.startswith("Error")]
        assert not errors, errors


@pytest.mark.parametrize("kind", ["nifti", "dicom"])
def test_sr_output_covers_the_input_extent(sr_model, scans, tmp_path, kind):
    src = scans[kind]
    out = tmp_path / ("sr.nii.gz" if kind == "nifti" else "sr")
    assert main(["--model", str(sr_model), "--input", str(src), "--output", str(out), "--no-progress"]) == 0
    a, b = _sitk_read(src), _sitk_read(out)
    assert b.GetSize() == (2 * a.GetSize()[0], 2 * a.GetSize()[1], a.GetSize()[2])
    np.testing.assert_allclose(b.GetSpacing()[:2], np.array(a.GetSpacing()[:2]) / 2, rtol=1e-5)
    half_out_voxel = 0.5 * min(b.GetSpacing())
    for corner in np.ndindex(2, 2, 2):
        # outer corner of the grid: -0.5 or size - 0.5 voxel from the first voxel centre, in both images
        ca = [c * n - 0.5 for c, n in zip(corner, a.GetSize())]
        cb = [c * n - 0.5 for c, n in zip(corner, b.GetSize())]
        pa = a.TransformContinuousIndexToPhysicalPoint(ca)
        pb = b.TransformContinuousIndexToPhysicalPoint(cb)
        assert np.abs(np.subtract(pa, pb)).max() <= half_out_voxel, (corner, pa, pb)
    # and the first voxel centres are a quarter input voxel apart (the voxel-centre shift)
    np.testing.assert_allclose(b.TransformContinuousIndexToPhysicalPoint((0.5, 0.5, 0)),
                               a.TransformContinuousIndexToPhysicalPoint((0, 0, 0)), atol=1e-3)
    if kind == "dicom":
        src, dst = _dicoms(src)[0], _dicoms(out)[0]
        assert (dst.Rows, dst.Columns) == (2 * src.Rows, 2 * src.Columns)
        assert dst.StudyInstanceUID == src.StudyInstanceUID
        assert dst.FrameOfReferenceUID == src.FrameOfReferenceUID
        _assert_dciodvfy_clean(out)


def test_folder_of_cases_is_sharded_and_named_per_case(identity_model, scans, tmp_path, monkeypatch):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(scans["nrrd"], cases / "a.nrrd")
    shutil.copy(scans["nifti"], cases / "b.nii.gz")
    shutil.copytree(scans["dicom"], cases / "c")
    out = tmp_path / "results"
    assert main(["--model", str(identity_model), "--input", str(cases), "--output", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.nrrd", "b.nii.gz", "c"]
    assert len(list((out / "c").iterdir())) == 6
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    ranked = tmp_path / "ranked"
    ranked.mkdir()
    (ranked / "a.nii.gz").write_bytes(b"rank 0 wrote this already")  # not this rank's business
    assert main(["--model", str(identity_model), "--input", str(cases), "--output", str(ranked),
                 "--format", "nifti", "--no-progress"]) == 0
    # rank 1 of 2 takes every 2nd case
    assert sorted(p.name for p in ranked.iterdir()) == ["a.nii.gz", "b.nii.gz"]
    assert (ranked / "a.nii.gz").read_bytes() == b"rank 0 wrote this already"


def test_single_dicom_file_in_gives_dicom_out(identity_model, ct_small_path, tmp_path):
    out = tmp_path / "small"
    assert main(["--model", str(identity_model), "--input", str(ct_small_path), "--output", str(out),
                 "--no-progress"]) == 0
    src = pydicom.dcmread(ct_small_path)
    (dst_path,) = list(out.iterdir())
    dst = pydicom.dcmread(dst_path)
    np.testing.assert_array_equal(dst.pixel_array * float(dst.RescaleSlope) + float(dst.RescaleIntercept),
                                  src.pixel_array * float(src.RescaleSlope) + float(src.RescaleIntercept))
    assert dst.StudyInstanceUID == src.StudyInstanceUID and dst.PixelRepresentation == 1


def _refused(capsys, argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert match in err, err


def test_user_errors_exit_2_with_one_line_and_write_nothing(identity_model, scans, tmp_path, capsys):
    import yaml

    out = tmp_path / "out.nrrd"
    base = ["--input", str(scans["nrrd"]), "--output", str(out), "--no-progress"]
    # missing model files
    broken = tmp_path / "broken"
    shutil.copytree(identity_model, broken)
    (broken / "model.safetensors").unlink()
    _refused(capsys, ["--model", str(broken), *base], "model.safetensors")
    # a package from an incompatible version
    old = tmp_path / "old"
    shutil.copytree(identity_model, old)
    manifest = yaml.safe_load((old / "medgan.yaml").read_text())
    manifest["format_version"] = 99
    (old / "medgan.yaml").write_text(yaml.safe_dump(manifest))
    _refused(capsys, ["--model", str(old), *base], "format_version 99")
    # an input that does not exist
    _refused(capsys, ["--model", str(identity_model), "--input", str(tmp_path / "nope.nrrd"), "--output", str(out)],
             "nope.nrrd")
    assert not out.exists()
    # output inside the input folder
    inside = scans["dicom"] / "out"
    _refused(capsys, ["--model", str(identity_model), "--input", str(scans["dicom"]), "--output", str(inside)],
             "inside the input folder")
    assert not inside.exists()
    # existing output without --overwrite: untouched
    out.write_bytes(b"keep me")
    _refused(capsys, ["--model", str(identity_model), *base], "--overwrite")
    assert out.read_bytes() == b"keep me"
    # contradicting --format and extension
    _refused(capsys, ["--model", str(identity_model), *base, "--format", "nifti", "--overwrite"], "--format nifti")
    assert out.read_bytes() == b"keep me"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
    assert main(["--model", str(identity_model), *base, "--overwrite"]) == 0
    assert sitk.ReadImage(str(out)).GetSize() == (96, 80, 6)


def test_lightning_ckpt_and_3d_model_run_through_the_cli(scans, tmp_path):
    cfg = {"type": "rescnn_lite", "spatial_dims": 3, "in_channels": 1, "out_channels": 1, "feature_size": 4,
           "num_layers": 2}
    pkg = _package(tmp_path / "m3d", cfg, zero_last=True, input_mode="3d", patch_size=[32, 32, 4])
    from medgan.package import load_model_package

    manifest, state = load_model_package(pkg)
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"medgan_manifest": manifest}, "epoch": 3}, ckpt)
    out = tmp_path / "out3d.nrrd"
    # 3D windows of the package's patch (32, 32, 4), slabs of 2 slices + halo over 6 slices
    assert main(["--model", str(ckpt), "--input", str(scans["nrrd"]), "--output", str(out), "--slab-slices", "2",
                 "--no-progress"]) == 0
    a, b = sitk.ReadImage(str(scans["nrrd"])), sitk.ReadImage(str(out))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(b), np.minimum(sitk.GetArrayFromImage(a), 3071))


def test_series_uid_picks_one_series_of_a_mixed_folder(identity_model, scans, ct_small_path, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(scans["dicom"], mixed)
    shutil.copy(ct_small_path, mixed / "other.dcm")
    uid = _dicoms(scans["dicom"])[0].SeriesInstanceUID
    assert main(["--model", str(identity_model), "--input", str(mixed), "--output", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    assert "--series-uid" in capsys.readouterr().err  # the reader lists the series to choose from
    assert not (tmp_path / "o").exists()
    assert main(["--model", str(identity_model), "--input", str(mixed), "--output", str(tmp_path / "o"),
                 "--series-uid", uid, "--no-progress"]) == 0
    assert len(list((tmp_path / "o").iterdir())) == 6


@pytest.mark.parametrize("kind", ["flipped_nrrd", "oblique_dicom"])
def test_marked_voxels_keep_their_world_position(identity_model, scans, tmp_path, kind):
    """Orientation end to end: three marked voxels of an LR-flipped / oblique scan sit at the same world points after."""
    marks = {(5, 7, 1): 3000, (90, 12, 4): 2500, (40, 70, 3): 2000}  # (x, y, z) index -> HU
    img = sitk.ReadImage(str(scans["nrrd"] if kind == "flipped_nrrd" else scans["nifti"]))
    arr = np.clip(sitk.GetArrayFromImage(img), -1024, 1000)  # keep the marks the only bright voxels
    for (x, y, z), hu in marks.items():
        arr[z, y, x] = hu
    marked = sitk.GetImageFromArray(arr)
    marked.CopyInformation(img)
    if kind == "flipped_nrrd":
        marked.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
        src = tmp_path / "flipped.nrrd"
        sitk.WriteImage(marked, str(src))
        out = tmp_path / "out.nrrd"
    else:
        from medgan.io import read_volume, write_volume

        sitk.WriteImage(marked, str(tmp_path / "marked.nii.gz"))
        src = write_volume(read_volume(tmp_path / "marked.nii.gz"), tmp_path / "series", "dicom")
        out = tmp_path / "out"
    assert main(["--model", str(identity_model), "--input", str(src), "--output", str(out), "--no-progress"]) == 0
    before, after = _sitk_read(src), _sitk_read(out)
    for hu in marks.values():
        points = []
        for image in (before, after):
            z, y, x = np.argwhere(sitk.GetArrayFromImage(image) == hu)[0]
            points.append(image.TransformIndexToPhysicalPoint((int(x), int(y), int(z))))
        np.testing.assert_allclose(points[0], points[1], atol=1e-3)
