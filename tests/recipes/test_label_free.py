"""Label-free validation scores on the real chest CT with simulated-looking noise."""

from __future__ import annotations

import math

import pytest
import SimpleITK as sitk
import torch

from medgan.recipes.label_free import cycle_error_hu, label_free_scores, noise_window


@pytest.fixture(scope="module")
def clean_and_noisy(ct_chest_path):
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(ct_chest_path)))[12:16]  # (Z, Y, X) HU
    clean = torch.as_tensor(image, dtype=torch.float32).permute(2, 1, 0)[None]  # (1, X, Y, Z)
    noise = 60.0 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    return clean, clean + noise


def test_identity_output_scores_no_gain_no_change(clean_and_noisy):
    _, noisy = clean_and_noisy
    s = label_free_scores(noisy, noisy, pixel_mm=3.0)
    assert s["noise_hu"] == pytest.approx(s["input_noise_hu"])
    assert 45 < s["input_noise_hu"] < 75  # the 60 HU that was added (plus the scan's own)
    assert s["lowfreq_hu"] == 0.0 and s["edge_ratio"] == pytest.approx(1.0)
    assert s["unpaired_gain_db"] == pytest.approx(0.0, abs=1e-6)


def test_a_denoiser_gains_and_an_anatomy_shift_loses(clean_and_noisy):
    clean, noisy = clean_and_noisy
    denoised = label_free_scores(clean, noisy, pixel_mm=3.0)  # the perfect denoiser
    assert denoised["noise_hu"] < 0.5 * denoised["input_noise_hu"]
    assert denoised["unpaired_gain_db"] > 3.0
    assert 0.9 < denoised["edge_ratio"] < 1.1  # edges kept
    shifted = label_free_scores(torch.roll(clean, 2, dims=1), noisy, pixel_mm=3.0)  # noise gone, anatomy moved
    assert shifted["lowfreq_hu"] > 3 * denoised["lowfreq_hu"]
    assert shifted["unpaired_gain_db"] < denoised["unpaired_gain_db"] - 3.0
    blurred = label_free_scores(torch.nn.functional.avg_pool3d(clean[None], (9, 9, 1), 1, (4, 4, 0))[0],
                                noisy, pixel_mm=3.0)
    assert blurred["edge_ratio"] < denoised["edge_ratio"] - 0.1


def test_no_soft_tissue_gives_nan_noise_not_an_error():
    air = torch.full((1, 32, 32, 2), -1000.0) + torch.randn(1, 32, 32, 2)
    s = label_free_scores(air, air)
    assert math.isnan(s["noise_hu"]) and math.isnan(s["unpaired_gain_db"])
    assert s["lowfreq_hu"] == 0.0


def test_noise_window_spans_about_10_mm_and_cycle_error_is_mean_abs():
    assert noise_window(0.7) == 15 and noise_window(3.0) == 5 and noise_window(1.0) == 11
    assert cycle_error_hu(torch.ones(1, 2, 2, 1) * 3, torch.zeros(1, 2, 2, 1)) == 3.0
