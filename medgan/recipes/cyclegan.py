"""CycleGAN (Zhu et al. 2017): unpaired low-dose <-> full-dose translation.

Two generators (``gen_low_to_full``, ``gen_full_to_low``), two PatchGAN discriminators (``disc_full``,
``disc_low``), least-squares GAN loss, cycle loss ``lambda_cycle`` (10) each way, identity loss
``lambda_identity`` x ``lambda_cycle`` (0.5 x 10), and an image pool of the last 50 fakes per domain
feeding D. Inference runs ``gen_low_to_full``. Works on 2D slices and 3D patches (2.5D slabs are refused:
the backward cycle would have to invent the neighbouring slices).
"""

from __future__ import annotations

from typing import Any

import torch

from medgan.errors import ConfigError
from medgan.recipes.base import Recipe, set_requires_grad


class CycleGANRecipe(Recipe):
    steps_per_iteration = 2  # one optimiser for both generators, one for both discriminators (as the reference)
    infer_role = "gen_low_to_full"
    package_roles = ("gen_low_to_full", "gen_full_to_low")
    monitor_diversity = True

    def build(self) -> None:
        from medgan.nets import ImagePool

        if self.cfg.data.input_mode == "2.5d":
            raise ConfigError("recipe 'cyclegan' supports data.input_mode '2d' or '3d', got '2.5d'")
        self.image_net("gen_low_to_full")
        self.image_net("gen_full_to_low")
        self.critic_net("disc_full", in_channels=1)
        self.critic_net("disc_low", in_channels=1)
        r = self.cfg.recipe
        self.loss_gan = self.make_loss("gan_loss", r.gan_loss)
        self.loss_cycle = self.make_loss("lambda_cycle", {"type": "cycle", "weight": r.lambda_cycle})
        self.loss_idt = self.make_loss("lambda_identity", {"type": "identity", "weight": r.lambda_cycle * r.lambda_identity})
        # each pool has its own seeded generator so resuming replays the same choices
        self.pool_full = ImagePool(r.pool_size, seed=self.cfg.seed * 2 + 1)
        self.pool_low = ImagePool(r.pool_size, seed=self.cfg.seed * 2 + 2)

    def predict(self, source: torch.Tensor) -> torch.Tensor:
        return self.gen_low_to_full(source)

    def optimizer_groups(self):
        gens = [*self.gen_low_to_full.parameters(), *self.gen_full_to_low.parameters()]
        discs = [*self.disc_full.parameters(), *self.disc_low.parameters()]
        return [(gens, self.cfg.optim.lr), (discs, self.cfg.optim.lr_d or self.cfg.optim.lr)]

    def backward_g(self, real_low: torch.Tensor, real_full: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        set_requires_grad([self.disc_full, self.disc_low], False)
        fake_full = self.gen_low_to_full(real_low)
        fake_low = self.gen_full_to_low(real_full)
        rec_low = self.gen_full_to_low(fake_full)
        rec_full = self.gen_low_to_full(fake_low)
        losses = {
            "loss_g_adv": self.loss_gan.g_loss(self.disc_full(fake_full)) + self.loss_gan.g_loss(self.disc_low(fake_low)),
            "loss_cycle": self.loss_cycle(rec_low, real_low) + self.loss_cycle(rec_full, real_full),
        }
        if self.cfg.recipe.lambda_identity > 0:
            losses["loss_identity"] = (self.loss_idt(self.gen_low_to_full(real_full), real_full)
                                       + self.loss_idt(self.gen_full_to_low(real_low), real_low))
        self.optimize(sum(losses.values()), 0)
        set_requires_grad([self.disc_full, self.disc_low], True)
        return {k: v.detach() for k, v in losses.items()}, fake_full.detach(), fake_low.detach()

    def _d_loss(self, disc: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss_real = self.loss_gan(disc(real), True)
        loss_fake = self.loss_gan(disc(fake), False)
        return loss_real, loss_fake + self.loss_gan.penalty(disc, real, fake)

    def backward_d(self, real_low: torch.Tensor, real_full: torch.Tensor, fake_full: torch.Tensor,
                   fake_low: torch.Tensor) -> dict[str, torch.Tensor]:
        full_real, full_fake = self._d_loss(self.disc_full, real_full, self.pool_full.query(fake_full))
        low_real, low_fake = self._d_loss(self.disc_low, real_low, self.pool_low.query(fake_low))
        # halved as in the reference, so D learns slower than G
        self.optimize(0.5 * (full_real + full_fake + low_real + low_fake), 1)
        return {"loss_d_real": (full_real + low_real).detach(), "loss_d_fake": (full_fake + low_fake).detach()}

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real_low, real_full = batch["source"], batch["target"]
        losses, fake_full, fake_low = self.backward_g(real_low, real_full)
        losses.update(self.backward_d(real_low, real_full, fake_full, fake_low))
        return losses

    def extra_state(self) -> dict[str, Any]:
        return {"pool_full": self.pool_full.state_dict(), "pool_low": self.pool_low.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_full.load_state_dict(state["pool_full"])
        self.pool_low.load_state_dict(state["pool_low"])
