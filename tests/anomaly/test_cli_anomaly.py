"""``medgan-anomaly calibrate`` / ``detect`` end to end on the real chest CT (NRRD, NIfTI and DICOM)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from medgan.cli.anomaly import main
from medgan.package import make_manifest, save_model_package


@pytest.fixture(scope="module")
def thresholds_json(tmp_path_factory, ae_package, ct_chest_path):
    path = tmp_path_factory.mktemp("cal") / "thresholds.json"
    assert main(["calibrate", "--model", str(ae_package), "--normal", str(ct_chest_path), "--fpr", "0.01",
                 "--output", str(path), "--no-progress", "--map", "residual", "--open-mm", "0",
                 "--region", "body"]) == 0  # the AE's HU error
    return path


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_calibrate_writes_thresholds_at_the_requested_rate(thresholds_json, chest_result, capsys):
    data = json.loads(thresholds_json.read_text())
    assert data["fpr"] == 0.01 and abs(data["achieved_fpr"] - 0.01) < 0.001
    values = chest_result.map[chest_result.body].numpy()
    assert abs(float((values > data["voxel_hu"]).mean()) - 0.01) < 0.001
    assert data["scans"] == ["CTChest4"] and data["scan"] == pytest.approx(data["scan_scores"][0])


def test_detect_on_nrrd_writes_map_mask_figure_and_scores(tmp_path, ae_package, ct_chest_path, thresholds_json,
                                                          chest, chest_result):
    import slicerio

    from medgan.io import read_volume

    out = tmp_path / "out"
    assert main(["detect", "--model", str(ae_package), "--input", str(ct_chest_path), "--output", str(out),
                 "--thresholds", str(thresholds_json), "--no-progress"]) == 0
    heat = read_volume(out / "CTChest4_map.nrrd")  # --format same: NRRD in, NRRD out
    np.testing.assert_allclose(heat.affine.numpy(), chest.affine.numpy(), atol=1e-4)
    np.testing.assert_allclose(heat[0].numpy(), chest_result.map[0].numpy(), atol=1e-4)
    seg = slicerio.read_segmentation(str(out / "CTChest4_mask.seg.nrrd"))
    voxel_hu = json.loads(thresholds_json.read_text())["voxel_hu"]
    expected = (chest_result.map[0].numpy() > voxel_hu) & chest_result.body[0].numpy()
    assert np.array_equal(seg["voxels"] > 0, expected)
    assert (out / "CTChest4_anomaly.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (row,) = _rows(out / "scores.csv")
    assert row["case"] == "CTChest4" and row["anomalous"] == "no"  # the calibration scan itself is normal
    assert int(row["anomalous_voxels"]) == int(expected.sum())


def _normal_and_lesion_scans(tmp_path, chest, body, **lesions):
    """``tmp_path/scans`` holding ``normal.nii.gz`` (the chest) and ``lesion.nii.gz`` (with lesions); the truth mask."""
    from medgan.io import write_volume
    from medgan.transforms.lesions import RandSyntheticLesions

    volume, truth = RandSyntheticLesions(**lesions)(chest, region=body)
    scans = tmp_path / "scans"
    write_volume(chest, scans / "normal.nii.gz")
    write_volume(volume, scans / "lesion.nii.gz")
    return scans, truth


def test_detect_flags_the_scan_with_a_lesion_and_masks_it(tmp_path, ae_package, thresholds_json, chest,
                                                          chest_result):

    # a dense (+2500 HU, metal/calcium-like) 15-20 mm lesion: errors beyond the untrained-edge errors of the
    # tiny AE, so the scan score must cross the threshold set by the normal scan
    scans, truth = _normal_and_lesion_scans(tmp_path, chest, chest_result.body[0], count=1, radius_mm=(15.0, 20.0),
                                            contrast_hu=2500.0, seed=2)
    out = tmp_path / "out"
    assert main(["detect", "--model", str(ae_package), "--input", str(scans), "--output", str(out),
                 "--thresholds", str(thresholds_json), "--no-progress"]) == 0
    rows = {r["case"]: r for r in _rows(out / "scores.csv")}
    assert rows["lesion"]["anomalous"] == "yes" and rows["normal"]["anomalous"] == "no"
    assert float(rows["lesion"]["score"]) > float(rows["lesion"]["threshold"]) >= float(rows["normal"]["score"])
    assert int(rows["lesion"]["max_slice"]) in set(np.nonzero(truth[0].numpy().any(axis=(0, 1)))[0])
    import slicerio

    mask = slicerio.read_segmentation(str(out / "lesion_mask.seg.nrrd"))["voxels"] > 0
    assert mask[truth[0].numpy()].mean() > 0.5  # most lesion voxels are flagged
    assert (out / "normal_map.nii.gz").is_file() and (out / "lesion_anomaly.png").is_file()


def test_detect_on_dicom_writes_a_dicom_seg_of_the_study(tmp_path, ae_package, chest_dicom_dir, thresholds_json):
    import pydicom

    from medgan.io import read_volume

    out = tmp_path / "out"
    assert main(["detect", "--model", str(ae_package), "--input", str(chest_dicom_dir), "--output", str(out),
                 "--thresholds", str(thresholds_json), "--no-progress"]) == 0
    source = read_volume(chest_dicom_dir)
    seg = pydicom.dcmread(out / "series_seg.dcm")
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == source.meta["dicom_headers"].study_uid
    heat = read_volume(out / "series_map.nii.gz")  # DICOM in: NIfTI heat map
    np.testing.assert_allclose(heat.affine.numpy(), source.affine.numpy(), atol=1e-4)
    assert (out / "series_mask.seg.nrrd").is_file()


def _bad(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("medgan-anomaly") and " error: " in err, err
    return err


def test_user_errors_exit_2_with_one_line(tmp_path, capsys, ae_package, ct_chest_path, thresholds_json):
    base = ["detect", "--model", str(ae_package), "--input", str(ct_chest_path), "--no-progress"]
    assert "does not exist" in _bad(capsys, base + ["--output", str(tmp_path / "a"), "--thresholds",
                                                    str(tmp_path / "none.json")])
    assert "calibrate" in _bad(capsys, base + ["--output", str(tmp_path / "b")])  # no <model>/anomaly_thresholds.json
    assert "does not exist" in _bad(capsys, ["detect", "--model", str(ae_package), "--input", str(tmp_path / "no"),
                                             "--output", str(tmp_path / "c"), "--thresholds", str(thresholds_json)])
    assert "--fpr" in _bad(capsys, ["calibrate", "--model", str(ae_package), "--normal", str(ct_chest_path),
                                    "--fpr", "1.5", "--output", str(tmp_path / "t.json")])
    redcnn = save_model_package(tmp_path / "redcnn", {"generator.w": torch.zeros(1)}, make_manifest(
        "redcnn", {"generator": {"type": "redcnn"}}, "generator", 2, {"type": "window"}))
    assert "not an autoencoder" in _bad(capsys, ["detect", "--model", str(redcnn), "--input", str(ct_chest_path),
                                                 "--output", str(tmp_path / "d"), "--thresholds", str(thresholds_json)])


def test_outputs_are_not_overwritten_without_the_flag(tmp_path, capsys, ae_package, ct_chest_path, thresholds_json):
    argv = ["detect", "--model", str(ae_package), "--input", str(ct_chest_path), "--output", str(tmp_path / "o"),
            "--thresholds", str(thresholds_json), "--no-progress", "--format", "nifti"]
    assert main(argv) == 0
    scores = (tmp_path / "o" / "scores.csv").read_bytes()
    assert "--overwrite" in _bad(capsys, argv)
    assert (tmp_path / "o" / "scores.csv").read_bytes() == scores
    assert main(argv + ["--overwrite"]) == 0
    assert (tmp_path / "o" / "CTChest4_map.nii.gz").is_file()
    assert "--overwrite" in _bad(capsys, ["calibrate", "--model", str(ae_package), "--normal", str(ct_chest_path),
                                          "--output", str(thresholds_json)])


def test_thresholds_of_another_model_are_refused(tmp_path, capsys, ae_package, ct_chest_path, thresholds_json):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(ae_package, other)
    from safetensors.torch import load_file, save_file

    state = load_file(str(other / "model.safetensors"))
    state = {k: v + 0.01 for k, v in state.items()}
    save_file(state, str(other / "model.safetensors"))
    assert "another model" in _bad(capsys, ["detect", "--model", str(other), "--input", str(ct_chest_path),
                                            "--output", str(tmp_path / "x"), "--thresholds", str(thresholds_json)])


def test_help_is_instant_and_does_not_import_torch():
    code = ("import sys; from medgan.cli.anomaly import main; rc = main(['detect', '--help']); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "--thresholds" in run.stdout and "scores.csv" in run.stdout


def test_window_names_and_values():
    from medgan.cli.anomaly import _window

    assert _window("chest") == (-1350.0, 150.0)
    assert _window("40,400") == (-160.0, 240.0)


def test_bad_flags_are_one_line_too(tmp_path, capsys, ae_package, ct_chest_path, thresholds_json):
    argv = ["detect", "--model", str(ae_package), "--input", str(ct_chest_path), "--output", str(tmp_path / "o"),
            "--thresholds", str(thresholds_json)]
    assert "--window" in _bad(capsys, argv + ["--window", "lungish"])
    assert "--format" in _bad(capsys, argv + ["--format", "dicom"])
    (tmp_path / "file").write_text("x")
    assert "is a file" in _bad(capsys, argv[:-4] + ["--output", str(tmp_path / "file"), "--thresholds",
                                                   str(thresholds_json)])
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "case one.nrrd").write_bytes(ct_chest_path.read_bytes())
    (scans / "case_one.nii.gz").write_bytes(b"")
    assert "both give the output name 'case_one'" in _bad(
        capsys, ["detect", "--model", str(ae_package), "--input", str(scans), "--output", str(tmp_path / "p"),
                 "--thresholds", str(thresholds_json)])


def test_cli_map_choices_are_the_library_s():
    from medgan.anomaly.calibrated import HU_METHODS, MAP_METHODS, MapConfig
    from medgan.cli import anomaly as cli

    assert cli.MAP_METHODS == MAP_METHODS and cli.DEFAULT_MAP == MapConfig().method
    assert cli.HU_METHODS == HU_METHODS


def test_median_map_needs_no_model_and_masks_the_lesions(tmp_path, chest, chest_result):
    import slicerio
    from scipy import ndimage

    from medgan.anomaly import CalibratedMapper, Thresholds
    from medgan.io import read_volume, write_volume

    normal = tmp_path / "normal"
    write_volume(chest, normal / "normal.nii.gz")
    cal = tmp_path / "median.json"
    assert main(["calibrate", "--map", "median", "--normal", str(normal), "--fpr", "0.001", "--min-size-mm3", "200",
                 "--output", str(cal), "--no-progress"]) == 0
    data = json.loads(cal.read_text())
    assert data["map"]["method"] == "median" and data["model_sha256"] == "" and data["min_size_mm3"] == 200.0
    assert set(data["map_state"]["tissue"]) == {"median"}
    # 8-12 mm wide: under the 12 mm radius of the median disc, which a larger lesion would take over
    scans, truth = _normal_and_lesion_scans(tmp_path, chest, chest_result.body[0], count=3, radius_mm=(4.0, 6.0),
                                            contrast_hu=400.0, seed=3)
    out = tmp_path / "out"
    assert main(["detect", "--input", str(scans), "--output", str(out), "--thresholds", str(cal), "--no-progress"]) == 0
    rows = {r["case"]: r for r in _rows(out / "scores.csv")}
    assert rows["normal"]["anomalous"] == "no"  # (its densest normal structures set the scan score here)
    assert int(rows["lesion"]["anomalous_voxels"]) > int(rows["normal"]["anomalous_voxels"])
    thresholds = Thresholds.load(cal)
    expected = CalibratedMapper(None, thresholds.map_config, thresholds.map_state)(read_volume(scans / "lesion.nii.gz"))
    heat = read_volume(out / "lesion_map.nii.gz")
    np.testing.assert_allclose(heat[0].numpy(), expected.map[0].numpy(), atol=1e-4)
    mask = slicerio.read_segmentation(str(out / "lesion_mask.seg.nrrd"))["voxels"] > 0
    assert mask[truth[0].numpy()].mean() > 0.3  # a good part of the lesions is flagged
    labels, count = ndimage.label(mask)
    assert count > 0 and np.bincount(labels.ravel())[1:].min() * 3.05 * 3.05 * 10 > 200  # no speck survives


def test_combined_map_calibrates_its_rate_and_refuses_no_model(tmp_path, capsys, ae_package, ct_chest_path,
                                                                 chest):
    from medgan.anomaly import CalibratedMapper, Thresholds

    cal = tmp_path / "combined.json"
    assert main(["calibrate", "--model", str(ae_package), "--map", "combined", "--normal", str(ct_chest_path),
                 "--fpr", "0.01", "--output", str(cal), "--no-progress"]) == 0
    thresholds = Thresholds.load(cal)
    assert set(thresholds.map_state["tail"]) == {"net", "median"} and len(thresholds.model_sha256) == 64
    found = CalibratedMapper(ae_package, thresholds.map_config, thresholds.map_state, progress=False)(chest)
    rate = float((found.map[found.body] > thresholds.voxel_hu).float().mean())
    assert rate <= 0.01 and rate > 0.008  # the requested rate on the calibration scan
    assert "--model" in _bad(capsys, ["calibrate", "--map", "tissue", "--normal", str(ct_chest_path),
                                      "--output", str(tmp_path / "t.json")])


def test_default_map_is_median_hu_in_soft_tissue_and_grows_its_masks(tmp_path, chest, chest_result):
    import slicerio

    from medgan.io import write_volume

    normal = tmp_path / "normal"
    write_volume(chest, normal / "normal.nii.gz")
    cal = tmp_path / "default.json"
    assert main(["calibrate", "--normal", str(normal), "--fpr", "0.001", "--grow", "0.5", "--output", str(cal),
                 "--no-progress"]) == 0
    data = json.loads(cal.read_text())
    assert (data["map"]["method"], data["map"]["region"], data["grow"]) == ("median_hu", "soft", 0.5)
    assert data["map_state"] == {"tissue": {}, "tail": {}}  # nothing fitted: the map is in HU
    hu = chest[0].numpy()
    soft = chest_result.body[0].numpy() & (hu > -80) & (hu < 120)
    scans, truth = _normal_and_lesion_scans(tmp_path, chest, soft, count=3, radius_mm=(5.0, 7.0),
                                            contrast_hu=300.0, seed=3)
    out = tmp_path / "out"
    assert main(["detect", "--input", str(scans), "--output", str(out), "--thresholds", str(cal), "--no-progress"]) == 0
    rows = {r["case"]: r for r in _rows(out / "scores.csv")}
    assert int(rows["lesion"]["anomalous_voxels"]) > int(rows["normal"]["anomalous_voxels"])
    mask = slicerio.read_segmentation(str(out / "lesion_mask.seg.nrrd"))["voxels"] > 0
    assert mask[truth[0].numpy()].mean() > 0.5  # most lesion voxels are flagged
