"""The training engine: a Lightning ``Trainer`` built from ``trainer:``, with medgan's run directory.

``RUN/`` (``run.dir``) receives:

- ``config.yaml``: the resolved configuration;
- ``checkpoints/last.ckpt`` (resume) and ``checkpoints/best.ckpt`` (best validation SSIM, as the
  ldct-benchmark selects; the metric is ``validation.monitor``);
- ``model/``: the model package of the final weights, ``model_best/``: of the best validation score
  (both loadable by ``medgan-infer --model``);
- ``samples/*.png``: validation panels and the diversity curve; ``tb/``: TensorBoard; ``metrics.csv``.

DDP, AMP, multi-node and checkpoint resume are Lightning's; this module only wires them to the config.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from medgan.config import ExperimentConfig, save_config
from medgan.errors import MissingFileError, OutputExistsError

#: what a run writes into ``run.dir`` (removed by ``--overwrite``; nothing else there is touched)
RUN_OUTPUTS = ("config.yaml", "checkpoints", "model", "model_best", "samples", "tb", "metrics.csv",
               "hparams.yaml", "ddp_weights.json")


@dataclass
class TrainResult:
    """Where a finished run put things, and the final validation metrics (if any)."""

    run_dir: Path
    last_ckpt: Path
    best_ckpt: Path | None
    model_dir: Path
    metrics: dict[str, float]


def build_datamodule(cfg: ExperimentConfig) -> pl.LightningDataModule:
    """The :class:`medgan.data.CTDataModule` described by ``data:`` (seeded by ``seed``)."""
    from medgan.data import CTDataModule

    root = Path(cfg.data.root)
    if not root.is_dir():
        raise MissingFileError(f"data.root: dataset folder not found: {root} (make one with medgan-prepare)")
    return CTDataModule(cfg.data, seed=cfg.seed)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but through :func:`medgan.io.atomic.staged_output`: the file is
    written in a temporary sibling folder and renamed over the old one, so a process killed mid-save
    leaves the previous checkpoint whole. (Lightning's own save renames a temporary file from the system
    temporary folder, which is a copy - not atomic - when that folder is on another file system.)"""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        from medgan.io.atomic import staged_output

        with staged_output(Path(path)) as staged:
            torch.save(checkpoint, staged)


