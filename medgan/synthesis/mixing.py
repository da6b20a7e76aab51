"""Real and synthetic training samples mixed at a set ratio: the data-augmentation use of a generative model.

:class:`SyntheticBank` holds samples of a generative package (drawn once, seeded, in HU);
:class:`SyntheticMixDataset` serves real items and bank items with the same keys (a ``torch`` /
MONAI ``Dataset`` of dicts), flagged by ``"synthetic"``. With plain integer indices the mixed set is the
real items followed by the bank; with any other sampler of the real set (medgan's patch sampler yields
tuples), :class:`MixSampler` interleaves bank indices so that a fraction ``ratio`` of every epoch is
synthetic.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from medgan.errors import ConfigError
from medgan.transforms.intensity import HUNormalizer


def _parse_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
        raise ConfigError(f"synthetic ratio: got {ratio!r}, expected a fraction in [0, 1) of synthetic samples")
    return float(ratio)


def bank_size(n_real: int, ratio: float) -> int:
    """Synthetic samples that make ``ratio`` of a set with ``n_real`` real ones."""
    ratio = _parse_ratio(ratio)
    return int(round(n_real * ratio / (1 - ratio)))


@dataclass(frozen=True)
class SyntheticIndex:
    """A key of :class:`SyntheticMixDataset` naming bank sample ``index``."""

    index: int


class SyntheticBank:
    """``size`` samples of a generative model in HU, drawn on first use with seeds ``seed + j``.

    Args:
        model: a :class:`~medgan.synthesis.sampling.GenerativeModel` or a package path.
        size: number of samples.
        classes: labels to draw for a cGAN, cycled (default: every class in turn); ignored otherwise.
        seed: base latent seed.
    """

    def __init__(self, model: Any, size: int, classes: Sequence[int] | None = None, seed: int = 0) -> None:
        from medgan.synthesis.sampling import GenerativeModel, load_generative

        self.model = model if isinstance(model, GenerativeModel) else load_generative(os.fspath(model))
        self.size = int(size)
        names = self.model.class_names
        cycle = list(classes) if classes is not None else list(range(len(names)))
        bad = [c for c in cycle if not 0 <= int(c) < len(names)] if names else []
        if bad:
            raise ConfigError(f"synthetic classes {bad} are not labels of the model (0..{len(names) - 1}: {names})")
        self.labels = [int(cycle[j % len(cycle)]) for j in range(self.size)] if names else [0] * self.size
        self.seed = int(seed)
        self._images: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.size

    @property
    def images_hu(self) -> torch.Tensor:
        """``(size, 1, *img)`` HU, drawn once."""
        if self._images is None:
            seeds = [self.seed + j for j in range(self.size)]
            labels = self.labels if self.model.class_names else None
            self._images = self.model.sample(seeds, labels) if self.size else torch.empty(0)
        return self._images


class SyntheticMixDataset(Dataset):
    """Real items and synthetic ones with the same keys.

    Args:
        real: the real dataset (items are dicts with image keys normalised by ``normalizer``).
        bank: the synthetic samples.
        normalizer: the real data's HU normalisation, applied to the synthetic HU images.
        image_keys: keys that receive the synthetic image (``target`` for single-domain recipes, and
            ``source`` when source and target are the same domain).
        extra: constant keys of synthetic items (e.g. ``{"slice_frac": 0.5}``) so batches collate.

    Items: the real item plus ``"synthetic": False``, or ``{key: image (1, *img) normalised, "label",
    "case": "synthetic_<j>", "synthetic": True, **extra}``.
    """

    def __init__(self, real: Dataset, bank: SyntheticBank, normalizer: HUNormalizer | None = None,
                 image_keys: Sequence[str] = ("target", "source"), extra: dict[str, Any] | None = None) -> None:
        self.real, self.bank = real, bank
        self.normalizer = normalizer or HUNormalizer()
        self.image_keys = tuple(image_keys)
        self.extra = dict(extra or {})

    def __len__(self) -> int:
        return len(self.real) + len(self.bank)  # type: ignore[arg-type]

    def synthetic_item(self, j: int) -> dict[str, Any]:
        image = self.normalizer.forward(self.bank.images_hu[j]).float()
        item: dict[str, Any] = {k: image for k in self.image_keys}
        item.update({"label": torch.tensor(self.bank.labels[j], dtype=torch.long), "case": f"synthetic_{j}",
                     "synthetic": True, **{k: torch.as_tensor(v) for k, v in self.extra.items()}})
        return item

    def __getitem__(self, key: Any) -> dict[str, Any]:
        if isinstance(key, SyntheticIndex):
            return self.synthetic_item(key.index)
        n_real = len(self.real)  # type: ignore[arg-type]
        if isinstance(key, int) and key >= n_real:
            return self.synthetic_item(key - n_real)
        item = dict(self.real[key])
        item["synthetic"] = False
        return item


class MixSampler(Sampler):
    """Keys of ``base`` (any sampler of the real set) with :class:`SyntheticIndex` keys interleaved at
    random positions, so that ``ratio`` of the yielded keys are synthetic (bank indices drawn with
    replacement, seeded per epoch)."""

    def __init__(self, base: Sampler, bank_size: int, ratio: float, seed: int = 0) -> None:
        self.base, self.bank_size, self.ratio, self.seed = base, int(bank_size), _parse_ratio(ratio), int(seed)
        if self.ratio > 0 and self.bank_size < 1:
            raise ConfigError("synthetic ratio > 0 needs a non-empty synthetic bank")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def _n_synthetic(self, n_real: int) -> int:
        return math.ceil(n_real * self.ratio / (1 - self.ratio)) if self.ratio else 0

    def __len__(self) -> int:
        n_real = len(self.base)  # type: ignore[arg-type]
        return n_real + self._n_synthetic(n_real)

    def __iter__(self) -> Iterator[Any]:
        real = list(self.base)
        n_syn = self._n_synthetic(len(real))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        slots = set(torch.randperm(len(real) + n_syn, generator=g)[:n_syn].tolist())
        picks = torch.randint(0, max(self.bank_size, 1), (n_syn,), generator=g).tolist()
        real_iter, pick_iter = iter(real), iter(picks)
        for position in range(len(real) + n_syn):
            yield SyntheticIndex(next(pick_iter)) if position in slots else next(real_iter)
