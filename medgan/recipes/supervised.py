"""Reconstruction recipes with one net and one optimiser: ``dae`` (plain / sparse / denoising
autoencoders), ``vae`` and ``redcnn`` (supervised denoiser: RED-CNN or any image-to-image net)."""

from __future__ import annotations

from typing import Any

import torch

from medgan.recipes.base import Recipe


class DAERecipe(Recipe):
    """Autoencoder trained to give the target from the (optionally noise-corrupted) source.

    With ``data.pairing: paired`` this is a denoising AE (low-dose in, full-dose out); with ``single`` the
    source is the target itself, i.e. a plain / sparse AE of normal anatomy for anomaly detection.
    ``recipe.noise_std`` adds Gaussian noise to the input (Vincent et al. 2008); ``recipe.sparsity_weight``
    adds the sparsity loss on the net's ``last_code`` (``ae_sparse``).
    """

    def build(self) -> None:
        self.image_net("generator")
        self.loss_pix = self.make_loss("loss", self.cfg.recipe.loss)
        self.loss_sparse = (self.make_loss("sparsity", {**self.cfg.recipe.sparsity, "weight": self.cfg.recipe.sparsity_weight})
                            if self.cfg.recipe.sparsity_weight > 0 else None)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real_in, real_target = batch["source"], batch["target"]
        if self.cfg.recipe.noise_std > 0:
            real_in = real_in + self.cfg.recipe.noise_std * torch.randn_like(real_in)
        rec = self.generator(real_in)
        losses = {"loss_pix": self.loss_pix(rec, real_target)}
        if self.loss_sparse is not None:
            code = getattr(self.generator, "last_code", None)
            if code is None:
                from medgan.errors import ConfigError

                raise ConfigError(f"recipe.sparsity_weight > 0 needs a net exposing 'last_code' (e.g. ae_sparse), "
                                  f"got nets.generator.type '{self.cfg.nets.generator['type']}'")
            losses["loss_sparsity"] = self.loss_sparse(code)
        total = sum(losses.values())
        self.optimize(total)
        return {**losses, "loss": total.detach()}


class VAERecipe(Recipe):
    """Variational autoencoder: reconstruction + beta x KL (linear warm-up of beta over kl_warmup_steps)."""

    def build(self) -> None:
        self.image_net("generator")
        self.loss_pix = self.make_loss("loss", self.cfg.recipe.loss)
        self.loss_kl = self.make_loss("kl_weight", {"type": "kl"})

    def kl_weight(self) -> float:
        r = self.cfg.recipe
        ramp = min(1.0, (self.iteration + 1) / r.kl_warmup_steps) if r.kl_warmup_steps else 1.0
        return r.kl_weight * ramp

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        rec, mu, logvar = self.generator(batch["source"])
        loss_pix = self.loss_pix(rec, batch["target"])
        loss_kl = self.loss_kl(mu, logvar)
        total = loss_pix + self.kl_weight() * loss_kl
        self.optimize(total)
        return {"loss_pix": loss_pix.detach(), "loss_kl": loss_kl.detach(), "loss": total.detach()}

    def predict(self, source: torch.Tensor) -> torch.Tensor:
        return self.generator(source)[0]


class RedCNNRecipe(Recipe):
    """Supervised low-dose -> full-dose denoiser with a pixel loss (MSE for RED-CNN, Chen et al. 2017)."""

    def build(self) -> None:
        self.image_net("generator")
        self.loss_pix = self.make_loss("loss", self.cfg.recipe.loss)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        loss = self.loss_pix(self.generator(batch["source"]), batch["target"])
        self.optimize(loss)
        return {"loss_pix": loss.detach()}
