"""Which samples a training epoch draws: per-patient weights and a seeded sampler of (source, target) pairs.

The ldct-benchmark weights every slice by 1/n_slices of its patient so that each patient counts equally,
whatever its scan length; :func:`patient_weights` does that for slices and, in 3D, for cases.

:class:`PairSampler` yields ``(source_index, target_index, crop_seed)`` tuples that the datasets take as
keys. Drawing the crop seed here, in the main process, makes an epoch depend only on ``(seed, epoch)``,
never on the number of DataLoader workers or which worker served which sample. Unpaired training draws
the target index from a second, independent stream: the two piles are shuffled independently.

Locality (``samples_per_volume > 1``): when volumes are not all held in memory, i.i.d. draws over many
cases would read a volume for almost every sample. Like TorchIO's patch queue, the sampler then draws a
*case* (with probability = its share of the weights), takes ``samples_per_volume`` samples from it (by the
weights within the case), and shuffles the samples of ``volumes_per_window`` such draws together. Every
sample keeps exactly its marginal probability (case share x within-case share = its weight), while a
window touches at most ``volumes_per_window`` volumes, so a cache of that many reads each one once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler


def patient_weights(patients: Sequence[str]) -> torch.Tensor:
    """One weight per sample: 1 / (number of samples of the same patient), so every patient sums to 1.

    Args:
        patients: the patient id of each sample (a slice, or a case in 3D).

    Returns:
        float64 tensor (N,).
    """
    counts = Counter(patients)
    return torch.tensor([1.0 / counts[p] for p in patients], dtype=torch.float64)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class PairSampler(DistributedSampler):
    """Seeded, with-replacement sampling of ``num_samples`` keys per epoch, sharded over DDP ranks.

    It is a ``DistributedSampler`` so that Lightning uses it as it is under DDP (instead of wrapping it
    and freezing its epoch): every rank draws the same epoch from ``(seed, epoch)`` and keeps every
    ``num_replicas``-th key from its ``rank`` on (padded by wrapping so all ranks get the same count).

    Args:
        source_weights: (N,) non-negative sampling weights of the source samples.
        target_weights: (M,) weights of an independent target stream (unpaired), or ``None`` to reuse the
            source index (paired and single-domain).
        num_samples: keys per epoch.
        seed: base seed; epoch ``e`` uses a generator seeded from ``(seed, e)``.
        source_cases / target_cases: the case (volume) index of each sample; needed for locality.
        samples_per_volume: samples drawn per case draw (1 = plain i.i.d. draws).
        volumes_per_window: case draws whose samples are shuffled together.
        num_replicas / rank: the DDP world; default from ``torch.distributed`` when initialised, else 1 / 0.
    """

    def __init__(
        self,
        source_weights: torch.Tensor,
        target_weights: torch.Tensor | None,
        num_samples: int,
        seed: int = 0,
        *,
        source_cases: Sequence[int] | None = None,
        target_cases: Sequence[int] | None = None,
        samples_per_volume: int = 1,
        volumes_per_window: int = 4,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if samples_per_volume < 1 or volumes_per_window < 1:
            raise ValueError(
                f"samples_per_volume and volumes_per_window must be >= 1, got {samples_per_volume}, {volumes_per_window}"
            )
        if samples_per_volume > 1 and (
            source_cases is None or (target_weights is not None and target_cases is None)
        ):
            raise ValueError(
                "samples_per_volume > 1 needs the case index of every sample (source_cases/target_cases)"
            )
        self.samples_per_volume, self.volumes_per_window = int(samples_per_volume), int(volumes_per_window)
        self.source_cases = None if source_cases is None else torch.as_tensor(source_cases, dtype=torch.long)
        self.target_cases = None if target_cases is None else torch.as_tensor(target_cases, dtype=torch.long)
        self.source_weights = torch.as_tensor(source_weights, dtype=torch.float64)
        self.target_weights = (
            None if target_weights is None else torch.as_tensor(target_weights, dtype=torch.float64)
        )
        world, here = _world()
        # DistributedSampler's bookkeeping over a stand-in dataset of one epoch's keys; num_samples is per rank.
        super().__init__(
            range(int(num_samples)),
            num_replicas=world if num_replicas is None else num_replicas,
            rank=here if rank is None else rank,
            shuffle=False,
            seed=int(seed),
        )
        self.epoch_size = int(num_samples)
        self.next_start: tuple[int, int] | None = None  # (epoch, keys to skip) for the next iteration

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch, so epochs differ but stay reproducible."""
        self.epoch = int(epoch)

    def start_at(self, epoch: int, skip: int = 0) -> None:
        """Make the next iteration yield epoch ``epoch`` from its ``skip``-th key on (this rank's keys),
        whatever ``set_epoch`` is called with before it starts: :class:`ResumableLoader` continues an
        interrupted epoch this way."""
        self.next_start = (int(epoch), int(skip))

    def __len__(self) -> int:
        return self.num_samples  # keys this rank yields per epoch

    def _draw(
        self, weights: torch.Tensor, cases: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """``num_samples`` sample indices with marginal probabilities ``weights / weights.sum()``."""
        n, m = self.epoch_size, self.samples_per_volume
        if m == 1 or cases is None:
            return torch.multinomial(weights, n, replacement=True, generator=generator)
        n_cases = int(cases.max()) + 1
        case_mass = torch.zeros(n_cases, dtype=torch.float64).index_add_(0, cases, weights)
        draws = -(-n // m)  # ceil
        chosen = torch.multinomial(case_mass, draws, replacement=True, generator=generator)
        members = [torch.nonzero(cases == c).flatten() for c in range(n_cases)]
        picks = []
        for c in chosen.tolist():
            within = torch.multinomial(weights[members[c]], m, replacement=True, generator=generator)
            picks.append(members[c][within])
        flat = torch.cat(picks)
        window = m * self.volumes_per_window
        for start in range(0, flat.numel(), window):  # shuffle inside each window, not across
            block = flat[start : start + window]
            flat[start : start + window] = block[torch.randperm(block.numel(), generator=generator)]
        return flat[:n]

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        epoch, skip = self.next_start if self.next_start is not None else (self.epoch, 0)
        self.next_start = None
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        source = self._draw(self.source_weights, self.source_cases, generator)
        target = (
            source
            if self.target_weights is None
            else self._draw(self.target_weights, self.target_cases, generator)
        )
        crop_seeds = torch.randint(0, 2**31 - 1, (self.epoch_size,), generator=generator)
        keys = list(zip(source.tolist(), target.tolist(), crop_seeds.tolist()))
        keys = (keys * -(-self.total_size // len(keys)))[: self.total_size]  # equal shares for all ranks
        yield from keys[self.rank : self.total_size : self.num_replicas][skip:]


class ResumableLoader(DataLoader):
    """The training ``DataLoader``: counts the batches it hands out, so a checkpoint knows the data
    position, and a resumed run continues the interrupted epoch where it stopped (Lightning saves and
    restores the state of a loader that has ``state_dict`` / ``load_state_dict``).

    The position is ``(epoch, batches of it consumed)``; an epoch whose batches were all consumed rolls
    over to the next at the next ``iter()``, so iterators that Lightning creates and drops (its empty
    restart epoch) move nothing. Its sampler must be a :class:`PairSampler`. Pass a ``generator``: then
    creating an iterator draws nothing from the global torch RNG, which the training steps' dropout and
    noise use.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, PairSampler):
            raise TypeError(f"ResumableLoader needs a PairSampler, got {type(self.sampler).__name__}")
        self.epoch, self.consumed = 0, 0

    def __iter__(self) -> Iterator[Any]:
        if self.consumed >= len(self):
            self.epoch, self.consumed = self.epoch + 1, 0
        self.sampler.start_at(self.epoch, self.consumed * int(self.batch_size or 1))
        for batch in super().__iter__():
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])
