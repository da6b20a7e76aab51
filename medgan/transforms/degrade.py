"""Super-resolution degradations: a low-resolution CT volume with its exact geometry.

The low-resolution (LR) source of an SR pair is made from the high-resolution (HR) target by

1. optional slice-thickness simulation: a rectangular slice-sensitivity profile ``thickness_mm`` wide,
   i.e. a (fractional) moving average along z; the slice positions and count stay, so the pair keeps a
   one-to-one slice correspondence and only in-plane resolution changes by ``scale``;
2. anti-aliased in-plane down-sampling by an integer ``scale``: each LR pixel is the mean of a
   ``scale x scale`` block of HR pixels (MONAI ``Resize(mode="area")``), which is what a detector with
   ``scale``-times larger pixels measures, and needs no extra anti-aliasing filter;
3. optional through-plane down-sampling by an integer ``slice_scale`` (thick -> thin SR, e.g. 4 for
   1.25 mm -> 5 mm): each LR slice is the mean of ``slice_scale`` contiguous HR slices, i.e. a rectangular
   slice-sensitivity profile exactly one LR slice spacing wide, without gaps or overlap (a scanner's
   reconstruction of contiguous thick slices); add ``slice_thickness_mm`` for a wider profile;
4. optional Gaussian image noise ``noise_std_hu``.

Geometry: LR voxel ``(i, j, k)`` is the centre of HR voxels ``[s*i, s*i + s) x [s*j, s*j + s) x {k}``,
so its world position is the mean of theirs (with ``slice_scale`` t: HR slices ``[t*k, t*k + t)``). Sizes
that are not a multiple of the factor lose the last ``size % factor`` HR columns/rows/slices in the LR image; the HR target need not be cropped: LR patch at
``(i, j)`` pairs with the HR patch at ``(s*i, s*j)`` (the remainder is simply never sampled).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform, Resize, SpatialCrop

from medgan.errors import ConfigError
from medgan.io.geometry import voxel_spacing


def _parse_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"scale: got {scale!r}, allowed: an integer >= 1 (2 = half the in-plane resolution)")
    return scale


def slice_profile(thickness_slices: float) -> torch.Tensor:
    """Weights of a rectangular slice-sensitivity profile ``thickness_slices`` slice spacings wide.

    Tap ``m`` (offset from the centre slice) gets the overlap of ``[m - 1/2, m + 1/2]`` with
    ``[-w/2, w/2]``, normalised to sum to 1; ``w <= 1`` gives ``[1.0]`` (no averaging).

    Returns:
        1D float64 tensor of odd length.
    """
    half = thickness_slices / 2
    reach = max(0, math.ceil(half - 0.5))
    taps = torch.arange(-reach, reach + 1, dtype=torch.float64)
    overlap = (torch.minimum(taps + 0.5, torch.tensor(half)) - torch.maximum(taps - 0.5, torch.tensor(-half))).clamp(
        min=0
    )
    return overlap / overlap.sum()


def simulate_slice_thickness(volume: torch.Tensor, thickness_mm: float, spacing_z_mm: float) -> torch.Tensor:
    """Average ``(C, X, Y, Z)`` along z with a ``thickness_mm`` rectangular profile; same shape and positions.

    Edge slices repeat the border (a scan does not see past its first and last slice).
    """
    if not thickness_mm > 0:
        raise ConfigError(f"slice_thickness_mm: got {thickness_mm!r}, allowed: > 0 mm")
    weights = slice_profile(thickness_mm / spacing_z_mm)
    if weights.numel() == 1:
        return volume
    data = volume.as_tensor() if isinstance(volume, MetaTensor) else volume
    c, x, y, z = data.shape
    reach = weights.numel() // 2
    lines = data.reshape(c * x * y, 1, z).float()
    lines = F.pad(lines, (reach, reach), mode="replicate")
    out = F.conv1d(lines, weights.to(lines)[None, None]).reshape(c, x, y, z).to(data.dtype)
    if isinstance(volume, MetaTensor):
        return MetaTensor(out, meta=volume.meta, applied_operations=volume.applied_operations)
    return out


def degrade_for_sr(
    volume: MetaTensor,
    scale: int,
    slice_thickness_mm: float | None = None,
    *,
    noise_std_hu: float = 0.0,
    seed: int | None = None,
    slice_scale: int = 1,
) -> MetaTensor:
    """The low-resolution source of an SR pair, with the exact LR geometry in its affine.

    Args:
        volume: HR image, channel-first ``(C, X, Y, Z)`` (or ``(C, X, Y)``), HU, with a voxel->world affine.
        scale: integer in-plane down-sampling factor (X and Y).
        slice_thickness_mm: simulate slices this thick (rectangular profile) before down-sampling;
            ``None`` keeps the HR slices.
        noise_std_hu: standard deviation of added white Gaussian noise, HU (0 = none).
        seed: seed of that noise.
        slice_scale: integer through-plane down-sampling factor (block mean of contiguous slices); 1 keeps
            every slice. ``scale`` may be 1 when ``slice_scale`` > 1 (through-plane SR only).

    Returns:
        ``(C, X // scale, Y // scale, Z // slice_scale)`` float32 MetaTensor in HU; affine spacing x the factor
        per axis and origin at the centre of the first HR block; other meta (DICOM headers ...) kept, plus
        ``meta["sr_scale"]``, ``meta["sr_slice_scale"]`` and ``meta["slice_thickness_mm"]`` when simulated.
    """
    scale = _parse_scale(scale)
    slice_scale = _parse_scale(slice_scale)
    if not isinstance(volume, MetaTensor):
        volume = MetaTensor(torch.as_tensor(volume))
    if volume.ndim not in (3, 4):
        raise ValueError(f"volume: expected (C, X, Y[, Z]), got shape {tuple(volume.shape)}")
    if not (isinstance(noise_std_hu, (int, float)) and noise_std_hu >= 0):
        raise ConfigError(f"noise_std_hu: got {noise_std_hu!r}, allowed: >= 0 HU")
    in_plane = volume.shape[1:3]
    if min(in_plane) < scale:
        raise ConfigError(f"scale: got {scale} for an in-plane size {tuple(in_plane)}, allowed: <= the smaller side")
    out = volume.clone().float()  # a copy: meta is updated below and the input must not change
    if slice_thickness_mm is not None:
        if volume.ndim != 4:
            raise ConfigError("slice_thickness_mm: needs a 3D (C, X, Y, Z) volume, got a 2D slice")
        spacing_z = float(voxel_spacing(volume.affine)[2])
        out = simulate_slice_thickness(out, float(slice_thickness_mm), spacing_z)
    if slice_scale > 1 and (volume.ndim != 4 or volume.shape[3] < slice_scale):
        raise ConfigError(f"slice_scale: got {slice_scale} for shape {tuple(volume.shape[1:])}, allowed: a 3D volume "
                          "with at least that many slices")
    factors = [scale, scale] + ([slice_scale] if volume.ndim == 4 else [])
    if any(f > 1 for f in factors):
        kept = [n - n % f for n, f in zip(volume.shape[1:], factors)]
        if kept != list(volume.shape[1:]):
            out = SpatialCrop(roi_start=[0] * len(kept), roi_end=kept)(out)
        lr_shape = [k // f for k, f in zip(kept, factors)]
        out = Resize(lr_shape, mode="area")(out)  # block mean; MONAI moves the origin to the block centre
    if noise_std_hu > 0:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        out = out + noise_std_hu * torch.randn(out.shape, generator=gen).to(out.device)
    out.meta["sr_scale"] = scale
    if slice_scale > 1:
        out.meta["sr_slice_scale"] = slice_scale
    if slice_thickness_mm is not None:
        out.meta["slice_thickness_mm"] = float(slice_thickness_mm)
    return out


class DegradeForSRd(MapTransform):
    """Dictionary version of :func:`degrade_for_sr`: writes the LR image of ``keys`` to ``output_key``.

    Args:
        keys: the HR image key (one).
        scale, slice_thickness_mm, noise_std_hu, seed, slice_scale: as :func:`degrade_for_sr`.
        output_key: where the LR image goes (default: replace the HR image).
    """

    def __init__(
        self,
        keys: KeysCollection,
        scale: int,
        slice_thickness_mm: float | None = None,
        noise_std_hu: float = 0.0,
        seed: int | None = None,
        output_key: str | None = None,
        allow_missing_keys: bool = False,
        slice_scale: int = 1,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slice_scale = _parse_scale(slice_scale)
        self.scale = _parse_scale(scale)
        self.slice_thickness_mm = slice_thickness_mm
        self.noise_std_hu = noise_std_hu
        self.seed = seed
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            lr = degrade_for_sr(
                d[key], self.scale, self.slice_thickness_mm, noise_std_hu=self.noise_std_hu, seed=self.seed,
                slice_scale=self.slice_scale,
            )
            d[self.output_key or key] = lr
        return d


class RandDegradeForSRd(RandomizableTransform, MapTransform):
    """:class:`DegradeForSRd` with white noise of a random standard deviation (on-the-fly SR pairs).

    Args:
        keys: the HR image key (one).
        scale: integer in-plane down-sampling factor.
        noise_range: ``(min, max)`` HU; each call draws the noise std uniformly in it (``(0, 0)``: none).
        output_key: where the LR image goes (default: replace the HR image).

    The noise is drawn from this transform's own random state (``set_random_state``), so a seeded
    pipeline gives the same pair every time.
    """

    def __init__(self, keys: KeysCollection, scale: int, noise_range: tuple[float, float] = (0.0, 0.0),
                 output_key: str | None = None, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)
        self.scale = _parse_scale(scale)
        lo, hi = (float(v) for v in noise_range)
        if not 0 <= lo <= hi:
            raise ConfigError(f"noise_range: got {tuple(noise_range)!r}, allowed: 0 <= min <= max (HU)")
        self.noise_range, self.output_key = (lo, hi), output_key
        self.last_noise_std = 0.0

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        self.last_noise_std = float(self.R.uniform(*self.noise_range)) if self.noise_range[1] > 0 else 0.0
        self._noise_seed = int(self.R.randint(0, 2**31 - 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            d[self.output_key or key] = degrade_for_sr(d[key], self.scale, noise_std_hu=self.last_noise_std,
                                                       seed=self._noise_seed)
        return d
