"""Dose that means dose on real scans: the per-scan calibration of photon budget and noise texture."""

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.transforms import dose_calibration
from medgan.transforms.dose_calibration import calibrate_dose
from medgan.transforms.lowdose import (
    CalibrateDosed,
    RandSimulateLowDosed,
    SimulateLowDosed,
    simulate_low_dose,
)
from medgan.transforms.noise_level import (
    difference_ratio,
    estimate_noise_hu,
    homogeneous_windows,
    nps_peak_frequency,
    scan_nps,
    window_stats,
)
from tests.transforms.phantoms import water_cylinder

DOSES = (0.5, 0.25, 0.1)


def _scan(name: str) -> MetaTensor:
    from medgan.io import read_volume

    if name == "chest":
        import slicerio

        return read_volume(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd")
    from pydicom.data import get_testdata_file

    return read_volume(get_testdata_file(name))


def _slices(vol: MetaTensor) -> torch.Tensor:
    return vol[0].as_tensor().permute(2, 1, 0).float()  # (Z, rows, columns)


def _added_noise_check(name: str, views: int) -> dict[float, tuple[float, float]]:
    vol = _scan(name)
    full = _slices(vol)
    sigma_fd = estimate_noise_hu(full)
    soft = homogeneous_windows(full)
    result = {}
    for dose in DOSES:
        low = _slices(SimulateLowDosed("image", dose, views=views).simulate(vol, dose, 11))
        added = low - full
        ratio = estimate_noise_hu(added, full) / sigma_fd / np.sqrt(1 / dose - 1)
        shift = float(window_stats(added)[0][soft].mean())
        result[dose] = (ratio, shift)
    return result


def _assert_dose_means_dose(result):
    for dose, (ratio, shift) in result.items():
        assert abs(ratio - 1) < 0.2, (dose, ratio)  # sigma_add / sigma_FD = sqrt(1/a - 1) within 20%
        assert abs(shift) < 2.0, (dose, shift)


def test_added_noise_follows_the_dose_on_a_real_scan():
    _assert_dose_means_dose(_added_noise_check("CT_small.dcm", views=720))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["chest", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm"])
def test_added_noise_follows_the_dose_on_more_real_scans(name):
    _assert_dose_means_dose(_added_noise_check(name, views=360))


def test_inserted_noise_has_the_scans_texture():
    vol = _scan("CT_small.dcm")  # a GE STANDARD-kernel slice
    full = _slices(vol)
    sim = SimulateLowDosed("image", 0.25, views=720)
    added = _slices(sim.simulate(vol, 0.25, 5)) - full
    assert sim.last_calibration.filter_name == "gaussian"
    assert abs(difference_ratio(added, full) / difference_ratio(full) - 1) < 0.1
    # a ramp-filtered noise would be far sharper than this scan's
    ramp = simulate_low_dose(full, 0.25, views=720, pixel_size_mm=0.66, filter_name="ramp", seed=5) - full
    assert difference_ratio(ramp, full) < 0.75 * difference_ratio(full)


def _phantom_scan(pixel_mm: float, thickness_mm: float, cutoff: float | None = None, slices: int = 4):
    """A noisy water-cylinder scan (60 mm across) at full dose: absolute mode, 1e5 photons/mm^2."""
    size = int(round(64 / pixel_mm / 8)) * 8
    hu = torch.from_numpy(water_cylinder(size, radius=30 / pixel_mm))[None].repeat(slices, 1, 1)
    kw = dict(views=360, pixel_size_mm=pixel_mm, slice_thickness_mm=thickness_mm, electronic_noise=0.0)
    fd = simulate_low_dose(hu, 1.0, mode="absolute", seed=1, photons=1e5,
                           filter_name="gaussian" if cutoff else "ramp", filter_cutoff=cutoff, **kw)
    return hu, fd, kw


def test_phantom_nps_peak_of_the_inserted_noise_matches_the_scans():
    hu, fd, kw = _phantom_scan(0.8, 1.0, cutoff=0.15, slices=8)  # a smooth "kernel"
    low = simulate_low_dose(fd, 0.25, seed=2, **kw)
    peaks = [nps_peak_frequency(*scan_nps(img, fd, roi=16)[:2]) for img in (fd - hu, low - fd)]
    assert abs(peaks[1] / peaks[0] - 1) < 0.2, peaks


def test_calibration_recovers_the_known_budget_of_a_phantom_scan():
    _, fd, kw = _phantom_scan(0.8, 1.0)
    cal = calibrate_dose(fd, filter_name="ramp", **{k: kw[k] for k in kw if k != "pixel_size_mm"},
                         pixel_size_mm=0.8, use_cache=False)
    assert abs(cal.photons / 1e5 - 1) < 0.2, cal
    assert cal.noise_source == "measured" and cal.photons_per_ray == pytest.approx(cal.photons * 0.8)


def test_same_dose_same_sigma_ratio_at_any_pixel_size_and_thickness():
    ratios, sigmas = {}, {}
    for pixel in (0.4, 0.8, 1.6):
        for thickness in (1.0, 5.0):
            hu, fd, kw = _phantom_scan(pixel, thickness)
            low = simulate_low_dose(fd, 0.25, seed=3, **kw)
            sigmas[pixel, thickness] = estimate_noise_hu(fd - hu, fd)
            ratios[pixel, thickness] = estimate_noise_hu(low - fd, fd) / estimate_noise_hu(fd)
    for key, ratio in ratios.items():
        assert abs(ratio / np.sqrt(3) - 1) < 0.15, (key, ratios)
    # absolute mode: photons per mm^2, so sigma^2 ~ 1 / (pixel^3 x thickness) (the same dose, finer voxels)
    assert sigmas[0.8, 1.0] / sigmas[1.6, 1.0] == pytest.approx(2**1.5, rel=0.12)
    assert sigmas[0.8, 1.0] / sigmas[0.8, 5.0] == pytest.approx(5**0.5, rel=0.08)


def test_given_noise_and_given_photons_override_the_measurement():
    full = _slices(_scan("CT_small.dcm"))
    kw = dict(views=360, pixel_size_mm=0.66, filter_name="ramp")
    given = calibrate_dose(full, noise_hu=10.0, **kw)
    assert given.noise_source == "given" and given.noise_hu == 10.0
    low = simulate_low_dose(full, 0.25, calibration=given, seed=0, **kw)
    assert abs(estimate_noise_hu(low - full, full) / (10.0 * np.sqrt(3)) - 1) < 0.15
    fixed = calibrate_dose(full, photons=3e4, **kw)
    assert fixed.photons == 3e4 and fixed.electronic_scale == 1.0


def test_a_scan_without_soft_tissue_falls_back_to_the_default_budget():
    with pytest.warns(UserWarning, match="default"):
        cal = calibrate_dose(torch.full((1, 32, 32), -1000.0), pixel_size_mm=1.0, views=40, use_cache=False)
    assert cal.photons == dose_calibration.DEFAULT_PHOTONS and cal.filter_name == "ramp"


def test_random_doses_reuse_one_calibration_per_volume_and_crops_carry_it(monkeypatch):
    calls = []
    fit = dose_calibration._fit_budget
    monkeypatch.setattr(dose_calibration, "_fit_budget", lambda *a, **k: calls.append(1) or fit(*a, **k))
    vol = _scan("CT_small.dcm")
    vol = MetaTensor(vol.as_tensor() + 0.5, meta=dict(vol.meta), affine=vol.affine)  # content not seen before
    data = CalibrateDosed("image", views=120)({"image": vol})
    stored = data["image"].meta["medgan_dose_calibration"]
    assert stored["photons"] > 0 and len(calls) == 1
    rand = RandSimulateLowDosed("image", dose_range=(0.1, 0.5), views=120)
    rand.set_random_state(0)
    for _ in range(3):
        rand({"image": vol})
    crop = MetaTensor(vol.as_tensor()[:, 20:100, 20:100], meta=dict(vol.meta), affine=vol.affine)
    rand({"image": crop})
    assert len(calls) == 1  # the three doses and the crop used the volume's calibration
    assert rand.simulator.last_calibration.photons == stored["photons"]


@pytest.mark.slow
def test_the_stored_texture_table_is_what_the_projector_gives():
    cutoffs, ratios = dose_calibration.measure_texture_table()
    stored = np.asarray(dose_calibration.TEXTURE_TABLE)
    assert np.allclose(cutoffs, stored[:, 0]) and np.allclose(ratios, stored[:, 1], rtol=0.02)
    assert np.all(np.diff(ratios) < 0)  # monotonic: one cutoff per texture


def test_nps_fit_gives_the_kernel_of_a_phantom_scan_and_its_nps_peak():
    hu, fd, kw = _phantom_scan(0.8, 1.0, cutoff=0.2, slices=8)
    cal = calibrate_dose(fd, filter_name="auto-nps", use_cache=False, **kw)
    assert cal.filter_name == "gaussian" and 0.14 < cal.filter_cutoff < 0.28, cal
    low = simulate_low_dose(fd, 0.25, seed=2, calibration=cal, **kw)
    peaks = [nps_peak_frequency(*scan_nps(img, fd, roi=16)[:2]) for img in (fd - hu, low - fd)]
    assert abs(peaks[1] / peaks[0] - 1) < 0.2, peaks
    assert "NPS peak" in cal.describe()


@pytest.mark.slow
def test_the_stored_nps_peak_table_is_what_the_projector_gives():
    cutoffs, peaks = dose_calibration.measure_nps_peak_table()
    stored = np.asarray(dose_calibration.NPS_PEAK_TABLE)
    assert np.allclose(cutoffs, stored[:, 0]) and np.allclose(peaks, stored[:, 1], rtol=0.02)
    assert np.all(np.diff(peaks) > 0)  # monotonic: one cutoff per peak
