"""Synthetic lesions for evaluating anomaly detection: ellipsoids of a chosen HU contrast and size.

Real annotated anomalies are scarce; a standard proxy (e.g. Baur et al. 2021, "Autoencoders for
unsupervised anomaly segmentation in brain MR images: a comparative study") inserts synthetic ones into
normal scans and scores the anomaly map against their known masks. Here a lesion is an ellipsoid, axis
aligned with the voxel grid, whose radii are given in mm (so they mean the same on any spacing) and whose
HU contrast is *added* to the tissue it replaces, with a linear ramp of ``edge_mm`` across the boundary
(a hard step would make the edge, not the lesion, the easiest thing to detect).

As in torchio, the random transform (:class:`RandSyntheticLesions`) only samples parameters and hands them
to the deterministic twin (:class:`SyntheticLesions`), so a sample is reproducible from its logged lesions.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from medgan.errors import ConfigError, InputError
from medgan.io.geometry import voxel_spacing


@dataclass(frozen=True)
class Lesion:
    """One ellipsoid: ``centre`` in voxel indices ``(x, y, z)``, ``radii_mm`` along the voxel axes, ``contrast_hu``."""

    centre: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    contrast_hu: float


def _parse_range(value: float | Sequence[float], name: str, positive: bool) -> tuple[float, float]:
    pair = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, float)) for v in pair) or pair[0] > pair[1]:
        raise ConfigError(f"{name}: got {value!r}; allowed a number or [low, high] with low <= high")
    if positive and pair[0] <= 0:
        raise ConfigError(f"{name}: got {value!r}; values must be > 0")
    return float(pair[0]), float(pair[1])


def _volume_parts(volume: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    if volume.ndim != 4 or volume.shape[0] != 1:
        raise InputError(f"expected a (1, X, Y, Z) volume, got shape {tuple(volume.shape)}")
    return volume, voxel_spacing(getattr(volume, "affine", None))


def lesion_weight(shape: Sequence[int], spacing: Sequence[float], lesion: Lesion, edge_mm: float) -> np.ndarray:
    """Fraction of the lesion's contrast at each voxel: 1 inside, 0 outside, a linear ramp ``edge_mm`` wide
    centred on the ellipsoid surface. ``(X, Y, Z)`` float32."""
    axes = [(np.arange(n, dtype=np.float64) - c) * s for n, c, s in zip(shape, lesion.centre, spacing)]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij", sparse=True)
    rx, ry, rz = lesion.radii_mm
    # normalised radius r (1 on the surface) times the mean radius ≈ signed distance in mm near the surface
    r = np.sqrt((gx / rx) ** 2 + (gy / ry) ** 2 + (gz / rz) ** 2)
    distance_mm = (r - 1.0) * float(np.mean(lesion.radii_mm))
    if edge_mm <= 0:
        return (distance_mm <= 0).astype(np.float32)
    return np.clip(0.5 - distance_mm / edge_mm, 0.0, 1.0).astype(np.float32)


class SyntheticLesions:
    """Insert given lesions into a volume (deterministic).

    Args:
        lesions: the ellipsoids.
        edge_mm: width of the linear contrast ramp across each surface (0 = hard edge).

    ``__call__(volume)`` takes ``(1, X, Y, Z)`` HU (a ``MetaTensor``'s affine gives the spacing; a plain tensor
    is taken as 1 mm voxels) and returns ``(volume_with_lesions, mask)``: the same type, shape and meta, and a
    ``(1, X, Y, Z)`` bool mask of the voxels with at least half the contrast (the ellipsoids themselves).
    The input is not modified.
    """

    def __init__(self, lesions: Sequence[Lesion], edge_mm: float = 1.0) -> None:
        self.lesions = tuple(lesions)
        if edge_mm < 0:
            raise ConfigError(f"edge_mm: got {edge_mm}; must be >= 0")
        self.edge_mm = float(edge_mm)

    def __call__(self, volume: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        volume, spacing = _volume_parts(volume)
        shape = tuple(volume.shape[1:])
        added = np.zeros(shape, dtype=np.float32)
        mask = np.zeros(shape, dtype=bool)
        for lesion in self.lesions:
            weight = lesion_weight(shape, spacing, lesion, self.edge_mm)
            added += lesion.contrast_hu * weight
            mask |= weight >= 0.5
        out = volume.clone()
        out[0] += torch.from_numpy(added).to(out.dtype)
        mask_t = torch.from_numpy(mask)[None]
        if isinstance(volume, MetaTensor):
            meta = {k: v for k, v in volume.meta.items() if k != "affine"}  # the affine argument sets it
            mask_t = MetaTensor(mask_t, affine=volume.affine.clone(), meta=meta)
        return out, mask_t


class RandSyntheticLesions:
    """Sample ``count`` lesions inside a region of a volume and insert them (reproducible with ``seed``).

    Args:
        count: number of lesions.
        radius_mm: radius, or ``[low, high]`` range each of the three radii is drawn from uniformly.
        contrast_hu: contrast, or ``[low, high]`` range; negative values make hypodense lesions.
        edge_mm: see :class:`SyntheticLesions`.
        min_hu: centres are drawn among voxels above this HU when no ``region`` is passed (default -500:
            soft tissue, not air or lung).
        seed: seed of the generator (``None``: fresh entropy).

    ``__call__(volume, region=None)`` returns ``(volume_with_lesions, mask)``; the sampled lesions are kept
    in ``last_lesions``. Centres keep one maximal radius away from the volume border in-plane (through-plane
    too when the volume is thick enough), so each lesion lies fully inside the scan.
    """

    def __init__(self, count: int = 3, radius_mm: float | Sequence[float] = (4.0, 8.0),
                 contrast_hu: float | Sequence[float] = 300.0, edge_mm: float = 1.0, min_hu: float = -500.0,
                 seed: int | None = None) -> None:
        if not isinstance(count, int) or count < 1:
            raise ConfigError(f"count: got {count!r}; must be an integer >= 1")
        self.count = count
        self.radius_mm = _parse_range(radius_mm, "radius_mm", positive=True)
        self.contrast_hu = _parse_range(contrast_hu, "contrast_hu", positive=False)
        self.edge_mm, self.min_hu = float(edge_mm), float(min_hu)
        self.rng = np.random.default_rng(seed)
        self.last_lesions: tuple[Lesion, ...] = ()

    def sample(self, volume: torch.Tensor, region: torch.Tensor | np.ndarray | None = None) -> tuple[Lesion, ...]:
        """Draw the lesions for ``volume`` (``(1, X, Y, Z)`` HU); ``region`` ``(X, Y, Z)`` bool limits the centres."""
        volume, spacing = _volume_parts(volume)
        shape = np.array(volume.shape[1:])
        if region is None:
            allowed = volume[0].detach().cpu().numpy() > self.min_hu
        else:
            allowed = np.asarray(region.detach().cpu() if isinstance(region, torch.Tensor) else region, dtype=bool)
            allowed = allowed.reshape(allowed.shape[-3:])
            if allowed.shape != tuple(shape):
                raise InputError(f"region shape {allowed.shape} does not match the volume {tuple(shape)}")
        margin = np.ceil(self.radius_mm[1] / spacing).astype(int)
        margin = np.where(shape > 2 * margin + 1, margin, 0)  # thin volumes: allow centres on any slice
        allowed = allowed.copy()
        for axis, m in enumerate(margin):
            if m:
                index = [slice(None)] * 3
                index[axis] = slice(0, m)
                allowed[tuple(index)] = False
                index[axis] = slice(-m, None)
                allowed[tuple(index)] = False
        candidates = np.argwhere(allowed)
        if len(candidates) == 0:
            raise InputError("no voxel can hold a lesion centre (region empty or too close to the border)")
        picks = candidates[self.rng.integers(0, len(candidates), self.count)]
        lesions = tuple(
            Lesion(tuple(float(v) for v in centre),
                   tuple(float(v) for v in self.rng.uniform(*self.radius_mm, size=3)),
                   float(self.rng.uniform(*self.contrast_hu)))
            for centre in picks
        )
        self.last_lesions = lesions
        return lesions

    def __call__(self, volume: torch.Tensor, region: torch.Tensor | np.ndarray | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        return SyntheticLesions(self.sample(volume, region), self.edge_mm)(volume)


class RandSyntheticLesionsd(MapTransform):
    """Dictionary version for MONAI pipelines: inserts lesions into ``keys`` and stores the mask in ``mask_key``.

    All ``keys`` get the same lesions (e.g. a paired low/full-dose case). Arguments as
    :class:`RandSyntheticLesions`; the sampled lesions are stored under ``f"{mask_key}_lesions"``.
    """

    def __init__(self, keys: KeysCollection, mask_key: str = "lesion_mask", allow_missing_keys: bool = False,
                 **kwargs: object) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.sampler = RandSyntheticLesions(**kwargs)  # type: ignore[arg-type]

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, object]:
        d: dict[Hashable, object] = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return d
        inserter = SyntheticLesions(self.sampler.sample(d[keys[0]]), self.sampler.edge_mm)  # type: ignore[arg-type]
        for key in keys:
            d[key], mask = inserter(d[key])  # type: ignore[arg-type]
        d[self.mask_key] = mask
        d[f"{self.mask_key}_lesions"] = inserter.lesions
        return d