class ModelPackageWriter(Callback):
    """Keeps the best validation score: on each improvement writes ``checkpoints/best.ckpt`` and the
    ``model_best/`` package; writes ``model/`` (final weights) at the end of fit. The best score travels
    in checkpoints, so a resumed run compares with it. Works for validation inside fit and for the
    closing validation :func:`train` runs after fit."""

    def __init__(self, run_dir: Path, monitor: str, mode: str) -> None:
        self.run_dir, self.monitor, self.mode = Path(run_dir), monitor, mode
        self.best: float | None = None

    def _write(self, pl_module: pl.LightningModule, name: str) -> None:
        from medgan.package import save_model_package

        save_model_package(self.run_dir / name, pl_module.package_state_dict(), pl_module.manifest(), overwrite=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        value = float(value)  # synced over ranks (sync_dist), so every rank takes the same branch
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = value
            trainer.save_checkpoint(self.run_dir / "checkpoints" / "best.ckpt", weights_only=False)
            if trainer.is_global_zero:
                self._write(pl_module, "model_best")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._write(pl_module, "model")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")


class WeightSyncCheck(Callback):
    """After a multi-process fit, gathers a checksum of every rank's weights into ``ddp_weights.json``
    and warns if the ranks disagree (DDP keeps them identical; a difference means a broken set-up)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size < 2:
            return
        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        code = torch.tensor(list(digest.digest()[:8]), dtype=torch.int64, device=pl_module.device)
        gathered = trainer.strategy.all_gather(code).reshape(trainer.world_size, -1).cpu()
        checksums = ["".join(f"{int(b):02x}" for b in row) for row in gathered]
        if trainer.is_global_zero:
            (self.run_dir / "ddp_weights.json").write_text(json.dumps({"world_size": trainer.world_size,
                                                                      "checksums": checksums}, indent=1))
            if len(set(checksums)) > 1:
                warnings.warn(f"DDP ranks hold different weights after training: {checksums}", stacklevel=1)


def build_callbacks(cfg: ExperimentConfig, recipe: pl.LightningModule) -> list[Callback]:
    run = Path(cfg.run.dir)
    monitor, mode = f"val/{cfg.validation.monitor}", "min" if cfg.validation.monitor == "rmse" else "max"
    callbacks: list[Callback] = [
        ModelCheckpoint(dirpath=run / "checkpoints", save_last=True, save_top_k=0, save_on_train_epoch_end=True,
                        every_n_train_steps=(cfg.run.checkpoint_every * recipe.steps_per_iteration
                                             if cfg.run.checkpoint_every else None)),
        ModelPackageWriter(run, monitor, mode),
        WeightSyncCheck(run),
    ]
    return callbacks


def build_loggers(cfg: ExperimentConfig) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    run = Path(cfg.run.dir)
    loggers: list[Any] = []
    if cfg.logging.csv:  # name="" and version="" put metrics.csv straight into run.dir
        loggers.append(CSVLogger(save_dir=str(run), name="", version=""))
    if cfg.logging.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=str(run), name="tb", version="", default_hp_metric=False))
    return loggers


def build_trainer(cfg: ExperimentConfig, recipe: pl.LightningModule) -> pl.Trainer:
    """A Lightning ``Trainer`` from ``trainer:``; ``max_steps`` is scaled to optimiser steps."""
    t = cfg.trainer
    if t.matmul_precision:
        torch.set_float32_matmul_precision(t.matmul_precision)
    interval = t.val_check_interval
    strategy = t.strategy
    if strategy == "ddp" and recipe.steps_per_iteration > 1:
        # G's backward leaves D's (frozen) parameters without gradients and D's leaves G's: DDP must look
        # for unused parameters on each backward, or it waits for gradients that never come
        strategy = "ddp_find_unused_parameters_true"
    return pl.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=strategy,
        precision=t.precision,
        max_steps=t.max_steps * recipe.steps_per_iteration if t.max_steps > 0 else -1,
        max_epochs=t.max_epochs, max_time=t.max_time,
        # an int interval counts batches across epochs, so an epoch shorter than it still validates
        val_check_interval=interval,
        check_val_every_n_epoch=None if isinstance(interval, int) else t.check_val_every_n_epoch,
        limit_val_batches=t.limit_val_batches, num_sanity_val_steps=t.num_sanity_val_steps,
        log_every_n_steps=t.log_every_n_steps, deterministic=t.deterministic, benchmark=t.benchmark,
        enable_progress_bar=t.enable_progress_bar, default_root_dir=cfg.run.dir,
        callbacks=build_callbacks(cfg, recipe), logger=build_loggers(cfg) or False,
        enable_model_summary=False, plugins=[AtomicCheckpointIO()],
    )


def prepare_run_dir(cfg: ExperimentConfig, resume: bool, overwrite: bool) -> Path | None:
    """Check / clear ``run.dir``; return the checkpoint to resume from (or ``None``)."""
    run = Path(cfg.run.dir)
    last = run / "checkpoints" / "last.ckpt"
    if resume:
        if not last.is_file():
            raise MissingFileError(f"--resume: no checkpoint to resume at {last} (run.dir={run})")
        if rank_zero_only.rank == 0:  # what a save killed mid-way left beside the checkpoints
            for stale in (run / "checkpoints").glob(".*.medgan-tmp"):
                shutil.rmtree(stale, ignore_errors=True)
        return last
    if rank_zero_only.rank != 0:  # DDP children start after rank 0 created the folder
        return None
    existing = [name for name in RUN_OUTPUTS if (run / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"run.dir {run} already holds a run ({', '.join(existing)}); pass --resume to "
                                f"continue it or --overwrite to start over")
    remove_run_outputs(run)
    return None


def remove_run_outputs(run: Path, remove_empty_dir: bool = False) -> None:
    """Remove what a run writes into ``run`` (:data:`RUN_OUTPUTS`, nothing else); with
    ``remove_empty_dir`` also the folder itself when nothing else is left in it."""
    for name in RUN_OUTPUTS:
        path = run / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    if remove_empty_dir and run.is_dir() and not any(run.iterdir()):
        run.rmdir()


def train(cfg: ExperimentConfig, resume: bool = False, overwrite: bool = False,
          datamodule: pl.LightningDataModule | None = None) -> TrainResult:
    """Train ``cfg`` and return where the results are.

    Args:
        cfg: validated configuration.
        resume: continue from ``run.dir/checkpoints/last.ckpt`` (weights, optimisers, schedules, step,
            RNG, image pools, best score).
        overwrite: replace an existing run in ``run.dir``.
        datamodule: use this instead of building ``medgan.data.CTDataModule`` from ``data:``.
    """
    from medgan.recipes import build_recipe

    # everything that can refuse the run (config, nets, data) is checked before run.dir is touched, so a
    # run that fails before its first step leaves nothing behind
    cfg.trainer.check_has_an_end()
    cfg.scheduler.check_has_a_length(cfg.trainer)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    recipe = build_recipe(cfg)
    if datamodule is None:
        datamodule = build_datamodule(cfg)
        datamodule.setup("fit")
    run = Path(cfg.run.dir)
    run_existed = run.is_dir()
    ckpt = prepare_run_dir(cfg, resume, overwrite)
    if rank_zero_only.rank == 0:
        save_config(cfg, run / "config.yaml")
    trainer: pl.Trainer | None = None
    try:
        trainer = build_trainer(cfg, recipe)
        _fit(cfg, trainer, recipe, datamodule, ckpt)
    except BaseException:
        if ckpt is None and (trainer is None or trainer.global_step == 0) and rank_zero_only.rank == 0:
            # failed before its first step: leave nothing, so the same command can simply be run again
            remove_run_outputs(run, remove_empty_dir=not run_existed)
        raise
    best = run / "checkpoints" / "best.ckpt"
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    return TrainResult(run, run / "checkpoints" / "last.ckpt", best if best.is_file() else None, run / "model", metrics)


def _fit(cfg: ExperimentConfig, trainer: pl.Trainer, recipe: pl.LightningModule,
         datamodule: pl.LightningDataModule, ckpt: Path | None) -> None:
    with warnings.catch_warnings():
        # expected here: a run folder that already holds files, few batches on tiny CPU runs, no val set for
        # GANs, and step checkpoints of manually optimised recipes holding the post-step state (intended: the
        # weights then match the saved optimiser state, which is what resume needs)
        for pattern in (".*exists and is not empty.*", ".*does not have many workers.*",
                        ".*smaller than the logging interval.*", ".*Total length of .* across ranks is zero.*",
                        ".*Using ModelCheckpoint with manual optimization.*"):
            warnings.filterwarnings("ignore", message=pattern)
        trainer.fit(recipe, datamodule=datamodule, ckpt_path=str(ckpt) if ckpt else None, weights_only=True if ckpt else None)
        if recipe.last_validated_step != trainer.global_step and cfg.trainer.limit_val_batches:
            # training stopped between validations (max_steps inside an epoch): score the final weights too
            trainer.validate(recipe, datamodule=datamodule, verbose=False)
