"""Super-resolution training pairs made on the fly from the high-resolution scans, at random pixel sizes.

A model trained on one scanner's pixel size learns that scanner's edges: a net that learned to sharpen
3 mm chest pixels over-sharpens a 0.45 mm head. So every training sample is re-made from its
high-resolution slice with the denoiser's MONAI transforms (:mod:`medgan.data.augment`, one home):

1. :class:`medgan.data.augment.RandPixelSized` resamples the slice to a random pixel size (anti-aliased
   when coarsening, bicubic when refining: bilinear's kinks on the coarse grid are what a net learns to
   draw) with probability ``resample_prob`` (otherwise the scan's own grid: the pair is then exactly the
   ``medgan-prepare sr`` pair), padded with air to a multiple of ``scale``;
2. :class:`medgan.data.augment.RandAttenuationJitterd` scales attenuation by a few percent;
3. :class:`medgan.transforms.degrade.RandDegradeForSRd` makes the low-resolution source with the same
   degradation model as ``medgan-prepare sr`` (``scale x scale`` block mean) plus white noise of a random
   standard deviation;
4. MONAI ``RandFlipd`` / ``RandRotate90d`` on both images (the block grid stays aligned: sizes are
   multiples of ``scale``).

:class:`SRPairDataset` serves patches of these pairs with the sampler's per-sample seed; it reuses
:class:`medgan.data.augment.SimulatedPairDataset`'s per-slice cache and seeding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import Compose, RandFlipd, RandRotate90d

from medgan.data.augment import (
    PAIR_KEYS,
    RandAttenuationJitterd,
    RandPixelSized,
    SimulatedPairDataset,
    _parse_range,
)
from medgan.data.patches import AIR_HU, crop, pad_to, random_start
from medgan.errors import ConfigError
from medgan.transforms.degrade import RandDegradeForSRd

#: how a scan is brought to pixels finer than its own. Bilinear leaves kinks on the coarse grid in the
#: target, which a net then learns to reproduce (measured: it lost up to 0.7 dB on held-out 0.45 mm slices)
REFINE_MODES = ("bicubic", "bilinear")
#: ``data.sr_pairs`` keys and their defaults
DEFAULTS: dict[str, Any] = {
    "pixel_range": [0.4, 1.5],
    "resample_prob": 0.75,
    "refine_mode": "bicubic",
    "max_size": 512,
    "noise_range": [0.0, 0.0],
    "attenuation_jitter": 0.02,
    "flips": True,
}


def sr_pair_transforms(scale: int, cfg: Mapping[str, Any] | None = None) -> Compose:
    """The on-the-fly SR pair pipeline (``{"target": HR MetaTensor}`` -> ``source`` and ``target``).

    Args:
        scale: in-plane down-sampling factor.
        cfg: :data:`DEFAULTS` keys: ``pixel_range`` [min, max] mm, ``resample_prob``, ``refine_mode``
            (``bicubic`` or ``bilinear``: how a scan is resampled to pixels finer than its own), ``max_size`` (pixels per
            side after resampling), ``noise_range`` [min, max] HU of the source's white noise,
            ``attenuation_jitter``, ``flips``.

    Raises:
        ConfigError: an unknown key or a bad value, naming it.
    """
    unknown = sorted(set(cfg or {}) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"data.sr_pairs: unknown key(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    c = {**DEFAULTS, **(cfg or {})}
    prob = c["resample_prob"]
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        raise ConfigError(f"data.sr_pairs.resample_prob: got {prob!r}, allowed: a number in [0, 1]")
    if c["refine_mode"] not in REFINE_MODES:
        raise ConfigError(f"data.sr_pairs.refine_mode: got {c['refine_mode']!r}, allowed: {', '.join(REFINE_MODES)}")
    steps: list[Any] = [RandPixelSized("target", pixel_range=c["pixel_range"], size_multiple=scale,
                                       max_size=max(int(c["max_size"]), scale), prob=float(prob),
                                       refine_mode=c["refine_mode"])]
    if c["attenuation_jitter"]:
        steps.append(RandAttenuationJitterd("target", jitter=c["attenuation_jitter"]))
    steps.append(RandDegradeForSRd("target", scale, noise_range=_parse_range(c["noise_range"], "data.sr_pairs.noise_range"),
                                   output_key="source"))
    if c["flips"]:
        steps += [RandFlipd(PAIR_KEYS, prob=0.5, spatial_axis=0), RandFlipd(PAIR_KEYS, prob=0.5, spatial_axis=1),
                  RandRotate90d(PAIR_KEYS, prob=0.75, spatial_axes=(0, 1))]
    return Compose(steps)


class SRPairDataset(SimulatedPairDataset):
    """Training samples ``{"source", "target"}`` (normalised) made on the fly from high-resolution slices.

    Args:
        store: the high-resolution volumes (``VolumeStore``; ``store[i]["image"]`` is ``(1, X, Y, Z)`` HU).
        samples: ``(case index, slice)`` per sample.
        patch_size: the low-resolution ``(X, Y)`` patch; the target patch is ``scale`` times larger.
        scale: in-plane factor.
        normalizer: HU -> network units for both images.
        transforms: :func:`sr_pair_transforms` pipeline, or its config dict.
        context_slices: 2.5D neighbours (source channels); the target is the centre slice.
        realisations: distinct random pairs per slice (whole pairs are cached, see the base class).
        seed: base seed mixed with each sample's key.
        patients: the patient of each sample, for :class:`medgan.data.sampling.PairSampler`'s weights
            (default: one patient per case).

    It answers the sampler like a paired :class:`medgan.data.datasets.CTSampleDataset` (``paired``,
    ``source_samples``, :meth:`weights_patients`), so the data module swaps one for the other.
    """

    paired = True

    def __init__(self, store: Any, samples: Sequence[tuple[int, int | None]], patch_size: Sequence[int],
                 scale: int, normalizer: Any = None, transforms: Compose | Mapping[str, Any] | None = None,
                 context_slices: int = 0, realisations: int = 8, cache_slices: int = 16, seed: int = 0,
                 patients: Sequence[str] | None = None) -> None:
        pipeline = transforms if isinstance(transforms, Compose) else sr_pair_transforms(scale, transforms)
        super().__init__(store, samples, patch_size, normalizer, pipeline, context_slices, realisations,
                         cache_slices, seed)
        self.scale = int(scale)
        self.source_samples = self.samples
        self._patients = list(patients) if patients is not None else [str(case) for case, _ in self.samples]

    def weights_patients(self, which: str = "source") -> list[str]:
        """The patient of each sample (source and target are the same sample)."""
        return list(self._patients)

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, Any]:
        index, crop_seed = (key[0], key[2]) if isinstance(key, tuple) else (int(key), int(key))
        rng = np.random.default_rng([self.seed, int(crop_seed)])
        pair = self._pair(index, int(rng.integers(self.realisations)))
        source, target = (torch.as_tensor(pair[k]).float() for k in PAIR_KEYS)
        s, c = self.scale, self.context
        target_patch = [p * s for p in self.patch]
        source = pad_to(source, self.patch, AIR_HU)
        target = pad_to(target, [n * s for n in source.shape[1:]], AIR_HU)
        start = random_start(source.shape[1:], self.patch, rng)
        return {
            "source": self.normalizer.forward(crop(source, start, self.patch)).contiguous(),
            "target": self.normalizer.forward(crop(target[c:c + 1], [p * s for p in start], target_patch)).contiguous(),
        }
