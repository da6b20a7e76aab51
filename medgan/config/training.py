"""How a run trains: ``run:``, ``nets:``, ``optim:``, ``scheduler:``, ``trainer:`` and ``logging:``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from medgan.config.base import Component, _Section, check_component
from medgan.errors import ConfigError


class RunConfig(_Section):
    """Where a run writes: ``config.yaml``, ``checkpoints/``, ``model/``, ``samples/``, ``tb/``, ``metrics.csv``."""

    dir: str = Field("runs/experiment", description="run directory (created)")
    checkpoint_every: int | None = Field(
        None, ge=1, description="also refresh checkpoints/last.ckpt every N iterations (always at epoch end)"
    )


class NetsConfig(_Section):
    """Networks by role; each is ``type:`` (a name in ``medgan.nets.NETS``) + its keyword arguments."""

    generator: Component = Field(..., description="generator / autoencoder / denoiser (the net used at inference)")
    discriminator: Component | None = Field(None, description="discriminator of the adversarial recipes")

    @field_validator("generator", "discriminator")
    @classmethod
    def _has_type(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return v if v is None else check_component(v)


class OptimConfig(_Section):
    """Adam/AdamW for every net; the discriminator may get its own learning rate."""

    type: Literal["adam", "adamw"] = Field("adam", description="optimiser of every net")
    lr: float = Field(2e-4, gt=0, description="learning rate of the generator(s)")
    lr_d: float | None = Field(None, gt=0, description="learning rate of the discriminator(s) (default: lr)")
    betas: list[float] = Field([0.5, 0.999], description="Adam betas (2 floats)")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (adam) or decoupled decay (adamw)")

    @field_validator("betas")
    @classmethod
    def _two(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not all(0 <= b < 1 for b in v):
            raise ValueError(f"must be 2 floats in [0, 1), got {v}")
        return v


class SchedulerConfig(_Section):
    """Learning-rate schedule, stepped once per optimiser step over ``trainer.max_steps``."""

    type: Literal["constant", "linear_decay", "cosine", "step"] = Field(
        "constant", description="linear_decay: constant until decay_start, then linearly to 0 (CycleGAN)"
    )
    decay_start: float = Field(0.5, ge=0, le=1, description="fraction of training where linear decay starts")
    total_steps: int | None = Field(
        None, ge=1, description="length of the schedule (default trainer.max_steps); fix it to extend a run by resuming"
    )
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0")
    step_size: int = Field(1000, ge=1, description="step: decay every step_size steps")
    gamma: float = Field(0.5, gt=0, description="step: multiplier")

    def check_has_a_length(self, trainer: TrainerConfig) -> None:
        """Refuse a decaying schedule whose length nothing fixes: with only ``trainer.max_time`` set, the
        number of steps is unknown until the clock runs out.

        Raises:
            ConfigError: ``type`` is ``linear_decay`` or ``cosine``, ``total_steps`` is unset and the trainer
                ends by time alone.
        """
        by_time_only = trainer.max_steps <= 0 and trainer.max_epochs is None and trainer.max_time is not None
        if self.type in ("linear_decay", "cosine") and self.total_steps is None and by_time_only:
            raise ConfigError(
                f"scheduler.type={self.type} decays over a known number of steps, but only trainer.max_time "
                "ends this run: set trainer.max_steps or scheduler.total_steps"
            )


Precision = Literal["32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "64-true"]


class TrainerConfig(_Section):
    """Lightning ``Trainer`` settings (names as in Lightning)."""

    max_steps: int = Field(-1, ge=-1, description="optimiser steps (generator steps for GANs); -1: by epochs")
    max_epochs: int | None = Field(None, ge=1, description="epochs; set max_steps, max_epochs or max_time (none set is refused)")
    max_time: str | dict[str, int] | None = Field(
        None, description="wall-time limit as Lightning's 'DD:HH:MM:SS' or {days, hours, minutes, seconds}; "
        "training then ends like a normal end (last.ckpt, model/)")
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = Field("auto", description="auto: GPU when present")
    devices: int | str | list[int] = Field("auto", description="count, 'auto' or a list of GPU ids")
    num_nodes: int = Field(1, ge=1, description="machines for multi-node DDP (SLURM/torchrun)")
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp"] = "auto"
    precision: Precision = Field("32-true", description="'bf16-mixed' / '16-mixed' for AMP on GPU")
    gradient_clip_val: float | None = Field(None, gt=0, description="clip each net's gradient norm")
    accumulate_grad_batches: int = Field(1, ge=1, description="batches per optimiser step")
    val_check_interval: int | float | None = Field(
        None, description="validate every N training batches (int) or fraction of an epoch (float)"
    )
    check_val_every_n_epoch: int | None = Field(1, ge=1, description="validate every N epochs (when the interval is not an int)")
    limit_val_batches: int | float = Field(1.0, ge=0, description="validation batches (int) or fraction")
    num_sanity_val_steps: int = Field(0, ge=-1, description="validation batches run before training (catches bugs early)")
    log_every_n_steps: int = Field(10, ge=1, description="training-loss logging interval (iterations)")
    deterministic: bool | Literal["warn"] = Field(False, description="deterministic algorithms (slower)")
    benchmark: bool | None = Field(None, description="cudnn.benchmark")
    enable_progress_bar: bool = Field(True, description="tqdm progress bar with the losses")
    matmul_precision: Literal["highest", "high", "medium"] | None = Field(
        None, description="torch.set_float32_matmul_precision (TF32 on Ampere+ with 'high')"
    )

    @field_validator("max_time")
    @classmethod
    def _max_time(cls, v: str | dict[str, int] | None) -> str | dict[str, int] | None:
        if isinstance(v, str):
            if not re.fullmatch(r"\d{1,3}:\d{2}:\d{2}:\d{2}", v.strip()):
                raise ValueError(f"expected 'DD:HH:MM:SS' (e.g. 00:00:14:00 for 14 minutes), got {v!r}")
            return v.strip()
        if isinstance(v, dict):
            allowed = ("days", "hours", "minutes", "seconds")
            bad = [k for k in v if k not in allowed]
            if bad or any(int(x) < 0 for x in v.values()):
                raise ValueError(f"keys {allowed} with values >= 0, got {v!r}")
        return v

    def check_has_an_end(self) -> None:
        """Refuse a run with no end (checked when training starts, so partial configs still load).

        Raises:
            ConfigError: none of ``max_steps`` (> 0), ``max_epochs`` and ``max_time`` is set.
        """
        if self.max_steps <= 0 and self.max_epochs is None and self.max_time is None:
            raise ConfigError("set trainer.max_steps (> 0), trainer.max_epochs or trainer.max_time; none is set")

    def max_time_seconds(self) -> float | None:
        """``max_time`` in seconds (``None`` when unset)."""
        if self.max_time is None:
            return None
        if isinstance(self.max_time, dict):
            t = self.max_time
            return 86400.0 * t.get("days", 0) + 3600.0 * t.get("hours", 0) + 60.0 * t.get("minutes", 0) + t.get("seconds", 0)
        d, h, m, sec = (int(x) for x in self.max_time.split(":"))
        return 86400.0 * d + 3600.0 * h + 60.0 * m + sec


class LoggingConfig(_Section):
    """Loggers (Lightning's): TensorBoard and CSV, both in run.dir."""

    tensorboard: bool = Field(True, description="TensorBoard event files under run.dir/tb")
    csv: bool = Field(True, description="run.dir/metrics.csv")
