"""Threshold calibration: the requested false-positive rate on the calibration scans, JSON in and out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medgan.anomaly import ScoreConfig, ThresholdCalibrator, Thresholds, calibrate
from medgan.anomaly.thresholds import bin_width_hu
from medgan.errors import ConfigError, InputError, MissingFileError, OutputExistsError


@pytest.mark.parametrize("fpr", [0.01, 0.05])
def test_voxel_threshold_gives_the_requested_fpr_on_the_calibration_scans(chest_result, fpr):
    calibrator = ThresholdCalibrator(fpr)
    calibrator.add("chest", chest_result.map, chest_result.body, 1.0)
    thresholds = calibrator.result(sigma_mm=1.0, body_hu=-500.0, score=ScoreConfig())
    values = chest_result.map[chest_result.body].numpy()
    realised = float((values > thresholds.voxel_hu).mean())
    # at most fpr, and short of it by no more than the voxels inside one 1/16 HU histogram bin
    in_bin = float(((values > thresholds.voxel_hu - bin_width_hu()) & (values <= thresholds.voxel_hu)).mean())
    assert realised <= fpr
    assert realised >= fpr - in_bin - 1e-9
    assert abs(realised - fpr) < 0.1 * fpr
    assert thresholds.achieved_fpr == pytest.approx(realised, abs=1e-6)
    assert thresholds.voxels == values.size


def test_fpr_holds_over_several_scans_pooled():
    rng = np.random.default_rng(0)
    maps = [torch.from_numpy(rng.gamma(2.0, scale, size=(1, 40, 40, 10)).astype(np.float32)) for scale in (5, 20)]
    calibrator = ThresholdCalibrator(0.02)
    for i, m in enumerate(maps):
        calibrator.add(f"scan{i}", m, None, float(i))
    voxel_hu, achieved = calibrator.voxel_threshold()
    pooled = torch.cat([m.ravel() for m in maps])
    assert float((pooled > voxel_hu).float().mean()) == pytest.approx(0.02, abs=0.002)
    assert achieved == pytest.approx(float((pooled > voxel_hu).float().mean()), abs=1e-6)


def test_scan_threshold_is_the_largest_normal_score_with_few_scans():
    calibrator = ThresholdCalibrator(0.01)
    for i, score in enumerate([3.0, 7.5, 5.0]):
        calibrator.add(f"s{i}", torch.full((1, 4, 4, 2), float(i)), None, score)
    thresholds = calibrator.result(sigma_mm=1.0, body_hu=None, score=ScoreConfig())
    assert thresholds.scan == 7.5
    assert thresholds.scans == ["s0", "s1", "s2"]


def test_thresholds_json_round_trip_and_errors(tmp_path):
    t = Thresholds(voxel_hu=12.5, scan=40.0, fpr=0.01, achieved_fpr=0.0099, scan_fpr=0.01, sigma_mm=1.0,
                   body_hu=-500.0, model_sha256="ab" * 32, model="m", scans=["a"], scan_scores=[3.0], voxels=10)
    path = t.save(tmp_path / "t.json")
    assert Thresholds.load(path) == t
    assert json.loads(path.read_text())["voxel_hu"] == 12.5
    with pytest.raises(OutputExistsError, match="overwrite"):
        t.save(path)
    t.save(path, overwrite=True)
    with pytest.raises(MissingFileError, match="calibrate"):
        Thresholds.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        Thresholds.load(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(json.dumps({"voxel_hu": 1.0, "colour": "red"}))
    with pytest.raises(InputError, match=r"missing key\(s\) \['achieved_fpr'.*unknown key\(s\) \['colour'\]"):
        Thresholds.load(tmp_path / "partial.json")


@pytest.mark.parametrize("fpr", [0.0, 1.0, -0.1, 2])
def test_bad_fpr_is_a_config_error(fpr):
    with pytest.raises(ConfigError, match="--fpr"):
        ThresholdCalibrator(fpr)


def test_calibrate_from_a_package_records_the_model_and_settings(ae_package, ct_chest_path, chest_result):
    from medgan.anomaly import MapConfig

    thresholds = calibrate(ae_package, ct_chest_path, fpr=0.01, map_config=MapConfig(method="residual", open_mm=0, region="body"),
                           progress=False)
    assert thresholds.scans == ["CTChest4"]
    assert len(thresholds.model_sha256) == 64
    assert thresholds.model == "test AE of the chest CT (residual map)"
    assert (thresholds.sigma_mm, thresholds.body_hu) == (1.0, -500.0)
    values = chest_result.map[chest_result.body].numpy()  # same model and settings -> same map
    assert float((values > thresholds.voxel_hu).mean()) == pytest.approx(0.01, abs=0.001)


def test_values_beyond_the_histogram_are_ranked_exactly():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 20000, size=(1, 50, 50, 4)).astype(np.float32)  # ~80% above 4096 HU
    calibrator = ThresholdCalibrator(0.05)
    calibrator.add("wild", torch.from_numpy(values), None, 0.0)
    voxel_hu, achieved = calibrator.voxel_threshold()
    assert voxel_hu > 4096
    assert float((values > voxel_hu).mean()) == pytest.approx(0.05, abs=1 / values.size)
    assert achieved == pytest.approx(float((values > voxel_hu).mean()))
