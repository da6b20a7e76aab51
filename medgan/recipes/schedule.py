"""The learning-rate schedule: a multiplier of the base lr per optimiser step, for ``LambdaLR``."""

from __future__ import annotations

import math


class LRSchedule:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    An object rather than a closure, so ``LambdaLR`` stores its fields in checkpoints.

    Args:
        kind: ``"constant"``, ``"linear_decay"`` (constant until ``decay_start · total``, then linearly to 0 at
            ``total``, as CycleGAN), ``"cosine"`` (half a cosine from 1 to 0 over ``total``) or ``"step"``
            (× ``gamma`` every ``step_size`` steps).
        total: schedule length in optimiser steps (at least 1).
        decay_start: fraction of ``total`` where the linear decay starts.
        warmup: linear warm-up over this many steps (``(step + 1) / warmup``), multiplied with the above.
        step_size: steps between two ``gamma`` factors (``"step"``).
        gamma: the factor of ``"step"``.
    """

    def __init__(self, kind: str, total: int, decay_start: float = 0.5, warmup: int = 0, step_size: int = 1000,
                 gamma: float = 0.5) -> None:
        self.kind, self.total, self.decay_start = kind, max(int(total), 1), float(decay_start)
        self.warmup, self.step_size, self.gamma = int(warmup), int(step_size), float(gamma)

    def __call__(self, step: int) -> float:
        factor = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        if self.kind == "linear_decay":
            start = int(self.decay_start * self.total)
            factor *= 1.0 - max(0, step - start) / max(self.total - start, 1)
        elif self.kind == "cosine":
            factor *= 0.5 * (1 + math.cos(math.pi * min(step, self.total) / self.total))
        elif self.kind == "step":
            factor *= self.gamma ** (step // self.step_size)
        return float(max(factor, 0.0))
