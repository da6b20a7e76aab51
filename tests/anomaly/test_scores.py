"""Scan and slice scores from maps with known values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.anomaly import ScoreConfig, scan_score, slice_scores
from medgan.errors import ConfigError


def _map(values: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> MetaTensor:
    return MetaTensor(torch.as_tensor(values, dtype=torch.float32)[None],
                      affine=torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64)))


def test_topk_averages_the_voxels_covering_the_given_volume():
    values = np.zeros((10, 10, 10), np.float32)
    values.ravel()[:8] = [100, 90, 80, 70, 60, 50, 40, 30]
    # 2 x 2 x 2 mm voxels = 8 mm3: 40 mm3 -> the top 5 voxels
    score = scan_score(_map(values, (2.0, 2.0, 2.0)), ScoreConfig(topk_mm3=40.0))
    assert score == pytest.approx(80.0)
    # the same volume on 1 mm voxels is 40 voxels: the mean includes 32 zeros
    assert scan_score(_map(values), ScoreConfig(topk_mm3=40.0)) == pytest.approx(520.0 / 40)


def test_quantile_and_max_and_region():
    values = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    assert scan_score(_map(values), ScoreConfig(method="max")) == 999.0
    assert scan_score(_map(values), ScoreConfig(method="quantile", quantile=0.5)) == pytest.approx(499.5)
    region = values < 100
    assert scan_score(_map(values), ScoreConfig(method="max"), region=region) == 99.0
    assert scan_score(_map(values), ScoreConfig(method="max"), region=np.zeros_like(region)) == 0.0


def test_slice_scores_point_at_the_slice_with_the_anomaly():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 10, size=(16, 16, 7)).astype(np.float32)
    values[4:7, 4:7, 5] = 200.0
    scores = slice_scores(_map(values), ScoreConfig(topk_mm3=9.0))
    assert scores.shape == (7,)
    assert int(np.argmax(scores)) == 5
    assert scores[5] == pytest.approx(200.0)
    assert scores[:5].max() < 10.0


@pytest.mark.parametrize("kwargs, match", [({"method": "mean"}, "score.method"), ({"topk_mm3": 0}, "topk_mm3"),
                                           ({"quantile": 1.5}, "quantile")])
def test_bad_score_settings_name_the_parameter(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ScoreConfig(**kwargs)


def test_score_config_round_trips_and_rejects_unknown_keys():
    cfg = ScoreConfig(method="quantile", quantile=0.99)
    assert ScoreConfig.from_config(cfg.to_config()) == cfg
    with pytest.raises(ConfigError, match="unknown key"):
        ScoreConfig.from_config({"methd": "max"})
