"""Training pairs made on the fly from full-dose CT: MONAI transforms, seeded per sample.

A few scans from one scanner teach a denoiser that scanner's pixel size, slice thickness and noise level.
What decides quality on another hospital's scans is seeing many of each, so every training sample is
re-made from its full-dose slice:

1. :class:`RandPixelSized` resamples to a random in-plane pixel size (e.g. 0.4-1.5 mm; anti-aliased when
   coarsening, as a scanner reconstructing on a coarser grid) and, for volumes, averages neighbouring
   slices into a random thicker slice. The result is padded with air to a multiple of ``size_multiple``
   so that the simulator's projector (built once per size, tens of seconds at 512²) is reused.
2. :class:`RandAttenuationJitterd` scales attenuation (HU + 1000) by a few percent: the spread of water-
   referenced HU between effective beam energies, not an arbitrary intensity change.
3. :class:`LowDosePaird` copies ``target`` to ``source`` and replaces it by a projection-domain low-dose
   simulation (:class:`medgan.transforms.lowdose.RandSimulateLowDosed`) at a random dose; the drawn dose
   and the noise level (std of source - target inside the body, HU) are stored for conditioning or logs.
4. MONAI's ``RandFlipd`` / ``RandRotate90d`` on both keys (the pair stays aligned).

:func:`pair_transforms` composes them from a config dict; :class:`SimulatedPairDataset` applies them to
the slices of a pile of full-dose volumes with the sampler's per-sample seed, so a sample depends only on
its key (same batches with any worker count, and after a resume).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Compose, MapTransform, RandFlipd, RandomizableTransform, RandRotate90d
from torch.utils.data import Dataset

from medgan.data.patches import AIR_HU, crop, pad_to, random_start, slice_stack
from medgan.errors import ConfigError
from medgan.io.geometry import voxel_spacing
from medgan.transforms.intensity import HUNormalizer
from medgan.transforms.lowdose import PADDING_HU, CalibrateDosed, RandSimulateLowDosed

PAIR_KEYS = ("source", "target")


def _parse_range(value: Any, name: str, low: float = 0.0, high: float = math.inf) -> tuple[float, float]:
    ok = (
        isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
    if not ok or not low <= float(value[0]) <= float(value[1]) <= high:
        raise ConfigError(f"{name}: got {value!r}, allowed: [min, max] with {low} <= min <= max <= {high}")
    return float(value[0]), float(value[1])


def voxel_size(img: torch.Tensor) -> tuple[float, float, float]:
    """``(x, y, z)`` voxel size in mm from a MetaTensor's affine (1 mm for a plain tensor)."""
    x, y, z = voxel_spacing(img.affine if isinstance(img, MetaTensor) else None)
    return float(x), float(y), float(z)


def resample_inplane(img: torch.Tensor, factor: float, z_factor: int = 1, refine_mode: str = "bilinear") -> torch.Tensor:
    """``(C, X, Y[, Z])`` HU resampled in-plane by ``factor`` (new size = round(size · factor)) and, for
    volumes, averaged over ``z_factor`` neighbouring slices. Values below the padding floor stay padding.

    Bilinear with anti-aliasing when shrinking (a coarser reconstruction grid averages), ``refine_mode``
    (``F.interpolate`` mode) when refining; the affine's columns are scaled to the new voxel size.
    """
    data = img.as_tensor() if isinstance(img, MetaTensor) else img
    volume = data.ndim == 4
    if volume and z_factor > 1:
        depth = data.shape[-1] // z_factor * z_factor
        data = data[..., :depth].reshape(*data.shape[:3], -1, z_factor).mean(-1)
    slices = data.permute(0, 3, 1, 2) if volume else data[:, None]  # (C, Z|1, X, Y)
    c, z, x, y = slices.shape
    size = (max(1, round(x * factor)), max(1, round(y * factor)))
    flat = slices.reshape(c * z, 1, x, y).float()
    padding = flat < PADDING_HU
    mode = "bilinear" if factor < 1 else refine_mode
    out = F.interpolate(flat, size=size, mode=mode, align_corners=False, antialias=factor < 1)
    if padding.any():  # the field-of-view padding is a constant, not tissue to blend with
        keep = F.interpolate(padding.float(), size=size, mode="nearest") > 0.5
        out = torch.where(keep, flat.amin(), out)
    out = out.reshape(c, z, *size)
    out = out.permute(0, 2, 3, 1) if volume else out[:, 0]
    if not isinstance(img, MetaTensor):
        return out
    affine = torch.as_tensor(img.affine, dtype=torch.float64).clone()
    affine[:3, 0] *= x / size[0]
    affine[:3, 1] *= y / size[1]
    meta = {k: v for k, v in img.meta.items() if k != "affine"}
    if volume and z_factor > 1:
        thickness = meta.get("slice_thickness_mm") or float(voxel_spacing(affine)[2])
        affine[:3, 2] *= z_factor
        meta["slice_thickness_mm"] = float(thickness) * z_factor  # the simulator's photon budget reads it
    return MetaTensor(out, affine=affine, meta=meta)


