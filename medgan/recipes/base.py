"""What every recipe shares: nets from the config, optimisers and schedules, manual optimisation with
accumulation and clipping, and the validation step.

A recipe is a ``LightningModule`` that owns its networks (attributes named by role: ``generator``,
``gen_low_to_full``, ``disc_full`` ...), its losses and its optimisers. All recipes use manual
optimisation, so GANs keep ``backward_d`` / ``backward_g`` apart, and gradient accumulation and clipping
work the same way everywhere (Lightning refuses both with manual optimisation, so :meth:`optimize`
does them). ``trainer.max_steps`` counts training iterations; each recipe declares how many optimiser
steps one iteration takes (:attr:`Recipe.steps_per_iteration`) and the engine scales Lightning's count.

Beside it (each one concept): :mod:`.schedule` (lr schedule), :mod:`.validation` (whole cases through
``medgan-infer``'s inferer), :mod:`.panels` and :mod:`.diversity` (callbacks), :mod:`.training_state`
(RNG and data epochs for exact resume), :mod:`.net_fit` (nets that do not fit the patch).

Training batches follow :class:`medgan.data.CTDataModule`: ``source``/``target`` ``(B, C, *patch)``
normalised, ``case``, ``label``, ``slice_frac``; validation batches are one whole case in HU
(``source_hu``, ``target_hu``, ``affine``).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
import torch.nn as nn

from medgan.config import ExperimentConfig, config_to_dict, validate_config
from medgan.errors import ConfigError
from medgan.package import make_manifest
from medgan.recipes.diversity import DiversityMonitor
from medgan.recipes.net_fit import build_fitting_net
from medgan.recipes.panels import PanelWriter
from medgan.recipes.schedule import LRSchedule
from medgan.recipes.training_state import TrainingState
from medgan.recipes.validation import VolumeValidator
from medgan.transforms.intensity import build_normalizer


def set_requires_grad(nets: nn.Module | list[nn.Module], flag: bool) -> None:
    """Freeze / unfreeze nets (D while G is updated), so no gradient is computed for them."""
    for net in nets if isinstance(nets, list) else [nets]:
        for p in net.parameters():
            p.requires_grad_(flag)


class Recipe(pl.LightningModule, abc.ABC):
    """Base class. Subclasses build nets in :meth:`build` and implement :meth:`train_step` (returns the
    logged losses); :meth:`predict` (source -> output, normalised) defaults to the generator.

    Args:
        config: the validated :class:`ExperimentConfig` or its plain-dict form (as stored in checkpoints).
    """

    #: optimiser steps per training iteration (``trainer.max_steps`` counts iterations)
    steps_per_iteration: ClassVar[int] = 1
    #: the role written as ``infer_net`` into the model package (a property where it depends on the config)
    infer_role: ClassVar[str] = "generator"
    #: roles stored in the model package (the nets inference can use; discriminators are left out)
    package_roles: ClassVar[tuple[str, ...]] = ("generator",)
    #: whether the diversity (mode-collapse) monitor runs unless ``validation.diversity.enabled`` says
    monitor_diversity: ClassVar[bool] = False

    def __init__(self, config: ExperimentConfig | dict[str, Any]) -> None:
        super().__init__()
        self.cfg = config if isinstance(config, ExperimentConfig) else validate_config(config)
        self.automatic_optimization = False
        self.normalizer = build_normalizer(self.cfg.data.normalization)
        self.net_configs: dict[str, dict[str, Any]] = {}
        self.spatial_dims = 3 if self.cfg.data.input_mode == "3d" else 2
        self.context = self.cfg.data.context_slices if self.cfg.data.input_mode == "2.5d" else 0
        self.source_channels = 2 * self.context + 1
        v = self.cfg.validation
        self.validator = VolumeValidator(v.hu_window(), list(self.cfg.data.patch_size), self.cfg.data.scale,
                                         v.diversity.samples)
        self.window_done = True  # whether this batch ends a gradient-accumulation window (set per batch)
        self.last_validated_step = -1
        self.build()
        self.callbacks = self.make_callbacks()  # after build(): a recipe may decide what it monitors there
        self.save_hyperparameters({"config": config_to_dict(self.cfg), "medgan_manifest": self.manifest()})

    @property
    def recipe_name(self) -> str:
        return self.cfg.recipe.name

    # -- construction ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self) -> None:
        """Create the recipe's nets, losses and pools (called once from ``__init__``)."""

    def make_net(self, role: str, key: str, check_shape: tuple[int, ...] | None = None,
                 check_output: tuple[int, ...] | None = None, **fill: Any) -> nn.Module:
        """Build ``nets.<key>`` as attribute ``role``; ``fill`` sets arguments the data layout dictates
        (``spatial_dims``, ``in_channels`` ...) when the net takes them, and refuses a conflicting value.
        With ``check_shape`` ``(1, C, *spatial)`` the net is run once on it (and must give ``check_output``
        spatial sizes, when given), so a net that does not fit the patch is a one-line config error."""
        net, self.net_configs[role] = build_fitting_net(self.cfg, key, fill, check_shape, check_output)
        self.add_module(role, net)
        return net

    def image_net(self, role: str, key: str = "generator", **extra: Any) -> nn.Module:
        """An image-to-image net ``nets.<key>``: source ``(B, C, *patch)`` -> ``(B, 1, *patch·scale)``."""
        patch, scale = list(self.cfg.data.patch_size), self.cfg.data.scale
        fill = {"spatial_dims": self.spatial_dims, "in_channels": self.source_channels, "out_channels": 1,
                "img_size": patch if len(set(patch)) > 1 else patch[0], "scale": scale, **extra}
        return self.make_net(role, key, check_shape=(1, fill["in_channels"], *patch),
                             check_output=tuple(p * scale for p in patch), **fill)

    def critic_net(self, role: str, in_channels: int, key: str = "discriminator", **extra: Any) -> nn.Module:
        """A discriminator ``nets.<key>`` that sees ``in_channels`` images of the target size."""
        size = [p * self.cfg.data.scale for p in self.cfg.data.patch_size]
        return self.make_net(role, key, check_shape=(1, in_channels, *size), spatial_dims=self.spatial_dims,
                             in_channels=in_channels, **extra)

    def make_loss(self, key: str, cfg: dict[str, Any]) -> nn.Module:
        """Build a loss from ``recipe.<key>`` (``type`` + kwargs), naming the key on error."""
        from medgan.losses import build_loss

        try:
            return build_loss(dict(cfg))
        except (KeyError, ConfigError, TypeError, ValueError) as err:
            raise ConfigError(f"recipe.{key}: {err.args[0] if err.args else err}") from None

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

    def configure_callbacks(self) -> list[pl.Callback]:
        """:attr:`callbacks`: the same instances for every ``fit`` / ``validate`` (their state carries over)."""
        return self.callbacks

    def make_callbacks(self) -> list[pl.Callback]:
        """Resume state, validation panels and (for adversarial recipes) the diversity monitor."""
        v, run = self.cfg.validation, Path(self.cfg.run.dir)
        callbacks: list[pl.Callback] = [TrainingState(), PanelWriter(run, v.panels, v.hu_window("panel_window"))]
        if self.monitor_diversity if v.diversity.enabled is None else v.diversity.enabled:
            d = v.diversity
            callbacks.append(DiversityMonitor(run, d.samples, d.warn_fraction, min_diversity=d.min_diversity,
                                              on_collapse=d.on_collapse, lr_factor=d.lr_factor))
        return callbacks

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
            schedule = LRSchedule(s.type, total, s.decay_start, s.warmup_steps, s.step_size, s.gamma)
            optimizers.append(opt)
            schedulers.append({"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule), "interval": "step"})
        return optimizers, schedulers

    def optimize(self, loss: torch.Tensor, index: int = 0) -> None:
        """Backward ``loss`` into optimiser ``index``'s params; step (clip, step, zero, lr schedule) at the
        end of each accumulation window."""
        opts, scheds = self.optimizers(), self.lr_schedulers()
        opt = opts[index] if isinstance(opts, list) else opts
        self.manual_backward(loss / self.cfg.trainer.accumulate_grad_batches)
        if self.window_done:
            if self.cfg.trainer.gradient_clip_val:
                self.clip_gradients(opt, gradient_clip_val=self.cfg.trainer.gradient_clip_val,
                                    gradient_clip_algorithm="norm")
            opt.step()
            opt.zero_grad(set_to_none=True)
            (scheds[index] if isinstance(scheds, list) else scheds).step()

    @property
    def iteration(self) -> int:
        """Training iterations done (``trainer.max_steps`` units)."""
        return self.trainer.global_step // self.steps_per_iteration if self._trainer else 0

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.window_done = (batch_idx + 1) % self.cfg.trainer.accumulate_grad_batches == 0
        losses = self.train_step(batch)
        size = len(batch["target"])
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, prog_bar=True, on_step=True,
                      on_epoch=False, batch_size=size)
        opt = self.optimizers()
        lr = (opt[0] if isinstance(opt, list) else opt).param_groups[0]["lr"]
        self.log("train/lr", lr, on_step=True, on_epoch=False, batch_size=size)

    @abc.abstractmethod
    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One iteration (all optimisers stepped); returns the losses to log by name."""

    def predict(self, source: torch.Tensor) -> torch.Tensor:
        """Source ``(B, C, *patch)`` normalised -> output ``(B, 1, *patch·scale)`` normalised."""
        return self.generator(source)

    # -- validation: whole cases through medgan-infer's inferer ----------------------------------------
    def on_validation_epoch_start(self) -> None:
        self.validator.start(self.manifest(), self.package_state_dict(), self.device)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Infer one whole case as ``medgan-infer`` would, log its scores; return the panel row and the
        crops for the diversity monitor (read by the callbacks)."""
        output_hu = self.validator.infer(batch)
        for name, value in self.validator.score(output_hu, batch).items():
            self.log(f"val/{name}", value, sync_dist=True, batch_size=1, prog_bar=name == "ssim")
        return {"panel": [self.validator.panel_row(output_hu, batch)],
                "diversity": self.validator.diversity_crops(self.normalizer.forward(output_hu))}

    def on_validation_epoch_end(self) -> None:
        self.validator.stop()
        if not self.trainer.sanity_checking:
            self.last_validated_step = self.trainer.global_step

    # -- resumable recipe state ------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Recipe state beyond weights/optimisers (image pools ...); tensors and plain types only."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["medgan_state"] = {"recipe": self.extra_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "medgan_state" in checkpoint:
            self.load_extra_state(checkpoint["medgan_state"]["recipe"])
