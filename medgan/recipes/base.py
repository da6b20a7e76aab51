"""What every recipe shares: nets from the config, optimisers and schedules, manual optimisation with
accumulation and clipping, validation in HU, panels, the diversity monitor and resumable extra state.

A recipe is a ``LightningModule`` that owns its networks (attributes named by role: ``generator``,
``gen_low_to_full``, ``disc_full`` ...), its losses and its optimisers. All recipes use manual
optimisation, so GANs keep ``backward_d`` / ``backward_g`` apart, and gradient accumulation and clipping
work the same way everywhere (Lightning refuses both with manual optimisation, so :meth:`optimize`
does them). ``trainer.max_steps`` counts training iterations; each recipe declares how many optimiser
steps one iteration takes (:attr:`Recipe.steps_per_iteration`) and the engine scales Lightning's count.

Batches follow :class:`medgan.data.CTDataModule`: ``source``/``target`` ``(B, C, *patch)`` normalised,
``case``, ``label``, ``slice_frac``.
"""

from __future__ import annotations

import abc
import inspect
import random
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn

from medgan.config import ExperimentConfig, config_to_dict, validate_config
from medgan.errors import ConfigError
from medgan.metrics import windowed_metrics
from medgan.package import make_manifest
from medgan.transforms.intensity import build_normalizer


def set_requires_grad(nets: nn.Module | list[nn.Module], flag: bool) -> None:
    """Freeze / unfreeze nets (D while G is updated), so no gradient is computed for them."""
    for net in nets if isinstance(nets, list) else [nets]:
        for p in net.parameters():
            p.requires_grad_(flag)


