import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from skimage.transform import iradon, radon

from medgan.errors import ConfigError
from medgan.transforms.lowdose import (
    RandSimulateLowDosed,
    SimulateLowDosed,
    noise_power_spectrum,
    simulate_low_dose,
)
from tests.transforms.phantoms import water_cylinder

VIEWS = 360
PX = 1.5
ROI = (slice(None), slice(49, 79), slice(49, 79))  # central 30x30 water region


def _sim(hu, dose, mode="absolute", seed=1, **kw):
    return simulate_low_dose(hu, dose, mode=mode, views=VIEWS, pixel_size_mm=PX, seed=seed, **kw)


@pytest.fixture(scope="module")
def absolute_sigmas(cylinder_stack):
    sig, mean = {}, {}
    for dose in (1.0, 0.5, 0.25, 0.1):
        noise = (_sim(cylinder_stack, dose) - cylinder_stack)[ROI]
        sig[dose], mean[dose] = noise.std().item(), noise.mean().item()
    return sig, mean


@pytest.mark.parametrize("dose", [0.1, 0.25, 0.5])
def test_noise_sigma_scales_as_inverse_sqrt_dose_and_mean_stays(absolute_sigmas, dose):
    sig, mean = absolute_sigmas
    assert sig[1.0] > 5.0  # real noise, not a no-op
    expected = sig[1.0] / np.sqrt(dose)
    assert abs(sig[dose] - expected) / expected < 0.05, (dose, sig)
    assert abs(mean[dose]) < 2.0, mean


def test_noise_is_ramp_shaped_not_white(cylinder_stack):
    noise = (_sim(cylinder_stack, 0.25) - cylinder_stack)[:, 39:89, 39:89]
    freq, power = noise_power_spectrum(noise, bins=10)
    low = power[freq < 0.1].mean()
    mid = power[(freq > 0.2) & (freq < 0.35)].mean()
    assert low < 0.6 * mid, power
    # white noise of the same variance would be flat: check the test itself can tell them apart
    _, white = noise_power_spectrum(torch.randn(8, 50, 50), bins=10)
    assert white[:2].mean() > 0.6 * white[4:7].mean()


@pytest.mark.parametrize("dose", [0.1, 0.25, 0.5])
def test_relative_mode_on_a_dose_one_scan_matches_absolute_dose(cylinder_stack, absolute_sigmas, dose):
    full_dose_scan = _sim(cylinder_stack, 1.0, seed=7)  # what the scanner gave at I0
    # the known budget and the same filter: this checks the noise model, not the calibration
    low = _sim(full_dose_scan, dose, mode="relative", seed=8, photons=1e5, filter_name="ramp")
    sigma = (low - cylinder_stack)[ROI].std().item()
    expected = absolute_sigmas[0][dose]
    assert abs(sigma - expected) / expected < 0.05, (sigma, expected)


def test_sigma_matches_the_scikit_image_pipeline(cylinder_stack):
    # photons are per mm^2: a 1.5 mm x 1 mm detector element receives 1.5e5 per view
    hu = water_cylinder()
    mu_px = np.clip(0.0192 * PX * (1 + hu / 1000), 0, None)
    theta = np.arange(VIEWS) * 180.0 / VIEWS
    p = radon(mu_px, theta, circle=False)
    base = iradon(p, theta, output_size=128, circle=False)
    rng = np.random.default_rng(0)
    sigmas = []
    for _ in range(4):
        y = rng.poisson(0.25 * 1.5e5 * np.exp(-p)) + np.sqrt(10.0) * rng.standard_normal(p.shape)
        rec = iradon(-np.log(np.maximum(y, 1) / (0.25 * 1.5e5)), theta, output_size=128, circle=False)
        sigmas.append(((rec - base) * 1000 / (0.0192 * PX))[49:79, 49:79].std())
    ours = (_sim(cylinder_stack, 0.25) - cylinder_stack)[ROI].std().item()
    assert abs(ours - np.mean(sigmas)) / np.mean(sigmas) < 0.05, (ours, sigmas)


def test_same_seed_same_result_other_seed_other_noise():
    hu = torch.zeros(2, 32, 32)
    a = simulate_low_dose(hu, 0.25, views=60, seed=3, photons=1e5)
    assert torch.equal(a, simulate_low_dose(hu, 0.25, views=60, seed=3, photons=1e5))
    assert not torch.equal(a, simulate_low_dose(hu, 0.25, views=60, seed=4, photons=1e5))
    assert torch.equal(simulate_low_dose(hu, 1.0, views=60, seed=3), hu)  # relative at dose 1 adds nothing


def test_scanner_padding_outside_the_field_of_view_is_kept():
    hu = torch.zeros(1, 32, 32)
    hu[:, :4] = -3024.0  # vendor padding rows
    out = simulate_low_dose(hu, 0.1, views=40, seed=0, photons=1e5)
    assert torch.equal(out[:, :4], hu[:, :4])
    assert out[:, 8:].std() > 0


