"""The mode-collapse monitor: the spread of a fixed set of outputs, tracked over validations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn


def collapse_warning(history: list[tuple[int, float]], fraction: float) -> str | None:
    """The mode-collapse message when the latest diversity of ``history`` ``[(step, value), ...]`` fell
    below ``fraction`` x the first value, else ``None``."""
    if len(history) < 2 or history[0][1] <= 0:
        return None
    (_, first), (step, value) = history[0], history[-1]
    if value >= fraction * first:
        return None
    return (f"possible mode collapse: output diversity {value:.4g} at step {step} fell below {fraction:g} x its "
            f"first value {first:.4g} (validation.diversity.warn_fraction)")


class DiversityMonitor(Callback):
    """Mean pairwise distance of the outputs that ``validation_step`` returns (``outputs["diversity"]``,
    ``(N, C, *spatial)`` normalised), over the first ``samples`` of them: logged as ``val/diversity``,
    plotted to ``samples/diversity.png``, and a warning when it falls below ``warn_fraction`` x its first
    value. The history is part of the checkpoint (Lightning stores callback state).

    Args:
        run_dir: the run directory.
        samples: outputs compared per validation.
        warn_fraction: the collapse threshold.
    """

    def __init__(self, run_dir: str | Path, samples: int, warn_fraction: float) -> None:
        self.run_dir = Path(run_dir)
        self.samples = int(samples)
        self.warn_fraction = float(warn_fraction)
        self.history: list[tuple[int, float]] = []
        self.collected: list[torch.Tensor] = []

    def _count(self) -> int:
        return sum(len(x) for x in self.collected)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.collected = []

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        out = outputs.get("diversity") if isinstance(outputs, dict) else None
        if out is None or self._count() >= self.samples:
            return
        out = out.detach().float().cpu()
        if self.collected and out.shape[1:] != self.collected[0].shape[1:]:
            return  # a case smaller than the crop: only like-shaped outputs are compared
        self.collected.append(out)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        collected, self.collected = self.collected, []
        if trainer.sanity_checking or not collected:
            return
        samples = torch.cat(collected)[: self.samples]
        if len(samples) < 2:
            return
        from medgan.figures import mean_pairwise_distance, save_diversity_plot

        value = mean_pairwise_distance(samples.numpy())
        step = pl_module.iteration
        pl_module.log("val/diversity", value, sync_dist=True)
        self.history.append((step, value))
        warning = collapse_warning(self.history, self.warn_fraction)
        if warning:
            rank_zero_warn(warning)
        if trainer.is_global_zero:
            steps, values = zip(*self.history)
            save_diversity_plot(self.run_dir / "samples" / "diversity.png", steps, values, self.warn_fraction)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [[int(s), float(v)] for s, v in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [(int(s), float(v)) for s, v in state_dict.get("history", [])]