class _Schedule:
    """Multiplier of the base lr per optimiser step (an object, so ``LambdaLR`` checkpoints its fields)."""

    def __init__(self, kind: str, total: int, decay_start: float, warmup: int, step_size: int, gamma: float):
        self.kind, self.total, self.decay_start = kind, max(int(total), 1), decay_start
        self.warmup, self.step_size, self.gamma = warmup, step_size, gamma

    def __call__(self, step: int) -> float:
        factor = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        if self.kind == "linear_decay":  # CycleGAN: constant, then linearly to 0 at the last step
            start = int(self.decay_start * self.total)
            factor *= 1.0 - max(0, step - start) / max(self.total - start, 1)
        elif self.kind == "cosine":
            factor *= 0.5 * (1 + np.cos(np.pi * min(step, self.total) / self.total))
        elif self.kind == "step":
            factor *= self.gamma ** (step // self.step_size)
        return float(max(factor, 0.0))


class Recipe(pl.LightningModule, abc.ABC):
    """Base class. Subclasses set :attr:`recipe_name`, build nets in :meth:`build`, and implement
    :meth:`train_step` (returns the logged losses) and :meth:`predict` (source -> output, normalised).

    Args:
        config: the validated :class:`ExperimentConfig` or its plain-dict form (as stored in checkpoints).
    """

    recipe_name: ClassVar[str] = ""
    #: optimiser steps per training iteration (``trainer.max_steps`` counts iterations)
    steps_per_iteration: ClassVar[int] = 1
    #: the role written as ``infer_net`` into the model package
    infer_role: ClassVar[str] = "generator"
    #: roles stored in the model package (the nets inference can use; discriminators are left out)
    package_roles: ClassVar[tuple[str, ...]] = ("generator",)
    #: adversarial recipes get the diversity monitor by default
    generative: ClassVar[bool] = False
    #: whether validation compares the output with the target in HU
    has_val_metrics: ClassVar[bool] = True

    def __init__(self, config: ExperimentConfig | dict[str, Any]) -> None:
        super().__init__()
        self.cfg = config if isinstance(config, ExperimentConfig) else validate_config(config)
        self.automatic_optimization = False
        self.normalizer = build_normalizer(self.cfg.data.normalization)
        self.net_configs: dict[str, dict[str, Any]] = {}
        self.spatial_dims = 3 if self.cfg.data.input_mode == "3d" else 2
        self.context = self.cfg.data.context_slices if self.cfg.data.input_mode == "2.5d" else 0
        self.source_channels = 2 * self.context + 1
        self.build()
        self.diversity_history: list[tuple[int, float]] = []
        self._diversity_batch: list[torch.Tensor] = []
        self._panel_rows: list[dict[str, np.ndarray]] = []
        self.last_validated_step = -1
        self.data_epoch = 0  # the next epoch of data to draw; seeds the sampler (see on_train_epoch_start)
        self.save_hyperparameters({"config": config_to_dict(self.cfg), "medgan_manifest": self.manifest()})

    # -- construction ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self) -> None:
        """Create the recipe's nets, losses and pools (called once from ``__init__``)."""

    def make_net(self, role: str, key: str, **fill: Any) -> nn.Module:
        """Build ``nets.<key>`` as attribute ``role``; ``fill`` sets arguments the data layout dictates
        (``spatial_dims``, ``in_channels`` ...) when the net takes them, and refuses a conflicting value."""
        from medgan.nets import NETS, build_net

        cfg = dict(getattr(self.cfg.nets, key))
        try:
            factory = NETS.get(cfg["type"])
        except KeyError as err:
            raise ConfigError(f"nets.{key}.type: {err.args[0]}") from None
        params = inspect.signature(factory).parameters
        for name, value in fill.items():
            if name not in params:
                continue
            if name in cfg and cfg[name] != value:
                raise ConfigError(
                    f"nets.{key}.{name}={cfg[name]!r} does not fit the data: the recipe '{self.recipe_name}' with "
                    f"data.input_mode='{self.cfg.data.input_mode}' needs {value!r} (remove the key to let it be set)"
                )
            cfg[name] = value
        try:
            net = build_net(cfg)
        except (ConfigError, TypeError, ValueError) as err:
            raise ConfigError(f"nets.{key}: {err}") from None
        self.add_module(role, net)
        self.net_configs[role] = cfg
        return net

    def make_loss(self, key: str, cfg: dict[str, Any]) -> nn.Module:
        """Build a loss from ``recipe.<key>`` (``type`` + kwargs), naming the key on error."""
        from medgan.losses import build_loss

        try:
            return build_loss(dict(cfg))
        except (KeyError, ConfigError, TypeError, ValueError) as err:
            raise ConfigError(f"recipe.{key}: {err.args[0] if err.args else err}") from None

    def image_fill(self, in_channels: int | None = None, out_channels: int = 1) -> dict[str, Any]:
        """Arguments every image-to-image net gets from the data layout."""
        patch = list(self.cfg.data.patch_size)
        return {"spatial_dims": self.spatial_dims, "in_channels": in_channels or self.source_channels,
                "out_channels": out_channels, "img_size": patch if len(set(patch)) > 1 else patch[0]}

    def manifest(self) -> dict[str, Any]:
        """The model-package manifest (also stored in every ``.ckpt`` as ``medgan_manifest``)."""
        return make_manifest(
            recipe=self.recipe_name,
            nets={role: self.net_configs[role] for role in self.package_roles},
            infer_net=self.infer_role,
            spatial_dims=self.spatial_dims,
            normalization=self.normalizer.to_config(),
            input_mode=self.cfg.data.input_mode,
            context_slices=self.context,
            scale=self.cfg.data.scale,
            patch_size=list(self.cfg.data.patch_size),
            description=f"medgan {self.recipe_name} ({self.cfg.nets.generator['type']})",
        )

    def package_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights of :attr:`package_roles`, keyed ``<role>.<param>``."""
        return {f"{role}.{k}": v for role in self.package_roles
                for k, v in getattr(self, role).state_dict().items()}

    # -- optimisation ----------------------------------------------------------------------------------
    def optimizer_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        """``[(params, lr), ...]``, one optimiser each; default: the generator alone."""
        return [(list(self.generator.parameters()), self.cfg.optim.lr)]

    def configure_optimizers(self):
        o, s = self.cfg.optim, self.cfg.scheduler
        cls = torch.optim.AdamW if o.type == "adamw" else torch.optim.Adam
        total = s.total_steps or self.cfg.trainer.max_steps
        if total <= 0:
            total = int(self.trainer.estimated_stepping_batches) // self.cfg.trainer.accumulate_grad_batches
        optimizers, schedulers = [], []
        for params, lr in self.optimizer_groups():
            opt = cls(params, lr=lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, _Schedule(s.type, total, s.decay_start, s.warmup_steps, s.step_size, s.gamma))
            optimizers.append(opt)
            schedulers.append({"scheduler": sched, "interval": "step"})
        return optimizers, schedulers

    def _opt(self, index: int):
        opts = self.optimizers()
        return opts[index] if isinstance(opts, list) else opts

    def _sched(self, index: int):
        scheds = self.lr_schedulers()
        return scheds[index] if isinstance(scheds, list) else scheds

    def optimize(self, loss: torch.Tensor, index: int = 0) -> None:
        """Backward ``loss`` into optimiser ``index``'s params; step (clip, step, zero, lr schedule) at the
        end of each accumulation window."""
        acc = self.cfg.trainer.accumulate_grad_batches
        opt = self._opt(index)
        self.manual_backward(loss / acc)
        if self._window_done:
            if self.cfg.trainer.gradient_clip_val:
                self.clip_gradients(opt, gradient_clip_val=self.cfg.trainer.gradient_clip_val,
                                    gradient_clip_algorithm="norm")
            opt.step()
            opt.zero_grad(set_to_none=True)
            self._sched(index).step()

    @property
    def iteration(self) -> int:
        """Training iterations done (``trainer.max_steps`` units)."""
        return self.trainer.global_step // self.steps_per_iteration if self._trainer else 0

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._window_done = (batch_idx + 1) % self.cfg.trainer.accumulate_grad_batches == 0
        losses = self.train_step(batch)
        size = len(batch["target"])
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, prog_bar=True, on_step=True,
                      on_epoch=False, batch_size=size)
        self.log("train/lr", self._opt(0).param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=size)

    @abc.abstractmethod
    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One iteration (all optimisers stepped); returns the losses to log by name."""

    # -- validation ------------------------------------------------------------------------------------
    def predict(self, source: torch.Tensor) -> torch.Tensor:
        """Source ``(B, C, *patch)`` normalised -> output ``(B, 1, *patch·scale)`` normalised."""
        return self.generator(source)

    def infer(self, source: torch.Tensor) -> torch.Tensor:
        """:meth:`predict` over a whole slice / volume by MONAI's sliding window with the training patch as
        ROI (nets with a fixed input size or size divisibility need it; overlapping Gaussian-weighted tiles
        avoid seams). ``(B, C, *any)`` -> ``(B, 1, *any·scale)`` normalised."""
        from monai.inferers import sliding_window_inference

        roi = list(self.cfg.data.patch_size)
        if list(source.shape[2:]) == roi:
            return self.predict(source)
        return sliding_window_inference(source, roi_size=roi, sw_batch_size=4, predictor=self.predict,
                                        overlap=0.25, mode="gaussian", padding_mode="replicate")

    def centre_channel(self, source: torch.Tensor) -> torch.Tensor:
        """The centre slice of a 2.5D slab ``(B, 2k+1, H, W)`` -> ``(B, 1, H, W)``."""
        return source[:, self.context:self.context + 1]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        source, target = batch["source"], batch["target"]
        output = self.infer(source).float()
        out_hu = self.normalizer.inverse(output)
        target_hu = self.normalizer.inverse(target.float())
        input_hu = self.normalizer.inverse(self.centre_channel(source).float())
        if input_hu.shape[2:] != target_hu.shape[2:]:  # super-resolution: compare with the interpolated input
            mode = "trilinear" if input_hu.ndim == 5 else "bilinear"
            input_hu = F.interpolate(input_hu, size=target_hu.shape[2:], mode=mode, align_corners=False)
        window = self.cfg.validation.hu_window()
        size = len(target)
        if self.has_val_metrics:
            m, m_in = windowed_metrics(out_hu, target_hu, window), windowed_metrics(input_hu, target_hu, window)
            for name in ("psnr", "ssim", "rmse"):
                self.log(f"val/{name}", m[name].mean(), sync_dist=True, batch_size=size, prog_bar=name == "ssim")
                self.log(f"val/input_{name}", m_in[name].mean(), sync_dist=True, batch_size=size)
        if len(self._panel_rows) < self.cfg.validation.panels:
            target_view = {"target": target_hu[0].cpu().numpy()} if self.has_val_metrics else {}
            self._panel_rows.append({"input": self.normalizer.inverse(self.centre_channel(source[:1]).float())[0]
                                     .cpu().numpy(), "output": out_hu[0].cpu().numpy(), **target_view})
        if self.diversity_enabled and sum(len(x) for x in self._diversity_batch) < self.cfg.validation.diversity.samples:
            self._diversity_batch.append(self.diversity_outputs(batch, output).detach().cpu())

    def diversity_outputs(self, batch: dict[str, Any], output: torch.Tensor) -> torch.Tensor:
        """Outputs whose spread is monitored (image-to-image: the validation outputs themselves)."""
        return output

    @property
    def diversity_enabled(self) -> bool:
        flag = self.cfg.validation.diversity.enabled
        return self.generative if flag is None else flag

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.run.dir)

    def on_validation_epoch_start(self) -> None:
        self._panel_rows, self._diversity_batch = [], []

    def on_validation_epoch_end(self) -> None:
        from medgan.figures import mean_pairwise_distance, save_diversity_plot, save_panel

        step = self.iteration
        if not self.trainer.sanity_checking:
            self.last_validated_step = self.trainer.global_step
        if self._panel_rows and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            save_panel(self.run_dir / "samples" / f"val_step{step:07d}.png", self._panel_rows,
                       self.cfg.validation.hu_window("panel_window"), title=f"{self.recipe_name}, step {step}")
        samples = torch.cat(self._diversity_batch)[: self.cfg.validation.diversity.samples] if self._diversity_batch else None
        if samples is not None and len(samples) >= 2 and not self.trainer.sanity_checking:
            value = mean_pairwise_distance(samples.numpy())
            self.log("val/diversity", value, sync_dist=True)
            self.diversity_history.append((step, value))
            frac = self.cfg.validation.diversity.warn_fraction
            warning = collapse_warning(self.diversity_history, frac)
            if warning:
                rank_zero_warn(warning)
            if self.trainer.is_global_zero:
                steps, values = zip(*self.diversity_history)
                save_diversity_plot(self.run_dir / "samples" / "diversity.png", steps, values, frac)
        self._panel_rows, self._diversity_batch = [], []

    # -- data epochs -----------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        # Lightning 2.6 miscounts epochs when a step-based run resumes from an epoch-end checkpoint (it
        # runs an empty epoch first), which would hand the seeded sampler the wrong epoch. medgan counts
        # the epochs that drew batches, saves the count in the checkpoint, and seeds the sampler with it,
        # so a resumed run draws exactly the batches the uninterrupted run draws.
        for sampler in _samplers(self.trainer.train_dataloader):
            sampler.set_epoch(self.data_epoch)
        self._epoch_drew = False
        if getattr(self, "_pending_rng", None) is not None:
            # resumed: the RNG continues from the checkpoint at the epoch that draws batches, like the
            # uninterrupted run (re-applied if Lightning's empty restart epoch consumed draws)
            _restore_rng(self._pending_rng)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if not getattr(self, "_epoch_drew", True):
            self._epoch_drew = True
            self.data_epoch += 1
        self._pending_rng = None

    # -- resumable extra state -------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Recipe state beyond weights/optimisers (image pools ...); tensors and plain types only."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # every piece is a tensor or a plain type, so the checkpoint loads with weights_only=True
        np_state = np.random.get_state()
        py_state = random.getstate()
        checkpoint["medgan_state"] = {
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                          "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
                "python": {"version": py_state[0], "state": list(py_state[1]), "gauss_next": py_state[2]},
            },
            "diversity": [list(x) for x in self.diversity_history],
            "data_epoch": self.data_epoch,
            "recipe": self.extra_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("medgan_state")
        if not state:
            return
        # applied when training restarts (see on_train_epoch_start), not now: Lightning's restore path
        # draws from the global RNG (an empty epoch's DataLoader iterator) before the first batch
        self._pending_rng = state["rng"]
        _restore_rng(self._pending_rng)
        self.diversity_history = [(int(s), float(v)) for s, v in state["diversity"]]
        self.data_epoch = int(state.get("data_epoch", checkpoint.get("epoch", 0)))
        self.load_extra_state(state["recipe"])



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


def _restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    n = rng["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = rng["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def _samplers(loader: Any) -> list[Any]:
    """Every sampler with ``set_epoch`` in a loader, including the one inside Lightning's DDP wrapper."""
    found = []
    for loader_ in loader if isinstance(loader, list | tuple) else [loader]:
        for sampler in (getattr(loader_, "sampler", None), getattr(getattr(loader_, "batch_sampler", None), "sampler", None)):
            while sampler is not None:
                if hasattr(sampler, "set_epoch") and sampler not in found:
                    found.append(sampler)
                sampler = getattr(getattr(sampler, "dataset", None), "_sampler", None)
    return found
