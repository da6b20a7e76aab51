"""The metric code against the ldct-benchmark formulas written out here (Eulig et al. 2024, their
``compute_metric``: DICOM-linear windowing to [0, 1], scikit-image SSIM with data_range=1, PSNR = 10 log10(1/MSE),
RMSE on HU + 1024 clipped to [0, 2924])."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from medgan.config import parse_window
from medgan.metrics import WindowedMetrics, slice_metrics, window_to_unit, windowed_metrics

CHEST = (-1350.0, 150.0)  # C-600 / W1500


def _benchmark_window(hu, center, width):
    # the benchmark's apply_center_width (DICOM linear VOI function), written out
    lower, upper = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    x = hu.astype(np.float32)
    return np.where(x <= lower, 0.0, np.where(x > upper, 1.0, (x - (center - 0.5)) / (width - 1) + 0.5)).astype(np.float32)


@pytest.mark.parametrize("name, center, width", [("chest", -600, 1500), ("abdomen", 50, 400), ("head", 40, 80)])
def test_the_three_windows_match_the_benchmark_windowing(name, center, width):
    window = parse_window(name)
    assert window == (center - width / 2, center + width / 2)
    hu = np.linspace(center - width, center + width, 997).astype(np.float32)
    np.testing.assert_allclose(window_to_unit(hu, window), _benchmark_window(hu, center, width), atol=1e-6)
    assert window_to_unit(np.float32(center + width / 2 - 1), window) == pytest.approx(1.0)


def test_window_to_unit_keeps_tensors_and_clips():
    hu = torch.tensor([-2000.0, -1350.0, -600.0, 149.0, 3000.0])
    assert window_to_unit(hu, CHEST).tolist() == pytest.approx([0.0, 0.0, 750 / 1499, 1.0, 1.0])
    with pytest.raises(ValueError, match="width"):
        window_to_unit(hu, (0.0, 1.0))


@pytest.mark.parametrize("name", ["chest", "abdomen", "head"])
def test_ssim_and_psnr_equal_the_formulas_on_a_real_slice(name, ct_small_path):
    import pydicom

    ds = pydicom.dcmread(ct_small_path)
    target = (ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)).astype(np.float32)
    rng = np.random.default_rng(0)
    pred = target + rng.normal(0, 20, target.shape).astype(np.float32)
    center, width = {"chest": (-600, 1500), "abdomen": (50, 400), "head": (40, 80)}[name]
    t, p = _benchmark_window(target, center, width), _benchmark_window(pred, center, width)
    m = slice_metrics(pred, target, parse_window(name))
    assert m["ssim"] == pytest.approx(structural_similarity(t, p, data_range=1.0), abs=1e-6)
    assert m["psnr"] == pytest.approx(10 * math.log10(1.0 / np.mean((t.astype(np.float64) - p) ** 2)), abs=1e-4)
    rmse = np.sqrt(np.mean((np.clip(pred + 1024, 0, 2924) - np.clip(target + 1024, 0, 2924)) ** 2))
    assert m["rmse"] == pytest.approx(rmse, rel=1e-5)


def test_known_offset_gives_the_analytic_psnr_and_rmse():
    target = torch.full((2, 1, 24, 24), -600.0)
    pred = target + 30.0  # 30 HU = 30/1499 of the chest window's [0, 1] scale
    m = windowed_metrics(pred, target, CHEST)
    assert m["rmse"].tolist() == pytest.approx([30.0, 30.0], rel=1e-5)
    assert m["psnr"].tolist() == pytest.approx([-20 * math.log10(30 / 1499)] * 2, abs=1e-3)  # 33.97 dB
    assert m["ssim"].shape == (2,)


def test_rmse_uses_the_benchmark_clip_not_the_window():
    target = torch.zeros(1, 1, 16, 16)
    far = torch.full((1, 1, 16, 16), 5000.0)  # clipped to 1900 HU for RMSE
    assert windowed_metrics(far, target, CHEST)["rmse"].item() == pytest.approx(1900.0)
    below = torch.full((1, 1, 16, 16), -3024.0)  # padding: clipped to -1024 HU (0 after + 1024)
    assert windowed_metrics(below, target, CHEST)["rmse"].item() == pytest.approx(1024.0)


def test_identical_images_score_best_and_noise_scores_worse():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(1, 1, 32, 32, generator=g) * 300 - 500
    same = windowed_metrics(target, target, CHEST)
    noisy = windowed_metrics(target + 100 * torch.randn(1, 1, 32, 32, generator=g), target, CHEST)
    assert same["ssim"].item() == pytest.approx(1.0, abs=1e-6) and same["rmse"].item() == 0.0
    assert same["psnr"].item() == 100.0
    assert noisy["ssim"].item() < 0.99 and noisy["psnr"].item() < 40


def test_3d_images_are_the_mean_over_their_axial_slices():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(1, 1, 16, 16, 3, generator=g) * 100
    pred = target + torch.randn(1, 1, 16, 16, 3, generator=g) * torch.tensor([5.0, 20.0, 50.0])
    window = (-160.0, 240.0)
    m = windowed_metrics(pred, target, window)
    per_slice = [slice_metrics(pred[0, 0, ..., z].numpy(), target[0, 0, ..., z].numpy(), window) for z in range(3)]
    for k in ("psnr", "ssim", "rmse"):
        assert m[k].item() == pytest.approx(np.mean([s[k] for s in per_slice]), rel=1e-5)


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