class RandPixelSized(RandomizableTransform, MapTransform):
    """Resample ``keys`` to a random pixel size (mm, uniform in ``pixel_range``) and, for volumes, a random
    thicker slice within ``thickness_range`` (whole multiples of the stored thickness; never thinner).

    Args:
        keys: HU images ``(C, X, Y)`` or ``(C, X, Y, Z)``, MetaTensors (the affine gives the voxel size).
        pixel_range: ``[min, max]`` in-plane pixel size in mm.
        thickness_range: ``[min, max]`` slice thickness in mm (volumes only).
        size_multiple: pad (with air, at the end) each in-plane side up to a multiple of this.
        max_size: never resample beyond this many pixels per side (memory / projector size).
        prob: probability of resampling (padding is always done).
        refine_mode: interpolation when the new pixel is finer than the stored one (``bilinear``, ``bicubic``).
        upsample: if false, a drawn pixel finer than the scan's own is replaced by the scan's (a coarse scan
            interpolated to fine pixels has no fine anatomy, and would teach a denoiser that fine detail is noise).
    """

    def __init__(
        self,
        keys: KeysCollection,
        pixel_range: Sequence[float] = (0.4, 1.5),
        thickness_range: Sequence[float] = (0.5, 10.0),
        size_multiple: int = 128,
        max_size: int = 512,
        prob: float = 1.0,
        allow_missing_keys: bool = False,
        refine_mode: str = "bilinear",
        upsample: bool = True,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.refine_mode = refine_mode
        if not isinstance(upsample, bool):
            raise ConfigError(f"upsample: got {upsample!r}, allowed: true or false")
        self.upsample = upsample
        RandomizableTransform.__init__(self, prob)
        self.pixel_range = _parse_range(pixel_range, "pixel_range", low=1e-3)
        self.thickness_range = _parse_range(thickness_range, "thickness_range", low=1e-3)
        if not isinstance(size_multiple, int) or size_multiple < 1:
            raise ConfigError(f"size_multiple: got {size_multiple!r}, allowed: an integer >= 1")
        if not isinstance(max_size, int) or max_size < size_multiple:
            raise ConfigError(f"max_size: got {max_size!r}, allowed: an integer >= size_multiple ({size_multiple})")
        self.size_multiple, self.max_size = size_multiple, max_size
        self.last_pixel: float | None = None
        self.last_thickness: float | None = None

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        self._u_pixel = float(self.R.uniform())
        self._u_thick = float(self.R.uniform())

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            img = d[key]
            px, _, pz = voxel_size(img)
            factor, z_factor = 1.0, 1
            if self._do_transform:
                lo, hi = self.pixel_range
                pixel = lo + self._u_pixel * (hi - lo)
                if not self.upsample:
                    pixel = max(pixel, px)
                largest = max(img.shape[1:3])
                factor = min(px / pixel, self.max_size / largest)
                self.last_pixel = px / factor
                if img.ndim == 4:
                    t_lo, t_hi = self.thickness_range
                    k_max = max(1, int(t_hi // pz))
                    k_min = max(1, math.ceil(t_lo / pz))
                    z_factor = min(img.shape[-1], k_min + int(self._u_thick * (max(k_max, k_min) - k_min + 1)))
                    self.last_thickness = pz * z_factor
            out = resample_inplane(img, factor, z_factor, self.refine_mode) if (factor != 1.0 or z_factor > 1) else img
            m = self.size_multiple
            size = [-(-n // m) * m for n in out.shape[1:3]] + list(out.shape[3:])
            d[key] = _pad_meta(out, size) if isinstance(out, MetaTensor) else pad_to(out, size, AIR_HU)
        return d


def _pad_meta(img: MetaTensor, size: Sequence[int]) -> MetaTensor:
    padded = pad_to(img.as_tensor(), size, AIR_HU)
    return MetaTensor(padded, affine=img.affine, meta={k: v for k, v in img.meta.items() if k != "affine"})


class RandAttenuationJitterd(RandomizableTransform, MapTransform):
    """Scale attenuation by ``1 + e``, ``e`` uniform in ``[-jitter, jitter]``: ``HU' = (HU + 1000)(1 + e) - 1000``.

    Water-referenced HU of tissue moves by a few percent between effective beam energies; air stays air
    and field-of-view padding is left alone. Apply it to the full-dose image before the simulation.
    """

    def __init__(self, keys: KeysCollection, jitter: float = 0.02, prob: float = 1.0,
                 allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 0.5:
            raise ConfigError(f"jitter: got {jitter!r}, allowed: a number in [0, 0.5)")
        self.jitter = float(jitter)
        self.last_scale = 1.0

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        self.last_scale = 1.0 + float(self.R.uniform(-self.jitter, self.jitter))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            img = d[key]
            d[key] = torch.where(img < PADDING_HU, img, (img + 1000.0) * self.last_scale - 1000.0)
        return d


class LowDosePaird(RandomizableTransform, MapTransform):
    """``source`` = a simulated low-dose acquisition of ``target`` at a random dose.

    Args:
        dose_range: ``[low, high]`` dose fractions, drawn uniformly per sample.
        target_key / source_key: where the full-dose image is and where the low-dose one goes.
        **simulator: arguments of :class:`medgan.transforms.lowdose.SimulateLowDosed` (``photons``,
            ``electronic_noise``, ``views``, ``mode`` ...); the pixel size comes from the affine.

    Adds ``"dose"`` (float) and ``"noise_level"`` (std of source - target in HU over voxels above -900 HU)
    to the dictionary.
    """

    def __init__(self, dose_range: Sequence[float] = (0.1, 0.5), target_key: str = "target",
                 source_key: str = "source", **simulator: Any) -> None:
        MapTransform.__init__(self, [target_key])
        RandomizableTransform.__init__(self, 1.0)
        self.target_key, self.source_key = target_key, source_key
        self.simulate = RandSimulateLowDosed(source_key, dose_range=tuple(dose_range), **simulator)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> LowDosePaird:
        super().set_random_state(seed, state)
        self.simulate.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.source_key] = d[self.target_key]
        d = self.simulate(d)
        src, tgt = d[self.source_key], d[self.target_key]
        body = torch.as_tensor(tgt) > -900.0
        diff = (torch.as_tensor(src) - torch.as_tensor(tgt))[body]
        d["dose"] = float(self.simulate.last_dose)
        d["noise_level"] = float(diff.std()) if diff.numel() > 1 else 0.0
        return d


def pair_transforms(cfg: Mapping[str, Any] | None = None) -> Compose:
    """The on-the-fly pair pipeline from a config dict (keys optional, defaults in brackets):

    ``dose_range`` [[0.1, 0.5]], ``pixel_range`` [[0.4, 1.5]] mm (``null``: keep the scan's),
    ``thickness_range`` [[0.5, 10]] mm, ``upsample`` [true] (false: never finer than the scan's own pixel),
    ``size_multiple`` [128], ``max_size`` [512], ``attenuation_jitter``
    [0.02], ``flips`` [true] (random flips and 90° rotations in-plane), ``simulator`` [{}] (photons,
    electronic_noise, views, mode ... of the low-dose simulator).
    """
    cfg = dict(cfg or {})
    simulator = dict(cfg.get("simulator") or {})
    allowed = {"dose_range", "pixel_range", "thickness_range", "upsample", "size_multiple", "max_size",
               "attenuation_jitter", "flips", "simulator"}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ConfigError(f"on-the-fly pairs: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    # the scan's photon budget and noise texture are measured before resampling (a no-op when the image's
    # meta already holds its volume's calibration); the budget is per mm², so it holds at any pixel size
    steps: list[Any] = [CalibrateDosed("target", **simulator)]
    pixel = cfg.get("pixel_range", (0.4, 1.5))
    steps.append(RandPixelSized(
        "target", pixel_range=pixel or (1e-3, 1e3), thickness_range=cfg.get("thickness_range", (0.5, 10.0)),
        size_multiple=cfg.get("size_multiple", 128), max_size=cfg.get("max_size", 512), prob=1.0 if pixel else 0.0,
        upsample=cfg.get("upsample", True),
    ))
    jitter = cfg.get("attenuation_jitter", 0.02)
    if jitter:
        steps.append(RandAttenuationJitterd("target", jitter=jitter))
    steps.append(LowDosePaird(cfg.get("dose_range", (0.1, 0.5)), **simulator))
    if cfg.get("flips", True):
        steps += [RandFlipd(PAIR_KEYS, prob=0.5, spatial_axis=0), RandFlipd(PAIR_KEYS, prob=0.5, spatial_axis=1),
                  RandRotate90d(PAIR_KEYS, prob=0.75, spatial_axes=(0, 1))]
    return Compose(steps)


class SimulatedPairDataset(Dataset):
    """Training samples ``{"source", "target", "dose", "noise_level", ...}`` made from full-dose slices.

    Args:
        store: full-dose volumes (``medgan.data.volumes.VolumeStore``: ``store[i]["image"]`` is ``(1, X, Y, Z)``
            HU, ``store.affines[i]`` its affine).
        samples: ``(case index, slice)`` per sample (``Pile.samples("2d")``).
        patch_size: ``(X, Y)`` patch cut from the resampled pair.
        normalizer: HU -> network units for both images.
        transforms: :func:`pair_transforms` pipeline (or its config dict).
        context_slices: neighbours on each side as extra source channels (2.5D; the target is the centre).
        realisations: distinct noise draws per slice; whole simulated slices are cached per
            ``(slice, draw)`` (``cache_slices`` of them) so consecutive patches reuse one simulation.
            Both may also be given as keys of the ``transforms`` config dict (``data.dose_pairs``).
        seed: base seed mixed with each sample's key.
        patients: the patient of each sample, for :class:`medgan.data.sampling.PairSampler`'s weights
            (default: one patient per case).

    Keys are ``(index, _, crop_seed)`` as :class:`medgan.data.sampling.PairSampler` yields, or an int. It
    answers the sampler like a paired :class:`medgan.data.datasets.CTSampleDataset` (``paired``,
    ``source_samples``, :meth:`weights_patients`), so the data module can swap one for the other.
    """

    paired = True

    def __init__(self, store: Any, samples: Sequence[tuple[int, int | None]], patch_size: Sequence[int],
                 normalizer: HUNormalizer | None = None, transforms: Compose | Mapping[str, Any] | None = None,
                 context_slices: int = 0, realisations: int = 8, cache_slices: int = 16, seed: int = 0,
                 patients: Sequence[str] | None = None) -> None:
        self.store, self.samples = store, list(samples)
        self.source_samples = self.samples
        self._patients = list(patients) if patients is not None else [str(case) for case, _ in self.samples]
        self.patch = tuple(int(p) for p in patch_size)
        self.normalizer = normalizer or HUNormalizer()
        if isinstance(transforms, Mapping):  # the dataset's own keys may ride in the same config section
            transforms = dict(transforms)
            realisations = transforms.pop("realisations", realisations)
            cache_slices = transforms.pop("cache_slices", cache_slices)
        self.transforms = transforms if isinstance(transforms, Compose) else pair_transforms(transforms)
        self.context = int(context_slices)
        self.realisations, self.cache_slices, self.seed = int(realisations), int(cache_slices), int(seed)
        self._cache: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        self._calibrations: dict[int, dict[str, Any]] = {}
        self._calibrate = self.transforms.transforms[0]

    def _volume(self, case: int) -> MetaTensor:
        """The case's volume with its whole-volume dose calibration in the meta (measured once per case)."""
        affine = torch.as_tensor(self.store.affines[case], dtype=torch.float64)
        volume = MetaTensor(torch.as_tensor(self.store[case]["image"]).float(), affine=affine)
        if case not in self._calibrations and isinstance(self._calibrate, CalibrateDosed):
            self._calibrate({"target": volume})
            self._calibrations[case] = dict(volume.meta)
        volume.meta.update(self._calibrations.get(case, {}))
        return volume

    def __len__(self) -> int:
        return len(self.samples)

    def weights_patients(self, which: str = "source") -> list[str]:
        """The patient of each sample (source and target are the same sample)."""
        return list(self._patients)

    def _pair(self, index: int, draw: int) -> dict[str, Any]:
        key = (index, draw)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        case, z = self.samples[index]
        volume = self._volume(case)
        stack = slice_stack(volume.as_tensor(), 0 if z is None else z, self.context)  # (C, X, Y) HU
        meta = {k: v for k, v in volume.meta.items() if k != "affine"}
        # a slice stack has no z axis of its own: the simulator's photon budget needs the volume's thickness
        meta.setdefault("slice_thickness_mm", voxel_size(volume)[2])
        full = MetaTensor(stack, affine=volume.affine, meta=meta)
        self.transforms.set_random_state(seed=int(np.random.SeedSequence([self.seed, index, draw]).generate_state(1)[0]))
        pair = self.transforms({"target": full})
        self._cache[key] = pair
        while len(self._cache) > self.cache_slices:
            self._cache.popitem(last=False)
        return pair

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, Any]:
        index, crop_seed = (key[0], key[2]) if isinstance(key, tuple) else (int(key), int(key))
        rng = np.random.default_rng([self.seed, int(crop_seed)])
        pair = self._pair(index, int(rng.integers(self.realisations)))
        source, target = (torch.as_tensor(pair[k]).float() for k in PAIR_KEYS)
        source, target = pad_to(source, self.patch, AIR_HU), pad_to(target, self.patch, AIR_HU)
        start = random_start(source.shape[1:], self.patch, rng)
        c = self.context
        return {
            "source": self.normalizer.forward(crop(source, start, self.patch)).contiguous(),
            "target": self.normalizer.forward(crop(target[c:c + 1], start, self.patch)).contiguous(),
            "dose": torch.tensor(pair["dose"], dtype=torch.float32),
            "noise_level": torch.tensor(pair["noise_level"] * self.normalizer.scale, dtype=torch.float32),
        }
