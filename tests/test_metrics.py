import math

import pytest
import torch

from medgan.metrics import WindowedMetrics, window_to_unit, windowed_metrics

CHEST = (-1350.0, 150.0)  # C-600 / W1500


def test_window_to_unit_clips_and_scales():
    hu = torch.tensor([-2000.0, -1350.0, -600.0, 150.0, 3000.0])
    assert window_to_unit(hu, CHEST).tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])


def test_known_offset_gives_the_analytic_psnr_and_rmse():
    target = torch.full((2, 1, 24, 24), -600.0)
    pred = target + 30.0  # 30 HU = 0.02 of the 1500 HU window
    m = windowed_metrics(pred, target, CHEST)
    assert m["rmse"].tolist() == pytest.approx([30.0, 30.0], rel=1e-5)
    assert m["psnr"].tolist() == pytest.approx([-20 * math.log10(0.02)] * 2, rel=1e-4)  # 33.98 dB
    assert m["ssim"].shape == (2,)


def test_identical_images_score_best_and_noise_scores_worse():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(1, 1, 32, 32, generator=g) * 300 - 500
    same = windowed_metrics(target, target, CHEST)
    noisy = windowed_metrics(target + 100 * torch.randn(1, 1, 32, 32, generator=g), target, CHEST)
    assert same["ssim"].item() == pytest.approx(1.0, abs=1e-5) and same["rmse"].item() == 0.0
    assert math.isfinite(same["psnr"].item())
    assert noisy["ssim"].item() < 0.99 and noisy["psnr"].item() < same["psnr"].item()


def test_rmse_uses_the_benchmark_clip_not_the_window():
    target = torch.zeros(1, 1, 16, 16)
    far = torch.full((1, 1, 16, 16), 5000.0)  # clipped to 1900 HU for RMSE
    m = windowed_metrics(far, target, CHEST)
    assert m["rmse"].item() == pytest.approx(1900.0)


def test_3d_volumes_and_small_patches():
    target = torch.randn(1, 1, 8, 16, 16) * 100
    m = windowed_metrics(target + 10, target, (-160.0, 240.0))
    assert all(v.shape == (1,) for v in m.values())
    assert 0.0 < m["ssim"].item() <= 1.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        windowed_metrics(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 17), CHEST)


def test_every_case_counts_equally():
    acc = WindowedMetrics(CHEST)
    t = torch.full((1, 1, 16, 16), -600.0)
    acc.update(torch.cat([t + 10, t + 10, t + 10]), torch.cat([t, t, t]), ["a", "a", "a"])
    acc.update(t + 40, t, ["b"])
    out = acc.compute()
    assert out["rmse"] == pytest.approx(25.0, rel=1e-5)  # (10 + 40) / 2, not (3*10 + 40) / 4
    assert out["cases"] == 2 and out["images"] == 4
    acc.reset()
    assert math.isnan(acc.compute()["ssim"])
