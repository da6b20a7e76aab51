"""DCGAN (Radford et al. 2016) and its class-conditional form (cGAN): noise (+ label) -> CT patch.

Real images are the target-domain patches of the dataset (``data.pairing: single``); labels come from
``dataset.json`` (``batch["label"]``). There is no target to compare with, so validation draws a fixed
set of latent vectors, saves them as a panel and tracks their diversity (mode-collapse monitor).
"""

from __future__ import annotations

from typing import Any

import torch

from medgan.errors import ConfigError
from medgan.nets.image_pool import ImagePool
from medgan.recipes.base import Recipe, set_requires_grad


class DCGANRecipe(Recipe):
    steps_per_iteration = 2
    monitor_diversity = True

    def build(self) -> None:
        r, patch = self.cfg.recipe, list(self.cfg.data.patch_size)
        if len(set(patch)) != 1:
            raise ConfigError(f"recipe '{r.name}' needs a square/cubic data.patch_size, got {patch}")
        if r.name == "cgan" and r.num_classes < 2:
            raise ConfigError(f"recipe 'cgan' needs recipe.num_classes >= 2, got {r.num_classes}")
        classes = r.num_classes if r.name == "cgan" else 0
        self.make_net("generator", "generator", spatial_dims=self.spatial_dims, latent_size=r.latent_size,
                      out_channels=1, img_size=patch[0], num_classes=classes)
        self.make_net("discriminator", "discriminator", spatial_dims=self.spatial_dims, in_channels=1,
                      img_size=patch[0], num_classes=classes)
        self.loss_gan = self.make_loss("gan_loss", r.gan_loss)
        self.num_classes = classes
        names = r.class_names
        if names is not None and (len(names) != classes or len(set(names)) != len(names)):
            raise ConfigError(f"recipe.class_names: got {names}, expected {classes} distinct names (recipe.num_classes)")
        self.class_names = list(names) if names else [str(i) for i in range(classes)]
        self.data_spacing: list[float] | None = None  # the training data's voxel size, read at fit start
        self.pool = ImagePool(r.pool_size, seed=self.cfg.seed) if r.pool_size else None
        # a fixed latent batch, drawn from its own generator, shows progress on the same samples every time
        g = torch.Generator().manual_seed(self.cfg.seed)
        n = self.cfg.validation.diversity.samples
        self.register_buffer("fixed_z", torch.randn(n, r.latent_size, generator=g), persistent=False)
        self.register_buffer("fixed_labels", torch.arange(n) % max(classes, 1), persistent=False)

    def optimizer_groups(self):
        return [(list(self.generator.parameters()), self.cfg.optim.lr),
                (list(self.discriminator.parameters()), self.cfg.optim.lr_d or self.cfg.optim.lr)]

    def _labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        return labels if self.num_classes else None

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z ``(B, latent_size)`` [+ labels ``(B,)``] -> images ``(B, 1, *patch)`` normalised."""
        return self.generator(z, self._labels(labels))

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real = batch["target"]
        labels = batch["label"].long().to(real.device) if self.num_classes else None
        if labels is not None and int(labels.max()) >= self.num_classes:
            raise ConfigError(f"dataset label {int(labels.max())} >= recipe.num_classes {self.num_classes}")
        z = torch.randn(len(real), self.cfg.recipe.latent_size, device=real.device)
        fake = self.sample(z, labels)

        def critic(x: torch.Tensor, x_labels: torch.Tensor | None = labels) -> torch.Tensor:
            return self.discriminator(x, x_labels) if x_labels is not None else self.discriminator(x)

        set_requires_grad(self.discriminator, False)
        loss_g_adv = self.loss_gan.g_loss(critic(fake))
        self.optimize(loss_g_adv, 0)
        set_requires_grad(self.discriminator, True)
        real_logits = critic(real)
        loss_d_real = self.loss_gan(real_logits, True)
        if self.cfg.recipe.label_smoothing:  # BCE/LSGAN are linear in the target: this is the target 1 - s
            s = self.cfg.recipe.label_smoothing
            loss_d_real = (1 - s) * loss_d_real + s * self.loss_gan(real_logits, False)
        loss_d_fake = self.loss_gan(critic(*self._pooled(fake.detach(), labels)), False)
        self.optimize(loss_d_real + loss_d_fake + self.loss_gan.penalty(critic, real, fake.detach()), 1)
        return {"loss_g_adv": loss_g_adv.detach(), "loss_d_real": loss_d_real.detach(),
                "loss_d_fake": loss_d_fake.detach()}

    def _pooled(self, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fakes for D: through the image pool when there is one (a cGAN's labels travel as a channel)."""
        if self.pool is None:
            return fake, labels
        if labels is None:
            return self.pool.query(fake), None
        label_map = labels.to(fake.dtype).reshape(-1, 1, *[1] * (fake.dim() - 2)).expand(-1, 1, *fake.shape[2:])
        mixed = self.pool.query(torch.cat([fake, label_map], dim=1))
        return mixed[:, :1], mixed[:, 1].flatten(1)[:, 0].round().long()

    def extra_state(self) -> dict[str, Any]:
        return {"pool": self.pool.state_dict()} if self.pool is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.pool is not None and "pool" in state:
            self.pool.load_state_dict(state["pool"])

    def on_fit_start(self) -> None:
        """Record the training data's voxel size (median over its volumes) for the model package."""
        dm = getattr(self.trainer, "datamodule", None)
        store = getattr(getattr(getattr(dm, "train_set", None), "target", None), "store", None)
        affines = getattr(store, "affines", None)
        if affines:
            sizes = torch.stack([torch.as_tensor(a, dtype=torch.float64)[:3, :3] for a in affines]).norm(dim=1)
            self.data_spacing = [round(float(v), 4) for v in sizes.median(dim=0).values]

    def manifest(self) -> dict[str, Any]:
        """The base manifest plus ``class_names`` (cGAN) and ``spacing_mm`` (when known) for medgan-sample."""
        manifest = super().manifest()
        if self.num_classes:
            manifest["class_names"] = list(self.class_names)
        if self.data_spacing:
            manifest["spacing_mm"] = list(self.data_spacing)
        return manifest

    def predict(self, source: torch.Tensor) -> torch.Tensor:
        z = self.fixed_z[: len(source)]
        return self.sample(z, self.fixed_labels[: len(source)])

    def on_validation_epoch_start(self) -> None:
        """Nothing to load: validation samples the fixed latent batch (there is no target to score)."""

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """At the first batch: the fixed latent batch as panel rows (a real case's centre slice as
        ``input``) and as the diversity monitor's samples."""
        if batch_idx > 0:
            return {}
        fake = self.sample(self.fixed_z, self.fixed_labels).float()
        fake_hu = self.normalizer.inverse(fake)
        real = batch["target_hu"][0]
        real_view = real[..., real.shape[-1] // 2].cpu().numpy()
        rows = [{"output": fake_hu[i].cpu().numpy(), "input": real_view}
                for i in range(min(self.cfg.validation.panels, len(fake)))]
        out = {"panel": rows, "diversity": fake.detach().cpu()}
        if self.num_classes:  # per-class coverage: the monitor also compares samples within each class
            out["diversity_labels"] = self.fixed_labels.cpu()
            out["class_names"] = list(self.class_names)
        return out
