"""Which samples a training epoch draws: per-patient weights and a seeded sampler of (source, target) pairs.

The ldct-benchmark weights every slice by 1/n_slices of its patient so that each patient counts equally,
whatever its scan length; :func:`patient_weights` does that for slices and, in 3D, for cases.

:class:`PairSampler` yields ``(source_index, target_index, crop_seed)`` tuples that the datasets take as
keys. Drawing the crop seed here, in the main process, makes an epoch depend only on ``(seed, epoch)``,
never on the number of DataLoader workers or which worker served which sample. Unpaired training draws
the target index from a second, independent stream: the two piles are shuffled independently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def patient_weights(patients: Sequence[str]) -> torch.Tensor:
    """One weight per sample: 1 / (number of samples of the same patient), so every patient sums to 1.

    Args:
        patients: the patient id of each sample (a slice, or a case in 3D).

    Returns:
        float64 tensor (N,).
    """
    counts = Counter(patients)
    return torch.tensor([1.0 / counts[p] for p in patients], dtype=torch.float64)


class PairSampler(Sampler[tuple[int, int, int]]):
    """Seeded, with-replacement sampling of ``num_samples`` keys per epoch.

    Args:
        source_weights: (N,) non-negative sampling weights of the source samples.
        target_weights: (M,) weights of an independent target stream (unpaired), or ``None`` to reuse the
            source index (paired and single-domain).
        num_samples: keys per epoch.
        seed: base seed; epoch ``e`` uses a generator seeded from ``(seed, e)``.
    """

    def __init__(
        self,
        source_weights: torch.Tensor,
        target_weights: torch.Tensor | None,
        num_samples: int,
        seed: int = 0,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.source_weights = torch.as_tensor(source_weights, dtype=torch.float64)
        self.target_weights = (
            None if target_weights is None else torch.as_tensor(target_weights, dtype=torch.float64)
        )
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch, so epochs differ but stay reproducible."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        source = torch.multinomial(
            self.source_weights, self.num_samples, replacement=True, generator=generator
        )
        if self.target_weights is None:
            target = source
        else:
            target = torch.multinomial(
                self.target_weights, self.num_samples, replacement=True, generator=generator
            )
        crop_seeds = torch.randint(0, 2**31 - 1, (self.num_samples,), generator=generator)
        yield from zip(source.tolist(), target.tolist(), crop_seeds.tolist())