def test_shapes_2d_and_non_square_are_kept():
    assert simulate_low_dose(torch.zeros(20, 30), 0.5, views=40, seed=0, photons=1e5).shape == (20, 30)
    out = simulate_low_dose(torch.zeros(3, 24, 16, dtype=torch.float64), 0.5, views=40, seed=0, photons=1e5)
    assert out.shape == (3, 24, 16) and out.dtype == torch.float64
    assert out.std() > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dose": 0.0}, r"dose: got 0.0, allowed: a dose fraction in \(0, 1\]"),
        ({"dose": 1.5}, "dose: got 1.5"),
        ({"dose": 0.5, "mode": "sinogram"}, "mode: got 'sinogram', allowed: 'relative'"),
        ({"dose": 0.5, "photons": -1}, "photons: got -1"),
        ({"dose": 0.5, "views": 1}, "views: got 1"),
        ({"dose": 0.5, "filter_name": "x"}, "filter: got 'x'"),
        ({"dose": 0.5, "noise_hu": 0}, "noise_hu: got 0"),
        ({"dose": 0.5, "slice_thickness_mm": -1}, "slice_thickness_mm: got -1"),
    ],
)
def test_bad_parameters_are_config_errors_naming_them(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        simulate_low_dose(torch.zeros(8, 8), **kwargs)


def _meta_volume():
    affine = torch.diag(torch.tensor([0.8, 0.8, 2.5, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([-10.0, 5.0, 30.0])
    return MetaTensor(torch.zeros(1, 32, 24, 3), affine=affine, meta={"source_format": "nrrd"})


def test_dictionary_transform_keeps_geometry_and_meta():
    vol = _meta_volume()
    out = SimulateLowDosed(["image"], dose=0.25, views=40, seed=0, photons=1e5)({"image": vol, "other": 1})
    img = out["image"]
    assert isinstance(img, MetaTensor) and img.shape == vol.shape
    assert torch.equal(torch.as_tensor(img.affine), torch.as_tensor(vol.affine))
    assert img.meta["source_format"] == "nrrd" and out["other"] == 1
    assert img.std() > 0
    # slices are independent: noise differs between z positions
    assert not torch.equal(img[0, :, :, 0], img[0, :, :, 1])


def test_dictionary_transform_takes_the_pixel_size_from_the_affine():
    vol = _meta_volume()  # 0.8 mm pixels
    vol[0, 8:24, 6:18] = 40.0  # some tissue, so the projections are not all air
    out = SimulateLowDosed("image", dose=0.25, views=40, seed=2, photons=1e5)({"image": vol})["image"]
    slices = vol[0].as_tensor().permute(2, 1, 0)  # (Z, Y, X)
    # no DICOM thickness: the z spacing (2.5 mm) is the detector element's height
    kw = dict(views=40, seed=2, photons=1e5, slice_thickness_mm=2.5)
    seeded = simulate_low_dose(slices, 0.25, pixel_size_mm=0.8, **kw)
    assert torch.allclose(out[0].as_tensor().permute(2, 1, 0), seeded)
    other = simulate_low_dose(slices, 0.25, pixel_size_mm=1.6, **kw)
    assert not torch.allclose(other, seeded)


def test_random_transform_draws_dose_in_range_and_is_reproducible():
    vol = _meta_volume()
    t = RandSimulateLowDosed(["image"], dose_range=(0.2, 0.3), views=40, photons=1e5)
    t.set_random_state(5)
    first = t({"image": vol})["image"]
    dose, seed = t.last_dose, t.last_seed
    assert 0.2 <= dose <= 0.3
    t.set_random_state(5)
    assert torch.equal(t({"image": vol})["image"], first) and t.last_seed == seed
    twin = SimulateLowDosed(["image"], dose=dose, views=40, photons=1e5).simulate(vol, dose, seed)
    assert torch.equal(twin, first)
    with pytest.raises(ConfigError, match="dose_range"):
        RandSimulateLowDosed(["image"], dose_range=(0.5, 0.2))


def test_slice_thickness_comes_from_meta_then_dicom_then_spacing():
    from pydicom.data import get_testdata_file

    from medgan.io import read_volume
    from medgan.transforms.lowdose import slice_thickness

    vol = _meta_volume()  # z spacing 2.5 mm
    assert slice_thickness(vol) == 2.5 and slice_thickness(vol, 7.0) == 7.0
    vol.meta["slice_thickness_mm"] = 3.0  # a transform made the slices thicker
    assert slice_thickness(vol) == 3.0
    head = read_volume(get_testdata_file("693_J2KI.dcm"))  # one slice: spacing says nothing, the header 5 mm
    assert slice_thickness(head) == 5.0
    assert slice_thickness(torch.zeros(1, 4, 4)) is None


def test_relative_noise_stays_bounded_under_photon_starvation():
    from medgan.transforms.projection_noise import MAX_LOG_VARIANCE, MIN_COUNTS, projection_noise

    gen = torch.Generator().manual_seed(0)
    # line integrals from open air to a few expected counts at 10% of a 100-photon budget
    p = torch.linspace(0.0, 9.0, 20000)
    noise = projection_noise(p, 0.1, photons=100.0, mode="relative", generator=gen)
    starved = p > 5.0  # under 1 expected count at this dose
    assert noise[starved].std() <= 1.05 * MAX_LOG_VARIANCE ** 0.5
    # what a floored, logged reading really does there (the cap is no tighter than the physics)
    expected = torch.full((200000,), 5.0)
    counts = torch.poisson(expected, generator=gen) + 10**0.5 * torch.randn(expected.shape, generator=gen)
    assert torch.log(counts.clamp_min(MIN_COUNTS)).var() <= MAX_LOG_VARIANCE
    # and where counts are plentiful the first-order variance is untouched
    bright = projection_noise(torch.zeros(20000), 0.5, photons=1e5, mode="relative", generator=gen)
    assert abs(bright.var().item() / ((0.25 * 1e5 + 0.75 * 10) / (0.5e5) ** 2) - 1) < 0.05
