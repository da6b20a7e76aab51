"""The training and evaluation samples of a CT dataset: paired, unpaired or single-domain; 2D, 2.5D, 3D.

A :class:`CTSampleDataset` indexes *samples* (a slice of a case in 2D/2.5D, a case in 3D) of the source
pile; for unpaired training it also indexes the target pile separately. Keys are either an int (evaluation:
deterministic whole slices or centred 3D patches) or the ``(source_index, target_index, crop_seed)``
tuples of :class:`medgan.data.sampling.PairSampler` (training: random patches).

Every item is a dict:

* ``"source"``: float32 (C, *patch) normalised; C = 2·context_slices+1 in 2.5D, else 1;
* ``"target"``: float32 (1, *patch·ratio) normalised (ratio = the SR scale per axis, 1 for dose pairs);
* ``"case"``: the case name; ``"label"``: int64 scalar (``dataset.json``'s label, else 0);
* ``"slice_frac"``: float32 scalar, the position of the (centre) slice along z in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from medgan.data.patches import AIR_HU, centre_start, crop, map_slice, pad_to, random_start, slice_stack
from medgan.data.volumes import VolumeStore
from medgan.errors import InputError
from medgan.io.layout import CaseInfo
from medgan.transforms.intensity import HUNormalizer

INPUT_MODES = ("2d", "2.5d", "3d")


@dataclass(frozen=True)
class Pile:
    """The volumes of one pile and what the layout knows about each case (same order)."""

    store: VolumeStore
    cases: Sequence[CaseInfo]

    def samples(self, input_mode: str, max_slices: int | None = None) -> list[tuple[int, int | None]]:
        """``(case index, slice)`` per sample; ``slice`` is ``None`` in 3D. ``max_slices`` keeps at most that
        many evenly spaced slices per case (evaluation)."""
        out: list[tuple[int, int | None]] = []
        for i, shape in enumerate(self.store.shapes):
            if input_mode == "3d":
                out.append((i, None))
                continue
            depth = shape[-1]
            zs = range(depth)
            if max_slices is not None and depth > max_slices:
                zs = sorted({int(round(z)) for z in np.linspace(0, depth - 1, max_slices)})
            out.extend((i, z) for z in zs)
        return out


def _fraction(position: float, depth: int) -> float:
    return 0.0 if depth <= 1 else float(min(max(position / (depth - 1), 0.0), 1.0))


class CTSampleDataset(Dataset):
    """Samples of a source pile and (paired, unpaired or the same) target pile.

    Args:
        source: the pile that feeds ``"source"``.
        target: the pile that feeds ``"target"``; for paired data its cases are in the same order as
            ``source`` (matched by name); for single-domain data pass the same pile twice.
        paired: the target sample is the same case and location as the source one; else it is drawn
            independently (unpaired).
        input_mode: ``"2d"``, ``"2.5d"`` or ``"3d"``.
        context_slices: neighbours on each side of the centre slice in 2.5D.
        patch_size: the source patch in voxels (2 ints in 2D/2.5D over (X, Y), 3 in 3D over (X, Y, Z));
            ``None`` means whole slices (evaluation in 2D/2.5D).
        scale: target voxels per source voxel in-plane (super-resolution), 1 for dose pairs.
        normalizer: HU -> normalised map applied to both.
        max_slices: evaluation only, at most this many evenly spaced slices per case.
    """

    def __init__(
        self,
        source: Pile,
        target: Pile,
        *,
        paired: bool,
        input_mode: str = "2d",
        context_slices: int = 0,
        patch_size: Sequence[int] | None = None,
        scale: int = 1,
        normalizer: HUNormalizer | None = None,
        max_slices: int | None = None,
    ) -> None:
        self.source, self.target, self.paired = source, target, paired
        self.input_mode = input_mode
        self.context = context_slices if input_mode == "2.5d" else 0
        self.patch = None if patch_size is None else tuple(int(p) for p in patch_size)
        self.scale = int(scale)
        self.normalizer = normalizer or HUNormalizer()
        self.source_samples = source.samples(input_mode, max_slices)
        self.target_samples = self.source_samples if paired else target.samples(input_mode, max_slices)
        self.ratios = [self._ratio(i) for i in range(len(source.cases))] if paired else None

    def _ratio(self, i: int) -> tuple[int, ...]:
        """Target voxels per source voxel along each sample axis of paired case ``i`` (checked)."""
        name = self.source.cases[i].name
        src, tgt = self.source.store.shapes[i], self.target.store.shapes[i]
        inplane = [t / s for s, t in zip(src[:2], tgt[:2])]
        if any(r != self.scale for r in inplane):
            raise InputError(
                f"case '{name}': target shape {tgt} is not data.scale={self.scale} x source shape {src} in-plane"
            )
        if self.input_mode != "3d":
            return (self.scale, self.scale)
        if tgt[2] % src[2]:
            raise InputError(
                f"case '{name}': target slices {tgt[2]} are not a whole multiple of source slices {src[2]}"
            )
        return (self.scale, self.scale, tgt[2] // src[2])

    def __len__(self) -> int:
        return len(self.source_samples)

    def weights_patients(self, which: str = "source") -> list[str]:
        """The patient id of each sample of the ``"source"`` or ``"target"`` list (for per-patient weights)."""
        pile, samples = (
            (self.source, self.source_samples) if which == "source" else (self.target, self.target_samples)
        )
        return [pile.cases[i].patient for i, _ in samples]

    def _cut(self, pile: Pile, case: int, z: int | None, channels: int) -> tuple[torch.Tensor, int, int]:
        """The whole slice stack (C, X, Y) or volume (1, X, Y, Z) in float32 HU, its slice and depth."""
        volume = pile.store[case]["image"]
        depth = volume.shape[-1]
        image = volume if z is None else slice_stack(volume, z, channels)
        return image.to(torch.float32), (depth // 2 if z is None else z), depth

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            i, j, seed = key
            rng: np.random.Generator | None = np.random.default_rng(seed)
        else:
            i, rng = int(key), None
            j = i % len(self.target_samples)
        case_i, z = self.source_samples[i]
        source, z_pos, depth = self._cut(self.source, case_i, z, self.context)
        if self.paired:
            case_j, tz = case_i, z
            if z is not None and self.target.store.shapes[case_i][-1] != depth:
                tz = map_slice(
                    z,
                    self.source.store.affines[case_i],
                    self.target.store.affines[case_i],
                    self.target.store.shapes[case_i][-1],
                )
        else:
            case_j, tz = self.target_samples[j]
        target, _, _ = self._cut(self.target, case_j, tz, 0)

        if self.patch is not None:
            ratio = self.ratios[case_i] if self.ratios else (self.scale,) * len(self.patch)
            source = pad_to(source, self.patch, AIR_HU)
            start = (
                random_start(source.shape[1:], self.patch, rng)
                if rng is not None
                else centre_start(source.shape[1:], self.patch)
            )
            tgt_size = [p * r for p, r in zip(self.patch, ratio)]
            target = pad_to(target, tgt_size, AIR_HU)
            if self.paired:
                tgt_start = [s * r for s, r in zip(start, ratio)]
            elif rng is not None:
                tgt_start = random_start(target.shape[1:], tgt_size, rng)
            else:
                tgt_start = centre_start(target.shape[1:], tgt_size)
            source, target = crop(source, start, self.patch), crop(target, tgt_start, tgt_size)
            if z is None:  # 3D: the patch centre along z
                z_pos = start[2] + (min(self.patch[2], depth) - 1) / 2
        info = self.source.cases[case_i]
        return {
            "source": self.normalizer.forward(source).contiguous(),
            "target": self.normalizer.forward(target).contiguous(),
            "case": info.name,
            "label": torch.tensor(info.label, dtype=torch.long),
            "slice_frac": torch.tensor(_fraction(z_pos, depth), dtype=torch.float32),
        }


class CTVolumeDataset(Dataset):
    """Whole cases for validation and testing: what ``medgan-infer`` is given, with the target to score.

    Args:
        source: the pile that is inferred.
        target: the pile scored against (same case order; the same pile for single-domain data).
        input_mode: ``"2d"``, ``"2.5d"`` or ``"3d"`` (how a source slice maps to target slices).
        max_slices: keep the central ``max_slices`` source slices of each case (``None``: all of them).

    Every item is a dict:

    * ``"source_hu"``: float32 ``(1, X, Y, Z)`` HU; ``"target_hu"``: float32 ``(1, X', Y', Z')`` HU, the
      target slices that match the kept source slices (``Z' = Z``, or ``Z·r`` for a 3D SR ratio ``r``);
    * ``"affine"``: float64 ``(4, 4)`` voxel -> mm of the kept source slices;
    * ``"case"``, ``"label"`` as in :class:`CTSampleDataset`.
    """

    def __init__(self, source: Pile, target: Pile, *, input_mode: str = "2d", max_slices: int | None = None) -> None:
        self.source, self.target, self.input_mode, self.max_slices = source, target, input_mode, max_slices

    def __len__(self) -> int:
        return len(self.source.cases)

    def _block(self, depth: int) -> tuple[int, int]:
        n = depth if self.max_slices is None else min(self.max_slices, depth)
        start = (depth - n) // 2
        return start, start + n

    def __getitem__(self, i: int) -> dict[str, Any]:
        source = self.source.store[i]["image"]
        target = self.target.store[i]["image"]
        src_affine = self.source.store.affines[i].to(torch.float64)
        depth, t_depth = source.shape[-1], target.shape[-1]
        z0, z1 = self._block(depth)
        if t_depth == depth:
            target = target[..., z0:z1]
        elif self.input_mode == "3d" and t_depth % depth == 0:
            r = t_depth // depth
            target = target[..., z0 * r:z1 * r]
        else:  # another slice spacing: the target slice nearest to each source slice
            t_affine = self.target.store.affines[i]
            target = target[..., [map_slice(z, src_affine, t_affine, t_depth) for z in range(z0, z1)]]
        affine = src_affine.clone()
        affine[:3, 3] += affine[:3, 2] * z0  # the kept block starts z0 slices further along z
        info = self.source.cases[i]
        return {
            "source_hu": torch.as_tensor(source[..., z0:z1], dtype=torch.float32).contiguous(),
            "target_hu": torch.as_tensor(target, dtype=torch.float32).contiguous(),
            "affine": affine,
            "case": info.name,
            "label": torch.tensor(info.label, dtype=torch.long),
        }
