"""What a resumed run needs beyond weights, optimisers, schedules and the data position: the global RNG
streams (dropout, noise, VAE sampling draw from them).

The data position is the training loader's (:class:`medgan.data.sampling.ResumableLoader`, saved by
Lightning); the loaders draw nothing from the global RNG, and validation neither (it forks the RNG), so
between a checkpoint and the next training step nothing else moves these streams."""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


def rng_state() -> dict[str, Any]:
    """The torch (CPU, CUDA), numpy and python global RNG states as tensors and plain types, so a
    checkpoint holding them loads with ``weights_only=True``."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss_next": py_state[2]},
    }


def restore_rng(rng: dict[str, Any]) -> None:
    """Set the global RNGs to a :func:`rng_state` snapshot."""
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    n = rng["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = rng["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


class TrainingState(Callback):
    """Saves the global RNG in each checkpoint and restores it right before the first training batch of a
    resumed run (Lightning's restore path may draw from it in between), so the resumed run draws exactly
    the random numbers the uninterrupted run draws."""

    def __init__(self) -> None:
        self.pending_rng: dict[str, Any] | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.pending_rng is not None:
            restore_rng(self.pending_rng)
            self.pending_rng = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pending_rng = state_dict["rng"]
