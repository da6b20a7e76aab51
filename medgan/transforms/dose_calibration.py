"""Per-scan calibration of the simulated photon budget and noise texture (relative mode).

A real scan's noise depends on its photon budget, detector element size (pixel size x slice thickness)
and reconstruction kernel; one fixed ``I0`` per ray cannot match them all. :func:`calibrate_dose` reads
them off the scan itself:

1. **Noise level**: ``sigma_FD`` from :func:`medgan.transforms.noise_level.estimate_noise_hu` (mode of
   plane-detrended local sds in about 8 mm windows of soft tissue), unless the caller knows it (``noise_hu``).
2. **Texture**: the FBP filter of the inserted noise is the ramp apodised by ``exp(-(f / cutoff)^2)``, with
   ``cutoff`` chosen so that the inserted noise has the scan's pixel-scale correlation, measured as the
   ratio of lag-2 to lag-1 difference variances in the same soft-tissue windows
   (:func:`medgan.transforms.noise_level.difference_ratio`; the table of ratio against cutoff was measured
   on filtered white projection noise, :func:`measure_texture_table`). The scan's NPS peak would be the obvious target,
   but on patient images anatomy dominates the NPS at low frequencies and pulls its peak down (measured:
   to about 1.2 / ROI size on every real scan tried), which would fit unrealistically smooth filters.
3. **Photon budget**: simulate the calibration slices (evenly spread, about eight 512x512 slices' worth) at
   the calibration dose ``a_c = 0.5`` with a trial ``I0``, measure the added noise with the same estimator
   (same windows), and rescale: ``I0 = I0_trial (r / sqrt(1/a_c - 1))^2`` with ``r`` the median over the
   slices of ``sigma_add / sigma_FD`` (slices of one volume can differ in noise level). This is exact, not a first step: the relative-mode noise
   is post-log Gaussian with a variance proportional to ``1 / I0`` (the electronic part is scaled with the
   budget, see :class:`DoseCalibration`).

The budget found is a property of the scan, not of the dose: at any other dose ``a`` the simulation then
adds ``sigma_FD * sqrt(1/a - 1)`` (quantum-limited; electronic noise adds to it at very low counts, as it
does on a scanner). Calibrations are cached per volume content and settings, so a random-dose transform
calibrates a volume once.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from medgan.transforms.noise_level import (
    difference_ratio,
    estimate_noise_hu,
    noise_per_slice,
    plateau_fraction,
)

DEFAULT_PHOTONS = 1e5  # per mm^2 of detector per view at full dose, when nothing else is known
CALIBRATION_DOSE = 0.5  # where electronic noise matters least among useful doses
CALIBRATION_PIXELS = 8 * 512 * 512  # eight 512x512 slices, or more smaller ones
_CACHE: OrderedDict[tuple, DoseCalibration] = OrderedDict()
_CACHE_SIZE = 256


@dataclass(frozen=True)
class DoseCalibration:
    """What the simulator uses for one scan (all at full dose).

    Attributes:
        photons: photons per mm^2 of detector (at the rotation axis) per view.
        photons_per_ray: ``photons * pixel_size_mm * slice_thickness_mm``: counts of one detector element.
        noise_hu: the full-dose noise sigma the budget was fitted to (HU).
        noise_source: ``"measured"`` (estimated on the scan) or ``"given"``.
        filter_name, filter_cutoff: the FBP filter of the inserted noise (``cutoff`` for ``gaussian``).
        texture_ratio: the scan's lag-2 / lag-1 difference-variance ratio the filter was fitted to
            (:func:`medgan.transforms.noise_level.difference_ratio`), ``None`` if not fitted.
        nps_peak: the scan's NPS peak (cycles/pixel) the filter was fitted to (``filter="auto-nps"``).
        plateau_fraction: share of soft-tissue windows that are constant plateaus (lossy compression).
        electronic_scale: factor on the electronic noise variance. A fitted budget is the *equivalent*
            budget of medgan's ideal parallel-beam system, not the scanner's real photon count, so the
            electronic noise is scaled with it (``photons / 1e5``): it keeps the share of the noise it has
            on a detector receiving 1e5 photons/mm^2 per view. 1 when the budget was given.
    """

    photons: float
    photons_per_ray: float
    noise_hu: float
    noise_source: str
    filter_name: str
    filter_cutoff: float | None
    texture_ratio: float | None
    plateau_fraction: float = 0.0
    electronic_scale: float = 1.0
    nps_peak: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values, e.g. for ``MetaTensor.meta`` or a manifest."""
        return asdict(self)

    def describe(self) -> str:
        """One line for a command's output."""
        kernel = self.filter_name if self.filter_cutoff is None else f"{self.filter_name} {self.filter_cutoff:.3g}"
        texture = f" (fitted: texture ratio {self.texture_ratio:.2f})" if self.texture_ratio else ""
        if self.nps_peak:
            texture = f" (fitted: NPS peak {self.nps_peak:.3f} cycles/pixel)"
        warn = ""
        if self.plateau_fraction > 0.25:
            warn = f"; {self.plateau_fraction:.0%} of soft tissue is flat plateaus (lossy compression?): prefer --noise-hu"
        noise = (f"full-dose noise {self.noise_hu:.2f} HU ({self.noise_source})" if math.isfinite(self.noise_hu)
                 else "full-dose noise not measured (photons given)")
        return (
            f"{noise}, {self.photons:.3g} photons/mm^2 per view "
            f"({self.photons_per_ray:.3g} per ray), filter {kernel}{texture}{warn}"
        )


