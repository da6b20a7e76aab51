"""Pix2Pix (Isola et al. 2017): paired image translation with a conditional PatchGAN.

D sees the (input, output) pair concatenated on channels; G minimises the adversarial loss plus
``lambda_l1`` (100) x L1 to the target. No image pool (the reference uses none for Pix2Pix).
"""

from __future__ import annotations

from typing import Any

import torch

from medgan.recipes.base import Recipe, set_requires_grad


class Pix2PixRecipe(Recipe):
    steps_per_iteration = 2
    monitor_diversity = True

    def build(self) -> None:
        self.image_net("generator")
        self.critic_net("discriminator", in_channels=self.source_channels + 1)
        self.loss_gan = self.make_loss("gan_loss", self.cfg.recipe.gan_loss)
        self.loss_l1 = self.make_loss("lambda_l1", {"type": "l1", "weight": self.cfg.recipe.lambda_l1})

    def optimizer_groups(self):
        return [(list(self.generator.parameters()), self.cfg.optim.lr),
                (list(self.discriminator.parameters()), self.cfg.optim.lr_d or self.cfg.optim.lr)]

    def backward_g(self, real_low: torch.Tensor, fake_full: torch.Tensor, real_full: torch.Tensor) -> dict[str, torch.Tensor]:
        set_requires_grad(self.discriminator, False)
        loss_g_adv = self.loss_gan.g_loss(self.discriminator(torch.cat([real_low, fake_full], 1)))
        loss_g_l1 = self.loss_l1(fake_full, real_full)
        self.optimize(loss_g_adv + loss_g_l1, 0)
        set_requires_grad(self.discriminator, True)
        return {"loss_g_adv": loss_g_adv.detach(), "loss_g_l1": loss_g_l1.detach()}

    def backward_d(self, real_low: torch.Tensor, fake_full: torch.Tensor, real_full: torch.Tensor) -> dict[str, torch.Tensor]:
        real_pair, fake_pair = torch.cat([real_low, real_full], 1), torch.cat([real_low, fake_full.detach()], 1)
        loss_d_real = self.loss_gan(self.discriminator(real_pair), True)
        loss_d_fake = self.loss_gan(self.discriminator(fake_pair), False)
        penalty = self.loss_gan.penalty(self.discriminator, real_pair, fake_pair)
        # the reference halves D's loss so D learns slower than G
        self.optimize(0.5 * (loss_d_real + loss_d_fake) + penalty, 1)
        return {"loss_d_real": loss_d_real.detach(), "loss_d_fake": loss_d_fake.detach()}

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real_low, real_full = batch["source"], batch["target"]
        fake_full = self.generator(real_low)
        losses = self.backward_g(real_low, fake_full, real_full)
        losses.update(self.backward_d(real_low, fake_full, real_full))
        return losses
