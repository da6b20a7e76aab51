"""Physics-based low-dose CT simulation in the projection domain (parallel beam), batched over slices.

Recipe (``docs/simulation.md`` explains it in full): HU -> linear attenuation
``mu = mu_water * (1 + HU / 1000)`` -> line integrals ``p`` (Joseph forward projector) -> noisy counts ->
log -> filtered back-projection -> HU. Because FBP is linear, only the *noise* is reconstructed:
``LD = FD + FBP(p_LD - p)``. This halves the work and keeps the full-dose image's sharpness (the pair
differs by dose noise only, not by an extra projector/FBP blur).

The noise model (absolute and relative modes, Yu et al. 2012) is in
:mod:`medgan.transforms.projection_noise`; the MONAI transforms are at the end of this module.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform

from medgan.errors import ConfigError
from medgan.io.geometry import voxel_spacing
from medgan.transforms.dose_calibration import (
    CALIBRATION_DOSE,
    DEFAULT_PHOTONS,
    DoseCalibration,
    calibrate_dose,
)
from medgan.transforms.fbp_filter import FILTERS
from medgan.transforms.noise_level import noise_power_spectrum
from medgan.transforms.projection_noise import (
    MIN_COUNTS,
    MODES,
    MU_WATER_PER_MM,
    PADDING_HU,
    _parse_dose,
    _parse_mode,
    _parse_positive,
    projection_noise,
)
from medgan.transforms.projector_cache import get_fourier_projector

__all__ = [
    "CALIBRATION_DOSE",
    "MIN_COUNTS",
    "MODES",
    "PADDING_HU",
    "CalibrateDosed",
    "MU_WATER_PER_MM",
    "DoseCalibration",
    "RandSimulateLowDosed",
    "SimulateLowDosed",
    "calibrate_dose",
    "noise_power_spectrum",
    "projection_noise",
    "simulate_low_dose",
    "simulate_slices",
]

def simulate_slices(
    slices: torch.Tensor,
    dose: float,
    photons_per_ray: float,
    *,
    electronic_noise: float = 10.0,
    views: int = 720,
    mode: str = "relative",
    pixel_size_mm: float = 1.0,
    generator: torch.Generator | None = None,
    detector_bins: int | None = None,
    filter_name: str = "ramp",
    filter_cutoff: float | None = None,
    mu_water: float = MU_WATER_PER_MM,
    batch_size: int = 16,
    progress: bool = False,
) -> torch.Tensor:
    """The simulation itself, on validated ``(N, H, W)`` HU slices with ``I0 = photons_per_ray``; float32 out.

    Projection and back-projection go through the Fourier slice theorem
    (:class:`medgan.transforms.fourier_projector.FourierProjector`); projections stay in its batch-last
    spectral layout from the forward projection to the FBP of the noise.
    """
    n, h, w = slices.shape
    size = max(h, w)
    projector = get_fourier_projector(size, views, detector_bins, slices.device)
    bins, padded = projector.detector_bins, projector.padded
    to_hu = 1000.0 / (mu_water * pixel_size_mm)  # FBP gives attenuation per pixel
    out = torch.empty(slices.shape, dtype=torch.float32, device=slices.device)
    starts = range(0, n, max(1, int(batch_size)))
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="simulating low dose", unit="batch")
    for s0 in starts:
        chunk = slices[s0 : s0 + batch_size].float()
        mu_px = (mu_water * pixel_size_mm) * (1.0 + chunk / 1000.0)
        mu_px = mu_px.clamp_min(0.0)  # HU < -1000 (padding, -1024 air) is no negative attenuation
        if (h, w) != (size, size):  # pad with air so any slice shape fits the square geometry
            mu_px = torch.nn.functional.pad(mu_px, (0, size - w, 0, size - h))
        p = torch.fft.irfft(projector.spectrum(mu_px), n=padded, dim=1)[:, :bins]  # (views, bins, B)
        delta = projection_noise(
            p, dose, photons=photons_per_ray, electronic_noise=electronic_noise, mode=mode, generator=generator
        )
        del p
        spectrum = torch.fft.rfft(delta, n=padded, dim=1)
        del delta
        noise_hu = projector.fbp_spectrum(spectrum, filter_name, filter_cutoff, noise=True)[:, :h, :w] * to_hu
        # scanner padding outside the reconstruction circle (-2048, -3024 HU ...) is a constant, not a
        # measurement: a real low-dose scan has the same padding, so it stays
        noisy = chunk + noise_hu.to(out.device)
        out[s0 : s0 + batch_size] = torch.where(chunk < PADDING_HU, chunk, noisy)
    return out


def simulate_low_dose(
    hu: torch.Tensor,
    dose: float,
    *,
    photons: float | None = None,
    electronic_noise: float = 10.0,
    views: int = 720,
    mode: Literal["relative", "absolute"] = "relative",
    pixel_size_mm: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    detector_bins: int | None = None,
    filter_name: str = "auto",
    mu_water: float = MU_WATER_PER_MM,
    batch_size: int = 16,
    progress: bool = False,
    slice_thickness_mm: float | None = None,
    noise_hu: float | None = None,
    filter_cutoff: float | None = None,
    calibration: DoseCalibration | None = None,
) -> torch.Tensor:
    """Simulate a lower-dose acquisition of CT slices.

    The photon budget is per mm^2 of detector: a detector element (one pixel wide, one slice thick)
    receives ``photons * pixel_size_mm * slice_thickness_mm`` photons per view at full dose, so one
    ``photons`` value is the same dose at any pixel size and slice thickness.

    Relative mode (real scans) calibrates to the scan by default: the full-dose noise is measured on the
    slices (or given as ``noise_hu``), the photon budget is fitted so the added noise is
    ``sigma_FD * sqrt(1/dose - 1)``, and the FBP filter so its texture (NPS peak) matches the scan's
    (:func:`medgan.transforms.dose_calibration.calibrate_dose`; cached per content). Pass ``photons`` to
    impose a budget, ``calibration=`` to reuse one (e.g. measured on the whole volume before cropping).

    Args:
        hu: ``(H, W)`` or ``(N, H, W)`` slices in HU, on any device. Non-square slices are padded with air.
        dose: dose fraction ``a`` in (0, 1] of the simulated scan relative to the full dose.
        photons: photons per mm^2 per view at full dose. Default: calibrated (relative mode), 1e5 (absolute).
        electronic_noise: electronic noise variance ``sigma_e^2`` in counts^2 (8-11 typical).
        views: projection angles over 180 degrees.
        mode: ``"relative"`` for real full-dose scans (adds only the extra noise of dose ``a``) or
            ``"absolute"`` for noise-free inputs such as phantoms.
        pixel_size_mm: in-plane pixel size (square pixels); sets how much attenuation a pixel holds.
        seed: seeds a private generator (ignored when ``generator`` is given); ``None`` uses torch's global RNG.
        generator: torch generator on ``hu``'s device.
        detector_bins: detector size; default covers the slice diagonal at one bin per pixel.
        filter_name: FBP filter of the noise: ``auto`` (fitted to the scan's pixel-scale texture in relative
            mode, ramp in absolute mode), ``auto-nps`` (fitted to its NPS peak), ``ramp, shepp-logan,
            cosine, hamming, hann, gaussian``.
        mu_water: attenuation of water in 1/mm.
        batch_size: slices per projector call (memory vs speed).
        progress: show a tqdm bar over slice batches.
        slice_thickness_mm: detector element height (default 1 mm); only scales ``photons`` to counts.
        noise_hu: the scan's full-dose noise sigma in HU, when known (relative mode; skips measuring it).
        filter_cutoff: width of the ``gaussian`` filter in cycles/pixel.
        calibration: a :class:`DoseCalibration` to use as is (photons and filter).

    Returns:
        Low-dose slices in HU, same shape, device and (float) dtype as ``hu``. Values below -1500 HU
        (scanner padding outside the field of view) are returned unchanged.

    Raises:
        ConfigError: a parameter out of range, or a relative-mode scan without soft tissue to measure its
            noise on (give ``noise_hu`` or ``photons``).
    """
    dose = _parse_dose(dose)
    mode = _parse_mode(mode)
    if photons is not None:
        photons = _parse_positive(photons, "photons")
    if noise_hu is not None:
        noise_hu = _parse_positive(noise_hu, "noise_hu")
    electronic_noise = _parse_positive(electronic_noise, "electronic_noise", allow_zero=True)
    pixel_size_mm = _parse_positive(pixel_size_mm, "pixel_size_mm")
    thickness = 1.0 if slice_thickness_mm is None else _parse_positive(slice_thickness_mm, "slice_thickness_mm")
    if not isinstance(views, int) or views < 2:
        raise ConfigError(f"views: got {views!r}, allowed: an integer >= 2")
    if filter_name not in (*FILTERS, "auto", "auto-nps"):
        raise ConfigError(f"filter: got {filter_name!r}, allowed: auto, auto-nps, {', '.join(FILTERS)}")
    if hu.ndim not in (2, 3):
        raise ValueError(f"hu: expected (H, W) or (N, H, W) slices, got shape {tuple(hu.shape)}")
    slices = hu[None] if hu.ndim == 2 else hu
    slices = slices.as_tensor() if isinstance(slices, MetaTensor) else slices
    if generator is None and seed is not None:
        generator = torch.Generator(device=slices.device).manual_seed(int(seed))

    if calibration is None and mode == "relative":
        try:
            calibration = calibrate_dose(
                slices, pixel_size_mm=pixel_size_mm, slice_thickness_mm=thickness, views=views,
                electronic_noise=electronic_noise, noise_hu=noise_hu, photons=photons, filter_name=filter_name,
                filter_cutoff=filter_cutoff, detector_bins=detector_bins, mu_water=mu_water,
            )
        except ValueError as err:
            raise ConfigError(str(err)) from None
    if calibration is not None:
        per_ray = calibration.photons * pixel_size_mm * thickness
        filter_name, filter_cutoff = calibration.filter_name, calibration.filter_cutoff
        electronic_noise = electronic_noise * calibration.electronic_scale
    else:
        per_ray = (DEFAULT_PHOTONS if photons is None else photons) * pixel_size_mm * thickness
        filter_name = "ramp" if filter_name.startswith("auto") else filter_name
    out = simulate_slices(
        slices, dose, per_ray, electronic_noise=electronic_noise, views=views, mode=mode,
        pixel_size_mm=pixel_size_mm, generator=generator, detector_bins=detector_bins, filter_name=filter_name,
        filter_cutoff=filter_cutoff, mu_water=mu_water, batch_size=batch_size, progress=progress,
    )
    out = out.to(hu.dtype) if hu.is_floating_point() else out
    return out[0] if hu.ndim == 2 else out


def _volume_slices(img: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """``(C, X, Y[, Z])`` channel-first image -> ``(C*Z, Y, X)`` slices (rows = Y), and how to undo it."""
    data = img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)
    if data.ndim == 3:  # (C, X, Y): one 2D slice per channel
        c, x, y = data.shape
        return data.transpose(1, 2), lambda s: s.transpose(1, 2)
    if data.ndim == 4:
        c, x, y, z = data.shape
        slices = data.permute(0, 3, 2, 1).reshape(c * z, y, x)
        return slices, lambda s: s.reshape(c, z, y, x).permute(0, 3, 2, 1)
    raise ValueError(f"expected a channel-first (C, X, Y) or (C, X, Y, Z) image, got shape {tuple(data.shape)}")


def pixel_size(img: torch.Tensor, default: float | None = None) -> float:
    """In-plane pixel size (mm) of a channel-first image: ``default``, else from the affine, else 1."""
    if default is not None:
        return float(default)
    if isinstance(img, MetaTensor):
        spacing = voxel_spacing(img.affine)
        # square pixels are assumed by the geometry; the geometric mean keeps the pixel area right
        return float(np.sqrt(spacing[0] * spacing[1]))
    return 1.0


def slice_thickness(img: torch.Tensor, default: float | None = None) -> float | None:
    """Slice thickness (mm) of a volume: ``default``, else ``meta["slice_thickness_mm"]`` (set by transforms
    that change it, e.g. :func:`medgan.transforms.degrade.degrade_for_sr`), else DICOM ``SliceThickness``,
    else the z spacing.

    A 2D ``(C, X, Y)`` image or a plain tensor without DICOM headers gives ``None`` (1 mm is then assumed).
    """
    if default is not None:
        return float(default)
    if not isinstance(img, MetaTensor):
        return None
    if img.meta.get("slice_thickness_mm"):
        return float(img.meta["slice_thickness_mm"])
    headers = img.meta.get("dicom_headers")
    if headers is not None and len(headers):
        value = headers[0].get("SliceThickness")
        try:
            if value is not None and float(value) > 0:
                return float(value)
        except (TypeError, ValueError):
            pass
    if img.ndim == 4:
        return float(voxel_spacing(img.affine)[2])
    return None


CALIBRATION_META = "medgan_dose_calibration"  # MetaTensor.meta key: a volume's calibration travels with crops


class SimulateLowDosed(MapTransform):
    """Dictionary transform: replace ``keys`` (HU images) by a simulated acquisition at ``dose``.

    Works on channel-first ``(C, X, Y, Z)`` volumes (slices along Z) or ``(C, X, Y)`` slices; the pixel size
    comes from the MetaTensor affine unless ``pixel_size_mm`` is given, the slice thickness from the DICOM
    ``SliceThickness`` or the z spacing unless ``slice_thickness_mm`` is given. Meta data (affine, DICOM
    headers) is kept. Other arguments are those of :func:`simulate_low_dose`.

    In relative mode (default) each image is calibrated to itself (its noise level and texture; cached per
    content, so calling again on the same volume, at any dose, does not calibrate again). The calibration is
    stored in ``meta["medgan_dose_calibration"]`` and reused from there when present: calibrate the whole
    volume first (``CalibrateDosed`` or one call of this transform), then crop, and every crop is simulated
    with the volume's budget. ``self.last_calibration`` holds the last one used.
    """

    def __init__(
        self,
        keys: KeysCollection,
        dose: float,
        *,
        photons: float | None = None,
        electronic_noise: float = 10.0,
        views: int = 720,
        mode: str = "relative",
        pixel_size_mm: float | None = None,
        seed: int | None = None,
        allow_missing_keys: bool = False,
        slice_thickness_mm: float | None = None,
        noise_hu: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.dose = _parse_dose(dose)
        self.mode = _parse_mode(mode)
        self.kwargs = dict(photons=photons, electronic_noise=electronic_noise, views=views, mode=mode, **kwargs)
        self.noise_hu = noise_hu
        self.pixel_size_mm = pixel_size_mm
        self.slice_thickness_mm = slice_thickness_mm
        self.seed = seed
        self.last_calibration: DoseCalibration | None = None

    def calibrate(self, img: torch.Tensor) -> DoseCalibration | None:
        """The calibration of ``img`` (relative mode): from its meta when present, else measured and stored."""
        if self.mode != "relative":
            return None
        stored = img.meta.get(CALIBRATION_META) if isinstance(img, MetaTensor) else None
        if isinstance(stored, DoseCalibration):
            return stored
        if isinstance(stored, Mapping):
            return DoseCalibration(**stored)
        slices, _ = _volume_slices(img)
        keys = ("electronic_noise", "views", "photons", "filter_name", "filter_cutoff", "detector_bins", "mu_water")
        try:
            cal = calibrate_dose(
                slices,
                pixel_size_mm=pixel_size(img, self.pixel_size_mm),
                slice_thickness_mm=slice_thickness(img, self.slice_thickness_mm) or 1.0,
                noise_hu=self.noise_hu,
                **{k: self.kwargs[k] for k in keys if k in self.kwargs},
            )
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if isinstance(img, MetaTensor):
            img.meta[CALIBRATION_META] = cal.as_dict()
        return cal

    def simulate(self, img: torch.Tensor, dose: float, seed: int | None) -> torch.Tensor:
        """Simulate one image at ``dose`` with noise seed ``seed``; returns the same type and shape."""
        self.last_calibration = self.calibrate(img)
        slices, undo = _volume_slices(img)
        low = simulate_low_dose(
            slices,
            dose,
            pixel_size_mm=pixel_size(img, self.pixel_size_mm),
            slice_thickness_mm=slice_thickness(img, self.slice_thickness_mm),
            seed=seed,
            calibration=self.last_calibration,
            **self.kwargs,
        )
        low = undo(low).to(slices.dtype)
        if isinstance(img, MetaTensor):
            return MetaTensor(low, meta=img.meta, applied_operations=img.applied_operations)
        return low

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for i, key in enumerate(self.key_iterator(d)):
            seed = None if self.seed is None else self.seed + i  # independent noise per key
            d[key] = self.simulate(d[key], self.dose, seed)
        return d


class CalibrateDosed(MapTransform):
    """Dictionary transform: store each image's dose calibration in its meta (the image is unchanged).

    Put it before any cropping so that :class:`SimulateLowDosed` / :class:`RandSimulateLowDosed` simulate
    every crop with its whole volume's budget and texture. Arguments as :class:`SimulateLowDosed`.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False, **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys)
        self.simulator = SimulateLowDosed(keys, dose=1.0, allow_missing_keys=allow_missing_keys, **kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            self.simulator.calibrate(d[key])
        return d


class RandSimulateLowDosed(RandomizableTransform, MapTransform):
    """Random twin of :class:`SimulateLowDosed`: draws the dose uniformly from ``dose_range`` and a noise seed.

    The drawn values are kept in ``self.last_dose`` / ``self.last_seed`` and handed to the deterministic
    transform, so every sample is reproducible (``set_random_state``) and loggable.

    The photon budget is calibrated once per volume (relative mode, at a fixed calibration dose, cached
    per content and stored in the meta), then reused at every drawn dose; the first call on a new volume
    costs two simulations of four slices. For on-the-fly pairs from crops::

        Compose([LoadCTd("image"), CalibrateDosed("image"),                     # whole volume, once
                 RandSpatialCropd("image", (256, 256, 8)),
                 CopyItemsd("image", names="target"),
                 RandSimulateLowDosed("image", dose_range=(0.1, 0.5))])        # crop, any dose

    Args:
        keys: HU images to replace.
        dose_range: ``(low, high)`` within (0, 1].
        prob: probability of applying the transform.
        **kwargs: passed to :class:`SimulateLowDosed` (photons, noise_hu, electronic_noise, views, mode, ...).
    """

    def __init__(
        self,
        keys: KeysCollection,
        dose_range: Sequence[float] = (0.1, 0.5),
        prob: float = 1.0,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if len(dose_range) != 2:
            raise ConfigError(f"dose_range: got {dose_range!r}, allowed: two numbers (low, high) in (0, 1]")
        low, high = (_parse_dose(v, "dose_range") for v in dose_range)
        if low > high:
            raise ConfigError(f"dose_range: got low {low} > high {high}; allowed: low <= high")
        self.dose_range = (low, high)
        self.simulator = SimulateLowDosed(keys, dose=high, allow_missing_keys=allow_missing_keys, **kwargs)
        self.last_dose: float | None = None
        self.last_seed: int | None = None

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        self.last_dose = float(self.R.uniform(*self.dose_range))
        self.last_seed = int(self.R.randint(0, 2**31 - 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for i, key in enumerate(self.key_iterator(d)):
            d[key] = self.simulator.simulate(d[key], self.last_dose, self.last_seed + i)
        return d
