"""The mode-collapse monitor: the spread of a fixed set of outputs, tracked over validations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn


def collapse_warning(history: list[tuple[int, float]], fraction: float, floor: float = 0.0,
                     what: str = "output diversity") -> str | None:
    """The mode-collapse message when the latest diversity of ``history`` ``[(step, value), ...]`` fell
    below ``fraction`` x the first value, or is at most ``floor`` (a generator that never varied), else
    ``None``."""
    if history and floor > 0 and history[-1][1] <= floor:
        step, value = history[-1]
        return (f"mode collapse: {what} {value:.4g} at step {step} is at most {floor:g} "
                "(validation.diversity.min_diversity): the outputs are (nearly) all the same")
    if len(history) < 2 or history[0][1] <= 0:
        return None
    (_, first), (step, value) = history[0], history[-1]
    if value >= fraction * first:
        return None
    return (f"possible mode collapse: {what} {value:.4g} at step {step} fell below {fraction:g} x its "
            f"first value {first:.4g} (validation.diversity.warn_fraction)")


class DiversityMonitor(Callback):
    """Mean pairwise distance of the outputs that ``validation_step`` returns (``outputs["diversity"]``,
    ``(N, C, *spatial)`` normalised), over the first ``samples`` of them: logged as ``val/diversity``,
    plotted to ``samples/diversity.png``, and a warning when it falls below ``warn_fraction`` x its first
    value. The history is part of the checkpoint (Lightning stores callback state).

    Class-conditional recipes also return ``outputs["diversity_labels"]`` (``(N,)``) and
    ``outputs["class_names"]``: each class is then compared within itself (``val/diversity_<class>``), a
    class counts as covered while it has not collapsed, and ``val/class_coverage`` is the covered fraction
    (a cGAN that draws one image per class has coverage 0 although its overall diversity looks fine).

    On collapse (overall or of any class) the monitor warns; with ``on_collapse="restore"`` it also puts
    back the weights and optimiser states of the last healthy validation (kept in memory) and multiplies
    every learning rate by ``lr_factor`` (at most ``max_restores`` times per run).

    Args:
        run_dir: the run directory.
        samples: outputs compared per validation.
        warn_fraction: the collapse threshold, relative to the first value.
        min_diversity: the absolute threshold (normalised units).
        on_collapse: ``"warn"`` or ``"restore"``.
        lr_factor: learning-rate factor of a restore.
        max_restores: restores allowed per run.
    """

    def __init__(self, run_dir: str | Path, samples: int, warn_fraction: float, min_diversity: float = 0.0,
                 on_collapse: str = "warn", lr_factor: float = 0.5, max_restores: int = 3) -> None:
        if on_collapse not in ("warn", "restore"):
            raise ValueError(f"on_collapse: got '{on_collapse}', allowed: warn, restore")
        self.run_dir = Path(run_dir)
        self.samples = int(samples)
        self.warn_fraction = float(warn_fraction)
        self.min_diversity = float(min_diversity)
        self.on_collapse, self.lr_factor, self.max_restores = on_collapse, float(lr_factor), int(max_restores)
        self.history: list[tuple[int, float]] = []
        self.class_history: dict[str, list[tuple[int, float]]] = {}
        self.collected: list[torch.Tensor] = []
        self.collected_labels: list[torch.Tensor] = []
        self.class_names: list[str] = []
        self.healthy: dict[str, Any] | None = None
        self.restores: list[tuple[int, int]] = []  # (collapsed step, restored step)

    def _count(self) -> int:
        return sum(len(x) for x in self.collected)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.collected, self.collected_labels = [], []

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        out = outputs.get("diversity") if isinstance(outputs, dict) else None
        if out is None or self._count() >= self.samples:
            return
        out = out.detach().float().cpu()
        if self.collected and out.shape[1:] != self.collected[0].shape[1:]:
            return  # a case smaller than the crop: only like-shaped outputs are compared
        self.collected.append(out)
        labels = outputs.get("diversity_labels")
        if labels is not None:
            self.collected_labels.append(torch.as_tensor(labels).detach().cpu().long())
            self.class_names = list(outputs.get("class_names") or self.class_names)

    def _class_warnings(self, samples: torch.Tensor, step: int, pl_module: pl.LightningModule) -> list[str]:
        """Per-class diversity, history and coverage; the collapse messages of the classes that collapsed."""
        from medgan.figures import mean_pairwise_distance

        labels = torch.cat(self.collected_labels)[: len(samples)]
        warnings, covered, counted = [], 0, 0
        for label in sorted(set(labels.tolist())):
            chosen = samples[labels == label]
            if len(chosen) < 2:
                continue
            name = self.class_names[label] if label < len(self.class_names) else str(label)
            value = mean_pairwise_distance(chosen.numpy())
            pl_module.log(f"val/diversity_{name}", value, sync_dist=True)
            history = self.class_history.setdefault(name, [])
            history.append((step, value))
            warning = collapse_warning(history, self.warn_fraction, self.min_diversity, f"diversity of class '{name}'")
            counted += 1
            if warning:
                warnings.append(warning)
            else:
                covered += 1
        if counted:
            pl_module.log("val/class_coverage", covered / counted, sync_dist=True)
        return warnings

    def _snapshot(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        import copy

        self.healthy = {"step": step, "lr_scale": self.lr_factor ** len(self.restores),
                        "module": {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()},
                        "optimizers": [copy.deepcopy(o.state_dict()) for o in trainer.optimizers]}

    def _restore(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> str:
        """Put back the last healthy state and lower every learning rate; the message says what was done."""
        assert self.healthy is not None
        pl_module.load_state_dict(self.healthy["module"])
        for optimizer, state in zip(trainer.optimizers, self.healthy["optimizers"]):
            optimizer.load_state_dict(state)
        # the snapshot's lr had the restores before it applied; this one lowers it once more
        scale = self.lr_factor ** (len(self.restores) + 1) / self.healthy["lr_scale"]
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] *= scale
        for config in trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if hasattr(scheduler, "base_lrs"):
                scheduler.base_lrs = [lr * self.lr_factor for lr in scheduler.base_lrs]
        self.restores.append((step, int(self.healthy["step"])))
        return (f"restored the weights and optimiser states of step {self.healthy['step']} (the last healthy "
                f"validation) and multiplied the learning rates by {self.lr_factor:g} "
                f"(validation.diversity.on_collapse=restore; restore {len(self.restores)} of {self.max_restores})")

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
        warning = collapse_warning(self.history, self.warn_fraction, self.min_diversity)
        warnings = ([warning] if warning else []) + (
            self._class_warnings(samples, step, pl_module) if self.collected_labels else [])
        if warnings and self.on_collapse == "restore" and self.healthy is not None \
                and len(self.restores) < self.max_restores:
            warnings.append(self._restore(trainer, pl_module, step))
        elif not warnings and self.on_collapse == "restore":
            self._snapshot(trainer, pl_module, step)
        for message in warnings:
            rank_zero_warn(message)
        if trainer.is_global_zero:
            steps, values = zip(*self.history)
            save_diversity_plot(self.run_dir / "samples" / "diversity.png", steps, values, self.warn_fraction)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [[int(s), float(v)] for s, v in self.history],
                "class_history": {k: [[int(s), float(v)] for s, v in h] for k, h in self.class_history.items()},
                "restores": [list(r) for r in self.restores]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [(int(s), float(v)) for s, v in state_dict.get("history", [])]
        self.class_history = {k: [(int(s), float(v)) for s, v in h]
                              for k, h in state_dict.get("class_history", {}).items()}
        self.restores = [(int(a), int(b)) for a, b in state_dict.get("restores", [])]
