"""What a resumed run needs beyond weights, optimisers and schedules: the global RNG streams and the
count of data epochs that seeds the training sampler."""

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


def samplers(loader: Any) -> list[Any]:
    """Every sampler with ``set_epoch`` in a loader, including the one inside Lightning's DDP wrapper."""
    found = []
    for loader_ in loader if isinstance(loader, list | tuple) else [loader]:
        for sampler in (getattr(loader_, "sampler", None), getattr(getattr(loader_, "batch_sampler", None), "sampler", None)):
            while sampler is not None:
                if hasattr(sampler, "set_epoch") and sampler not in found:
                    found.append(sampler)
                sampler = getattr(getattr(sampler, "dataset", None), "_sampler", None)
    return found


class TrainingState(Callback):
    """Saves and restores the global RNG and the data-epoch count, so a resumed run draws exactly the
    random numbers and batches the uninterrupted run draws.

    Lightning 2.6 miscounts epochs when a step-based run resumes from an epoch-end checkpoint (it runs an
    empty epoch first), which would hand the seeded sampler the wrong epoch; so the epochs that drew
    batches are counted here and seed the sampler. The RNG is restored when the checkpoint loads and again
    at the start of the epoch that draws batches (Lightning's restore path draws from the global RNG for
    the empty epoch's DataLoader iterator).
    """

    def __init__(self) -> None:
        self.data_epoch = 0  # the next epoch of data to draw
        self.epoch_drew = True
        self.pending_rng: dict[str, Any] | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for sampler in samplers(trainer.train_dataloader):
            sampler.set_epoch(self.data_epoch)
        self.epoch_drew = False
        if self.pending_rng is not None:
            restore_rng(self.pending_rng)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if not self.epoch_drew:
            self.epoch_drew = True
            self.data_epoch += 1
        self.pending_rng = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(), "data_epoch": self.data_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pending_rng = state_dict["rng"]
        restore_rng(self.pending_rng)
        self.data_epoch = int(state_dict["data_epoch"])
