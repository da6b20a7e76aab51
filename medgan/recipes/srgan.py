"""SRGAN (Ledig et al. 2017) with BasicSR's EMA of G.

Phase 1 (``pretrain_steps`` iterations): SRResNet, pixel loss only. Phase 2: pixel loss
(``pixel_weight``) + content loss on D's features (``feature_weight``; needs no downloaded VGG) +
``adv_weight`` (1e-3) x adversarial. D is trained from the start, so it is not a random critic when
phase 2 begins, and every iteration takes the same two optimiser steps. Inference (the model package)
uses the EMA copy of G when ``ema_decay`` is set: it is the net ``generator_ema`` of the manifest, in the
package and in every ``.ckpt`` alike.

``adv_weight: 0`` and ``feature_weight: 0`` make it plain supervised SRResNet (the recommended CPU setting,
``configs/sr.yaml``): D is then not trained (nor packaged), and an iteration is one optimiser step.
"""

from __future__ import annotations

from typing import Any

import torch

from medgan.errors import ConfigError
from medgan.recipes.base import Recipe, set_requires_grad


class SRGANRecipe(Recipe):
    @property
    def supervised(self) -> bool:
        """No adversary: pixel loss only (SRResNet)."""
        r = self.cfg.recipe
        return r.adv_weight == 0 and r.feature_weight == 0

    @property
    def steps_per_iteration(self) -> int:  # type: ignore[override]
        return 1 if self.supervised else 2  # G and D steps with the adversary, one step without

    @property
    def monitor_diversity(self) -> bool:  # type: ignore[override]
        return not self.supervised  # nothing adversarial to monitor without D

    @property
    def infer_role(self) -> str:  # type: ignore[override]
        return "generator_ema" if self.cfg.recipe.ema_decay else "generator"

    @property
    def package_roles(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.infer_role,)

    def build(self) -> None:
        from medgan.nets import EMA

        up = self.cfg.nets.generator.get("scale")
        if isinstance(up, list):  # per-axis factors (3D thick -> thin): in-plane ones must be data.scale
            self._per_axis_generator(up)
        else:
            self.image_net("generator", scale=self.cfg.data.scale)
            self.critic_net("discriminator", in_channels=1)
        r = self.cfg.recipe
        self.loss_pix = self.make_loss("pixel_loss", r.pixel_loss)
        self.loss_gan = self.make_loss("gan_loss", r.gan_loss)
        self.loss_feat = self.make_loss("feature_weight", {"type": "feature_matching"})
        # kept outside the module tree (object.__setattr__): only its averaged copy is registered, below
        object.__setattr__(self, "_ema", EMA(self.generator, r.ema_decay) if r.ema_decay else None)
        if self._ema is not None:
            # the averaged copy itself is the registered net, so its weights are stored as
            # ``generator_ema.<param>`` like any package net (the AveragedModel wrapper would add ``module.``)
            self.add_module("generator_ema", self._ema.module)
            self.net_configs["generator_ema"] = dict(self.net_configs["generator"])

    def _per_axis_generator(self, factors: list[int]) -> None:
        """G with one factor per axis (``[1, 1, 4]``, ``[2, 2, 1]`` ...) and D on its target patch."""
        scale, patch = self.cfg.data.scale, list(self.cfg.data.patch_size)
        if len(factors) != len(patch) or any(f != scale for f in factors[:2]):
            raise ConfigError(f"nets.generator.scale={factors}: needs {len(patch)} factors, the in-plane ones equal "
                              f"to data.scale={scale} (e.g. [{scale}, {scale}, 4] for thick -> thin slices)")
        fill = {"spatial_dims": self.spatial_dims, "in_channels": self.source_channels, "out_channels": 1}
        target = tuple(p * f for p, f in zip(patch, factors))
        self.make_net("generator", "generator", check_shape=(1, self.source_channels, *patch),
                      check_output=target, **fill)
        # D sees the target patch, whose through-plane size is not patch x data.scale here
        self.make_net("discriminator", "discriminator", check_shape=(1, 1, *target), spatial_dims=self.spatial_dims,
                      in_channels=1)

    def optimizer_groups(self):
        groups = [(list(self.generator.parameters()), self.cfg.optim.lr)]
        if not self.supervised:
            groups.append((list(self.discriminator.parameters()), self.cfg.optim.lr_d or self.cfg.optim.lr))
        return groups

    def predict(self, source: torch.Tensor) -> torch.Tensor:
        return (self.generator_ema if self._ema is not None else self.generator)(source)

    def extra_state(self) -> dict[str, Any]:
        # the EMA's update count lives on the unregistered wrapper (0 means "copy on the next update")
        return {"ema_updates": int(self._ema.n_averaged) if self._ema is not None else 0}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self._ema is not None:
            self._ema.n_averaged.fill_(int(state.get("ema_updates", 0)))

    def backward_g(self, real_low: torch.Tensor, real_high: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        r = self.cfg.recipe
        fake_high = self.generator(real_low)
        loss_pix = self.loss_pix(fake_high, real_high)
        losses = {"loss_g_pix": loss_pix}
        if self.iteration >= r.pretrain_steps and not self.supervised:
            set_requires_grad(self.discriminator, False)
            logits_fake, feats_fake = self.discriminator(fake_high, return_features=True)
            with torch.no_grad():
                _, feats_real = self.discriminator(real_high, return_features=True)
            losses["loss_g_pix"] = r.pixel_weight * loss_pix
            losses["loss_g_feat"] = r.feature_weight * self.loss_feat(feats_fake, feats_real)
            losses["loss_g_adv"] = r.adv_weight * self.loss_gan.g_loss(logits_fake)
            set_requires_grad(self.discriminator, True)
        self.optimize(sum(losses.values()), 0)
        if self._ema is not None and self.window_done:
            self._ema.update(self.generator)
        return {k: v.detach() for k, v in losses.items()}, fake_high.detach()

    def backward_d(self, real_high: torch.Tensor, fake_high: torch.Tensor) -> dict[str, torch.Tensor]:
        loss_d_real = self.loss_gan(self.discriminator(real_high), True)
        loss_d_fake = self.loss_gan(self.discriminator(fake_high), False)
        penalty = self.loss_gan.penalty(self.discriminator, real_high, fake_high)
        self.optimize(loss_d_real + loss_d_fake + penalty, 1)
        return {"loss_d_real": loss_d_real.detach(), "loss_d_fake": loss_d_fake.detach()}

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real_low, real_high = batch["source"], batch["target"]
        losses, fake_high = self.backward_g(real_low, real_high)
        if not self.supervised:
            losses.update(self.backward_d(real_high, fake_high))
        return losses