def _fingerprint(slices: torch.Tensor) -> str:
    flat = slices.detach().reshape(-1)
    sample = flat[:: max(1, flat.numel() // 65536)].float().cpu().numpy()
    h = hashlib.blake2b(sample.tobytes(), digest_size=16)
    h.update(str(tuple(slices.shape)).encode())
    return h.hexdigest()


# (cutoff, difference ratio) of noise reconstructed with the gaussian filter of that cutoff, as
# measure_texture_table() gives it (a test re-measures it): constants, so a command pays nothing for it
TEXTURE_TABLE = (
    (0.03, 3.9732), (0.045, 3.9306), (0.065, 3.8468), (0.09, 3.7146), (0.12, 3.5084), (0.16, 3.1775),
    (0.21, 2.7437), (0.28, 2.1852), (0.38, 1.7005), (0.5, 1.4496), (0.7, 1.2989), (1.0, 1.2273),
)


def measure_texture_table() -> tuple[np.ndarray, np.ndarray]:
    """``(cutoffs, difference ratios)`` of noise reconstructed with the ``gaussian`` filter of each cutoff.

    Measured on filtered white projection noise (64x64 slices, 256 views; the ratio describes pixel-scale
    correlation, which does not depend on the image size) with
    :func:`medgan.transforms.noise_level.difference_ratio`. :data:`TEXTURE_TABLE` holds its result.
    """
    from medgan.transforms.projector_cache import get_fourier_projector

    size, count = 64, 8
    projector = get_fourier_projector(size, 4 * size, device="cpu")
    white = torch.randn((projector.views, projector.detector_bins, count), generator=torch.Generator().manual_seed(1234))
    spectrum = torch.fft.rfft(white, n=projector.padded, dim=1)
    cutoffs = [c for c, _ in TEXTURE_TABLE]
    images = [projector.fbp_spectrum(spectrum, "gaussian", c, noise=True) for c in cutoffs]
    ratios = [difference_ratio(40.0 + img * (10.0 / img.std())) for img in images]
    return np.asarray(cutoffs), np.asarray(ratios)


def fit_texture(slices: torch.Tensor, pixel_size_mm: float | None = None) -> tuple[str, float | None, float | None]:
    """``(filter_name, cutoff, the scan's difference ratio)`` giving inserted noise the scan's texture.

    Falls back to ``("ramp", None, None)`` when the scan has no homogeneous soft tissue to measure on.
    """
    try:
        ratio = difference_ratio(slices, pixel_size_mm=pixel_size_mm)
    except ValueError:
        return "ramp", None, None
    cutoffs, ratios = (np.asarray(column) for column in zip(*TEXTURE_TABLE))
    order = np.argsort(ratios)
    log_cut = np.interp(ratio, ratios[order], np.log(cutoffs[order]))  # clamps to the table's ends
    return "gaussian", float(round(math.exp(log_cut), 4)), float(ratio)


# (cutoff, NPS peak in cycles/pixel) of noise reconstructed with the gaussian filter of that cutoff, as
# measure_nps_peak_table() gives it with scan_nps's regions (NPS_ROI pixels, quadratic detrend)
NPS_ROI = 16
NPS_PEAK_TABLE = (
    (0.03, 0.0830), (0.045, 0.0862), (0.065, 0.0918), (0.09, 0.0984), (0.12, 0.1040), (0.16, 0.1118),
    (0.21, 0.1234), (0.28, 0.1497), (0.38, 0.1913), (0.5, 0.2558), (0.7, 0.3401), (1.0, 0.4096),
)


def measure_nps_peak_table(roi: int = NPS_ROI) -> tuple[np.ndarray, np.ndarray]:
    """``(cutoffs, NPS peak frequencies)`` of filtered white projection noise, measured as on a scan.

    The peak of an NPS measured in ``roi``-pixel regions with a quadratic removed depends on ``roi``
    (the detrending removes the lowest frequencies), so the table is measured with the same regions
    (:func:`medgan.transforms.noise_level.scan_nps`) that measure the scan.
    """
    from medgan.transforms.noise_level import nps_peak_frequency, scan_nps
    from medgan.transforms.projector_cache import get_fourier_projector

    size, count = 64, 16
    projector = get_fourier_projector(size, 4 * size, device="cpu")
    white = torch.randn((projector.views, projector.detector_bins, count), generator=torch.Generator().manual_seed(99))
    spectrum = torch.fft.rfft(white, n=projector.padded, dim=1)
    cutoffs = [c for c, _ in TEXTURE_TABLE]
    peaks = []
    for c in cutoffs:
        img = projector.fbp_spectrum(spectrum, "gaussian", c, noise=True)
        peaks.append(nps_peak_frequency(*scan_nps(40.0 + img * (10.0 / img.std()), roi=roi)[:2]))
    return np.asarray(cutoffs), np.asarray(peaks)


def fit_nps_peak(slices: torch.Tensor, pixel_size_mm: float | None = None) -> tuple[str, float | None, float | None]:
    """``(filter_name, cutoff, the scan's NPS peak)``: the gaussian filter whose noise peaks where the scan's NPS
    does (regions of :data:`NPS_ROI` pixels in homogeneous soft tissue, quadratic removed).

    Falls back to :func:`fit_texture` when fewer than 8 regions qualify.
    """
    from medgan.transforms.noise_level import nps_peak_frequency, scan_nps

    freq, power, regions = scan_nps(slices, roi=NPS_ROI, pixel_size_mm=pixel_size_mm)
    if regions < 8:
        return fit_texture(slices, pixel_size_mm)
    peak = nps_peak_frequency(freq, power)
    cutoffs, peaks = (np.asarray(column) for column in zip(*NPS_PEAK_TABLE))
    order = np.argsort(peaks)
    log_cut = np.interp(peak, peaks[order], np.log(cutoffs[order]))  # clamps to the table's ends
    return "gaussian", float(round(math.exp(log_cut), 4)), float(peak)


def _pick_slices(slices: torch.Tensor, pixels: int = CALIBRATION_PIXELS) -> torch.Tensor:
    """Evenly spread slices holding about ``pixels`` pixels (at least 4): a representative sample."""
    n, h, w = slices.shape
    count = max(4, pixels // (h * w))
    if n <= count:
        return slices
    return slices[torch.linspace(0, n - 1, count).round().long().unique()]


def scan_noise_hu(slices: torch.Tensor, pixel_size_mm: float) -> float:
    """The full-dose noise sigma (HU) calibration measures on a scan ``(N, H, W)``: the homogeneous-tissue
    estimate (:func:`estimate_noise_hu`) on the same representative sample of slices.

    Raises:
        ValueError: no homogeneous soft tissue to measure on.
    """
    return estimate_noise_hu(_pick_slices(slices.float()), pixel_size_mm=pixel_size_mm)


def calibrate_dose(
    slices: torch.Tensor,
    *,
    pixel_size_mm: float,
    slice_thickness_mm: float = 1.0,
    views: int = 720,
    electronic_noise: float = 10.0,
    noise_hu: float | None = None,
    photons: float | None = None,
    filter_name: str = "auto",
    filter_cutoff: float | None = None,
    detector_bins: int | None = None,
    mu_water: float | None = None,
    use_cache: bool = True,
) -> DoseCalibration:
    """Calibrate the full-dose photon budget and noise texture of one scan (module docstring: the method).

    Args:
        slices: ``(N, H, W)`` full-dose HU slices of one scan (a whole volume or a few slices of it).
        pixel_size_mm, slice_thickness_mm: the scan's detector element size at the rotation axis.
        views, electronic_noise, detector_bins, mu_water: simulation settings (as :func:`simulate_low_dose`).
        noise_hu: known full-dose noise sigma in HU (skips the measurement).
        photons: known photons per mm^2 per view (skips the budget fit; the texture is still fitted).
        filter_name: ``"auto"`` fits a ``gaussian`` filter to the scan's pixel-scale texture (difference
            ratio), ``"auto-nps"`` to its NPS peak; any FBP filter name keeps it.
        filter_cutoff: the ``gaussian`` cutoff when ``filter_name="gaussian"``.
        use_cache: reuse the calibration of identical content and settings.

    Raises:
        ValueError: the scan has no homogeneous soft tissue to measure noise on and ``noise_hu`` /
            ``photons`` were not given.
    """
    from medgan.transforms.lowdose import MU_WATER_PER_MM

    mu_water = MU_WATER_PER_MM if mu_water is None else mu_water
    key = (
        _fingerprint(slices),
        float(pixel_size_mm),
        float(slice_thickness_mm),
        int(views),
        float(electronic_noise),
        noise_hu,
        photons,
        filter_name,
        filter_cutoff,
        detector_bins,
        float(mu_water),
    )
    if use_cache and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    area = float(pixel_size_mm) * float(slice_thickness_mm)
    cal_slices = _pick_slices(slices.float())
    plateaus = plateau_fraction(cal_slices, pixel_size_mm=pixel_size_mm)
    texture = nps_peak = None
    if filter_name == "auto":
        filter_name, filter_cutoff, texture = fit_texture(cal_slices, pixel_size_mm)
    elif filter_name == "auto-nps":
        filter_name, filter_cutoff, nps_peak = fit_nps_peak(cal_slices, pixel_size_mm)
    sigma, source = (float(noise_hu), "given") if noise_hu is not None else (math.nan, "measured")
    if photons is None and noise_hu is None:
        try:
            sigma = scan_noise_hu(slices, pixel_size_mm)
        except ValueError as err:  # nothing to measure on (air, lung only, synthetic fills): the default
            warnings.warn(f"{err}; using the default {DEFAULT_PHOTONS:g} photons/mm^2", stacklevel=2)
            photons, source = DEFAULT_PHOTONS, "not measurable, default budget"
    if photons is None:
        per_ray = _fit_budget(cal_slices, sigma, area, given=noise_hu is not None, pixel_size_mm=pixel_size_mm, views=views,
                              electronic_noise=electronic_noise, detector_bins=detector_bins,
                              filter_name=filter_name, filter_cutoff=filter_cutoff, mu_water=mu_water)
    else:
        per_ray = float(photons) * area
    scale = 1.0 if photons is not None else per_ray / (DEFAULT_PHOTONS * area)
    result = DoseCalibration(
        per_ray / area, per_ray, sigma, source, filter_name, filter_cutoff, texture, plateaus, scale, nps_peak
    )
    if use_cache:
        _CACHE[key] = result
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return result


def _fit_budget(cal_slices: torch.Tensor, sigma: float, area: float, electronic_noise: float, *,
                given: bool = False, **settings: Any) -> float:
    """Photons per ray whose added noise at the calibration dose is ``sigma_FD * sqrt(1/a_c - 1)``.

    With the electronic noise scaled with the budget (see :class:`DoseCalibration`) the post-log noise
    variance is exactly proportional to ``1 / I0``, so one trial simulation gives the answer. The ratio of
    added to full-dose noise is taken per slice and its median used: slices of one volume can differ in
    noise level (shoulders and abdomen, tube-current modulation), and pooling their windows would measure
    whichever level happens to hold most windows. With a given ``sigma`` it is the reference of every slice.
    """
    from medgan.transforms.lowdose import simulate_slices

    if not sigma > 0:
        raise ValueError(f"full-dose noise: got {sigma!r} HU, allowed: > 0")
    target = math.sqrt(1.0 / CALIBRATION_DOSE - 1.0)
    trial = DEFAULT_PHOTONS * area  # electronic scale 1 at the reference budget
    low = simulate_slices(cal_slices, CALIBRATION_DOSE, trial, electronic_noise=electronic_noise, mode="relative",
                          generator=torch.Generator().manual_seed(0), **settings)
    px = settings["pixel_size_mm"]
    added = noise_per_slice(low - cal_slices, cal_slices, pixel_size_mm=px)
    full = {i: sigma for i in added} if given else noise_per_slice(cal_slices, pixel_size_mm=px)
    ratios = [added[i] / full[i] for i in added]
    if len(ratios) <= 1:
        ratios = [estimate_noise_hu(low - cal_slices, cal_slices, pixel_size_mm=px) / sigma]
    ratio = float(np.median(ratios))
    return trial * (ratio / target) ** 2
