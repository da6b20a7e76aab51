"""Intensity-outlier baseline, tissue-normalised residuals, tail calibration, AUPRC / best Dice, restorer net."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.anomaly import auprc, best_dice
from medgan.anomaly.intensity import IntensityOutlier, TailCalibrator, TissueErrorNormaliser
from medgan.errors import ConfigError, InputError


def _tissue(seed: int = 0) -> torch.Tensor:
    """(1, 24, 24, 6) HU: soft tissue at 40 HU with 10 HU noise, a bone column at 700 HU."""
    rng = np.random.default_rng(seed)
    vol = 40.0 + 10.0 * rng.standard_normal((24, 24, 6))
    vol[:4] = 700.0
    return torch.from_numpy(vol.astype(np.float32))[None]


def test_auprc_and_best_dice_match_hand_values():
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    assert auprc(s, y) == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert best_dice(s, y) == pytest.approx(2 / 3)
    assert auprc(y.astype(float), y) == pytest.approx(1.0)  # a perfect score
    with pytest.raises(InputError):
        auprc(s, np.zeros(6))


def test_intensity_outlier_flags_a_hyperdense_spot_not_common_tissue():
    body = torch.ones(1, 24, 24, 6, dtype=torch.bool)
    model = IntensityOutlier(sigma_mm=0.0).fit([_tissue(0)], [body])
    test = _tissue(1)
    test[0, 12:15, 12:15, 2:4] += 200.0  # 240 HU: between the tissue and the bone peaks
    out = model(test, body)[0]
    assert out[13, 13, 3] > out[10, 10, 3] + 5  # far rarer than tissue, in nats
    assert out[0, 0, 0] < out[13, 13, 3]  # bone is common in the calibration scan
    assert torch.equal(model(test, torch.zeros_like(body))[0], torch.zeros(24, 24, 6))
    with pytest.raises(InputError):
        IntensityOutlier()(test)


def test_tissue_normaliser_divides_by_the_tissue_error():
    restoration = _tissue(0)
    residual = torch.where(restoration > 300, torch.tensor(40.0), torch.tensor(4.0))  # edges err more
    body = torch.ones_like(restoration, dtype=torch.bool)
    norm = TissueErrorNormaliser(floor=0.0)
    norm.add(residual, restoration, body)
    out = norm(residual, restoration)
    assert torch.allclose(out, torch.ones_like(out), atol=1e-5)  # each tissue at its expected error


def test_tail_calibrator_is_minus_log10_exceedance():
    cal = TailCalibrator()
    cal.add(np.arange(999, dtype=np.float32).reshape(1, 999, 1, 1), np.ones((1, 999, 1, 1), bool))
    out = cal(np.array([-1.0, 499.0, 998.0, 1000.0, 1010.0], dtype=np.float32).reshape(5, 1, 1))[0, :, 0, 0].numpy()
    assert out[0] == pytest.approx(0.0)
    assert out[1] == pytest.approx(-np.log10(501 / 1000), abs=1e-4)
    assert out[2] == pytest.approx(-np.log10(2 / 1000), abs=1e-4)  # the largest value: 1 at or above it
    assert 3.0 <= out[3] < out[4]  # rarer than every calibration value: still ranked, along the fitted tail


def test_tail_table_is_compact_and_round_trips():
    rng = np.random.default_rng(0)
    values = rng.exponential(10.0, 100_000).astype(np.float32)
    cal = TailCalibrator(points=512)
    cal.add(values)
    table = cal.to_config()
    assert len(table["values"]) <= 512 and table["n"] == values.size
    test = np.array([1.0, 30.0, 90.0, 200.0], dtype=np.float32).reshape(4, 1, 1)
    loaded = TailCalibrator.from_config(table)
    assert torch.equal(loaded(test), cal(test))
    exact = -np.log10(((values[None] >= test.ravel()[:, None]).sum(1) + 1) / (values.size + 1))
    np.testing.assert_allclose(cal(test)[0, :3, 0, 0].numpy(), exact[:3], atol=0.02)  # log-spaced table: tail kept


def test_restorer_corrupts_only_while_training():
    from medgan.nets import build_net

    net = build_net({"type": "anomaly_restorer", "in_channels": 3, "channels": [4, 8], "noise_std": 0.2})
    x = torch.zeros(2, 3, 16, 16)
    corrupted = net.corrupt(x)
    assert corrupted[:, 1].abs().max() > 0  # the centre slice always
    net.eval()
    assert torch.equal(net(x), x[:, 1:2])  # zero-initialised tail: an untrained net restores nothing
    with pytest.raises(ConfigError):
        build_net({"type": "anomaly_restorer", "blob_px": [0, 4]})


def test_recommended_config_takes_a_wall_time_budget():
    from pathlib import Path

    from medgan.config import load_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs" / "anomaly.yaml", ["data.root=datasets/normal", "trainer.max_time=00:00:01:00"])
    assert cfg.trainer.max_time_seconds() == 60
    assert cfg.nets.generator["type"] == "anomaly_restorer" and cfg.data.input_mode == "2.5d"
