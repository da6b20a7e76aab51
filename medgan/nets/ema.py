"""Exponential moving average of a generator's weights (as BasicSR keeps for SR nets, decay 0.999)."""

from __future__ import annotations

import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMA(AveragedModel):
    """A copy of ``model`` whose parameters and buffers track ``decay * ema + (1 - decay) * model``.

    A thin layer over ``torch.optim.swa_utils.AveragedModel`` with an EMA averaging function; the copy is
    ``ema.module`` and ``ema(x)`` runs it. Buffers (BatchNorm statistics) are averaged too, so the copy is
    usable without a BN re-estimation pass. The first :meth:`update` copies the weights.

    Args:
        model: the net to track (not modified).
        decay: weight of the old average per update, in [0, 1).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA: decay={decay!r} must be a number in [0, 1)")
        super().__init__(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay = float(decay)
        self.module.requires_grad_(False)

    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average (call after each optimiser step)."""
        self.update_parameters(model)
