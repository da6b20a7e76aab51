import numpy as np
import pytest
import torch

from medgan.transforms.noise_level import (
    estimate_noise_hu,
    nps_peak_frequency,
    plateau_fraction,
    scan_nps,
    window_stats,
)
from tests.transforms.phantoms import water_cylinder


def _anatomy(size: int = 128) -> torch.Tensor:
    """Soft tissue with a gradient, a bone and a lung insert, a fat ring: structure the estimator must ignore."""
    hu = torch.from_numpy(water_cylinder(size, radius=0.45 * size, inserts=True)) + 40.0
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2).sqrt()
    hu = torch.where(hu > -500, hu + 0.3 * (xx - size / 2), hu)  # 0.3 HU per pixel: a slow gradient
    return torch.where((r > 0.4 * size) & (r < 0.45 * size), torch.full_like(hu, -100.0), hu)


@pytest.mark.parametrize("sigma", [3.0, 12.0, 40.0])
def test_noise_sigma_is_found_under_anatomy(sigma):
    gen = torch.Generator().manual_seed(0)
    anatomy = _anatomy()[None].repeat(4, 1, 1)
    noisy = anatomy + sigma * torch.randn(anatomy.shape, generator=gen)
    assert abs(estimate_noise_hu(noisy) - sigma) / sigma < 0.06
    # the plain std of soft tissue would count the gradient and edges as noise
    soft = (anatomy > -150) & (anatomy < 250)
    assert (noisy - anatomy.mean())[soft].std() > 1.5 * sigma if sigma < 10 else True


def test_window_sd_ignores_a_plane():
    yy, xx = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    _, sd = window_stats((3 * xx - 2 * yy)[None])
    assert sd.max() < 0.05  # float32 sums of values up to 120: rounding only


def test_reference_chooses_the_windows_of_the_added_noise():
    gen = torch.Generator().manual_seed(1)
    scan = _anatomy()[None] + 5 * torch.randn((1, 128, 128), generator=gen)
    added = 9 * torch.randn((1, 128, 128), generator=gen)
    assert abs(estimate_noise_hu(added, scan) - 9) < 0.6


def test_plateaus_and_air_are_not_measurements():
    flat = torch.full((1, 64, 64), 30.0)  # lossy compression flattens soft tissue into plateaus
    assert plateau_fraction(flat) == 1.0
    with pytest.raises(ValueError, match="no homogeneous soft tissue"):
        estimate_noise_hu(flat)
    with pytest.raises(ValueError, match="no homogeneous soft tissue"):
        estimate_noise_hu(torch.full((1, 64, 64), -1000.0) + torch.randn(1, 64, 64))


def _white_and_smooth(shape: tuple[int, int, int], seed: int) -> dict[str, torch.Tensor]:
    """White noise and the same noise smoothed by a 5x5 binomial kernel (an NPS peaking lower)."""
    white = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 256)[None, None]
    return {"white": white, "smooth": torch.nn.functional.conv2d(white[:, None], kernel, padding=2)[:, 0]}


def test_nps_peak_tells_smooth_from_sharp_noise():
    peaks = {}
    for name, noise in _white_and_smooth((4, 128, 128), 2).items():
        noise = 40 + noise * (10 / noise.std())
        freq, power, count = scan_nps(noise, roi=32)
        assert count > 20
        peaks[name] = nps_peak_frequency(freq, power)
    assert peaks["smooth"] < 0.6 * peaks["white"], peaks
    assert np.isfinite(list(peaks.values())).all()


def test_windows_are_sized_in_mm_with_a_pixel_minimum():
    from medgan.transforms.noise_level import window_pixels

    assert window_pixels(0.48) == 17 and window_pixels(0.76) == 11  # ~8 mm, odd
    assert window_pixels(3.05) == 7  # the minimum: 21 mm on a 3 mm chest slice, not 45 mm
    assert window_pixels(None) == 15 and window_pixels(0.5, window=9) == 9
    with pytest.raises(ValueError, match="pixel_size_mm"):
        window_pixels(0.0)


def test_mm_windows_fit_between_structures_of_a_coarse_chest_slice():
    # 3 mm pixels: soft-tissue bands 12 pixels (36 mm) wide between 3-pixel fat septa; noise 10 HU.
    # Every 15-pixel window holds a septum (the step counts as noise); 7-pixel windows fit inside a band.
    gen = torch.Generator().manual_seed(3)
    band = torch.where(torch.arange(150) % 15 < 12, 40.0, -90.0)
    scan = band[None, None, :].expand(4, 150, 150) + 10 * torch.randn((4, 150, 150), generator=gen)
    in_mm = estimate_noise_hu(scan, pixel_size_mm=3.0)
    in_pixels = estimate_noise_hu(scan)
    assert abs(in_mm - 10) < 1.0, in_mm
    assert in_pixels > 1.5 * in_mm, (in_pixels, in_mm)


def test_noise_per_slice_is_the_estimate_of_each_slice():
    from medgan.transforms.noise_level import noise_per_slice

    gen = torch.Generator().manual_seed(4)
    anatomy = _anatomy()[None].repeat(3, 1, 1)
    scan = anatomy + torch.tensor([4.0, 8.0, 16.0])[:, None, None] * torch.randn(anatomy.shape, generator=gen)
    per_slice = noise_per_slice(scan, pixel_size_mm=0.8)
    assert sorted(per_slice) == [0, 1, 2]
    for i, sigma in per_slice.items():
        assert sigma == pytest.approx(estimate_noise_hu(scan[i], pixel_size_mm=0.8))
    added = noise_per_slice(scan - anatomy, scan, pixel_size_mm=0.8)  # windows chosen on the scan
    assert added[2] == pytest.approx(estimate_noise_hu(scan[2] - anatomy[2], scan[2], pixel_size_mm=0.8))


def test_air_rois_measure_the_noise_outside_the_body_and_nowhere_else():
    from medgan.transforms.noise_level import homogeneous_rois

    noises = _white_and_smooth((2, 128, 128), 5)
    scan = torch.full((2, 128, 128), -1000.0)
    scan[:, :, 64:] = 40.0  # body on the right half, air on the left
    scan[:, :, :8] = -3024.0  # padding outside the reconstruction circle
    peaks = {}
    for name, noise in noises.items():
        noisy = scan + noise * (10 / noise.std())
        rois = homogeneous_rois(noisy, roi=16, region="air")
        assert len(rois) > 10 and rois.abs().max() < 100  # no body, no padding edge in any ROI
        freq, power, count = scan_nps(noisy, roi=16, region="air")
        peaks[name] = nps_peak_frequency(freq, power)
    assert peaks["smooth"] < 0.6 * peaks["white"], peaks
    assert len(homogeneous_rois(scan[:, :, 64:] + 10 * noises["white"][:, :, 64:], roi=16, region="air")) == 0
    with pytest.raises(ValueError, match="region"):
        homogeneous_rois(scan, roi=16, region="lung")
