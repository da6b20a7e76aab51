"""CycleGAN (Zhu et al. 2017): unpaired low-dose <-> full-dose translation.

Two generators (``gen_low_to_full``, ``gen_full_to_low``), two PatchGAN discriminators (``disc_full``,
``disc_low``), least-squares GAN loss, cycle loss ``lambda_cycle`` (10) each way, identity loss
``lambda_identity`` x ``lambda_cycle`` (0.5 x 10), and an image pool of the last 50 fakes per domain
feeding D. Inference runs ``gen_low_to_full``. Works on 2D slices and 3D patches (2.5D slabs are refused:
the backward cycle would have to invent the neighbouring slices).

For CT (docs/training.md, "paired or unpaired?"): ``recipe.cycle_criterion`` ``l2`` instead of the
reference's L1 - L1 charges the many small edits of noise removal as much as a few large edits of anatomy,
so it favours moving edges over removing noise; ``recipe.lambda_lowfreq`` adds an L1 between the
Gaussian-blurred input and output of each generator, which needs no pairs and leaves the noise scale free
while holding the anatomy scale in place. Validation logs label-free measures beside the paired metrics
(:mod:`medgan.recipes.label_free`), and ``validation.monitor: unpaired_gain_db`` selects the best
checkpoint without a target.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

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
        crit = r.cycle_criterion
        self.loss_cycle = self.make_loss("lambda_cycle", {"type": "cycle", "weight": r.lambda_cycle, "criterion": crit})
        self.loss_idt = self.make_loss("lambda_identity", {"type": "identity", "criterion": crit,
                                                           "weight": r.lambda_cycle * r.lambda_identity})
        self.blur = None
        if r.lambda_lowfreq > 0 or r.cycle_lowpass:
            from monai.networks.layers import GaussianFilter

            self.blur = GaussianFilter(self.spatial_dims, r.lowfreq_sigma)
        self.highpass = None
        if r.disc_highpass_sigma > 0:
            from monai.networks.layers import GaussianFilter

            self.highpass = GaussianFilter(self.spatial_dims, r.disc_highpass_sigma)
        self.backward_predictor: Any = None
        # running soft-tissue noise sigma (HU) of each pile: the level the other generator's output should have
        # (full-dose pile, low-dose pile) x label_free.NOISE_CLASSES_HU; resumable state
        self.noise_target_hu = torch.full((2, 1), float("nan"))
        # each pool has its own seeded generator so resuming replays the same choices
        self.pool_full = ImagePool(r.pool_size, seed=self.cfg.seed * 2 + 1)
        self.pool_low = ImagePool(r.pool_size, seed=self.cfg.seed * 2 + 2)

    def predict(self, source: torch.Tensor) -> torch.Tensor:
        return self.gen_low_to_full(source)

    def adversarial_weight(self) -> float:
        """0 for the first ``recipe.adversarial_warmup`` iterations, then a linear ramp to 1 over as many.

        The residual generators start as the identity and every other loss is zero there, so during the
        warm-up they do not move at all while the discriminators learn what separates the doses; a random
        discriminator's gradient would otherwise steer the generators (Adam takes full-size steps from the
        first gradient, however small)."""
        warmup = self.cfg.recipe.adversarial_warmup
        return 1.0 if warmup == 0 else min(1.0, max(0.0, (self.iteration - warmup) / warmup))

    def disc_view(self, image: torch.Tensor) -> torch.Tensor:
        """What the discriminators see: the image, or its high-pass part ``x - blur(x)``
        (``recipe.disc_highpass_sigma``), so they judge noise texture and fine detail, not anatomy."""
        return image if self.highpass is None else image - self.highpass(image)

    def _noise_term(self, output: torch.Tensor, source: torch.Tensor, real_other: torch.Tensor,
                    index: int) -> torch.Tensor | None:
        """Sum over the tissue classes of :data:`~medgan.recipes.label_free.NOISE_CLASSES_HU` (soft tissue)
        of the squared log ratio (both plus :data:`~medgan.recipes.label_free.NOISE_FLOOR_HU`) of the output's noise sigma (windows chosen on its source) to the
        running sigma of the other pile in that class (updated from ``real_other``; momentum 0.9); ``None``
        when no class is in both."""
        from medgan.recipes.label_free import NOISE_CLASSES_HU, NOISE_FLOOR_HU, class_noise

        hu = self.normalizer.inverse
        w = self.cfg.recipe.noise_window
        terms = []
        for k, hu_range in enumerate(NOISE_CLASSES_HU):
            with torch.no_grad():
                other = class_noise(hu(real_other), hu(real_other), hu_range, w)
            old = float(self.noise_target_hu[index, k])
            if other is not None:
                self.noise_target_hu[index, k] = float(other) if math.isnan(old) else 0.9 * old + 0.1 * float(other)
            target = float(self.noise_target_hu[index, k])
            sigma = class_noise(hu(output), hu(source), hu_range, w)
            if sigma is not None and not math.isnan(target):
                terms.append(((sigma + NOISE_FLOOR_HU).log() - math.log(target + NOISE_FLOOR_HU)) ** 2)
        return sum(terms) if terms else None

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
            "loss_g_adv": self.adversarial_weight() * (self.loss_gan.g_loss(self.disc_full(self.disc_view(fake_full)))
                                                       + self.loss_gan.g_loss(self.disc_low(self.disc_view(fake_low)))),
            "loss_cycle": self.loss_cycle(*self._cycle_view(rec_low, real_low)) + self.loss_cycle(rec_full, real_full),
        }
        if self.cfg.recipe.lambda_identity > 0:
            losses["loss_identity"] = (self.loss_idt(self.gen_low_to_full(real_full), real_full)
                                       + self.loss_idt(self.gen_full_to_low(real_low), real_low))
        if self.cfg.recipe.lambda_lowfreq > 0:
            losses["loss_lowfreq"] = self.cfg.recipe.lambda_lowfreq * (
                F.l1_loss(self.blur(fake_full), self.blur(real_low)) + F.l1_loss(self.blur(fake_low), self.blur(real_full)))
        if self.cfg.recipe.lambda_noise > 0:
            terms = [t for t in (self._noise_term(fake_full, real_low, real_full, 0),
                                 self._noise_term(fake_low, real_full, real_low, 1)) if t is not None]
            if terms:
                losses["loss_noise"] = self.cfg.recipe.lambda_noise * sum(terms)
        self.optimize(sum(losses.values()), 0)
        set_requires_grad([self.disc_full, self.disc_low], True)
        logged = {k: v.detach() for k, v in losses.items()}
        # how far G has left the identity, in HU: the first thing to look at when it "does nothing"
        logged["residual_hu"] = (fake_full - real_low).detach().std() / self.normalizer.scale
        return logged, fake_full.detach(), fake_low.detach()

    def _cycle_view(self, rec_low: torch.Tensor, real_low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The low -> full -> low cycle pair as compared: both blurred with ``recipe.cycle_lowpass`` (the noise
        G removed is gone, and asking F to restore it would teach G to hide it in its output: Chu et al. 2017,
        "CycleGAN, a master of steganography"), else as they are."""
        return (self.blur(rec_low), self.blur(real_low)) if self.cfg.recipe.cycle_lowpass else (rec_low, real_low)

    def _d_loss(self, disc: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        real, fake = self.disc_view(real), self.disc_view(fake)
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

    # -- validation: the paired metrics of the base, plus what needs no target --------------------------
    def on_validation_epoch_start(self) -> None:
        from medgan.inference.predictor import Predictor

        super().on_validation_epoch_start()
        state = {k: v.detach() for k, v in self.package_state_dict().items()}
        dev = self.device if self.device.type in ("cpu", "cuda") else torch.device("cpu")
        with torch.random.fork_rng(devices=[]):  # as the validator: training's RNG stream stays untouched
            self.backward_predictor = Predictor(({**self.manifest(), "infer_net": "gen_full_to_low"}, state), device=dev)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.backward_predictor = None

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Paired scores (when the case has a target), label-free scores and the cycle error of one case."""
        from monai.data import MetaTensor

        from medgan.recipes.label_free import cycle_error_hu, label_free_scores

        output_hu = self.validator.infer(batch)
        source_hu = batch["source_hu"][0].detach().cpu().float()
        scores = self.validator.score(output_hu, batch) if batch.get("target_hu") is not None else {}
        affine = batch["affine"][0].detach().cpu()
        pixel_mm = float(affine[:3, :2].double().norm(dim=0).mean())
        scores.update(label_free_scores(output_hu, source_hu, self.cfg.recipe.lowfreq_sigma, pixel_mm))
        with torch.random.fork_rng(devices=[]):
            rec = self.backward_predictor.predict(MetaTensor(output_hu, affine=affine))
        scores["cycle_hu"] = cycle_error_hu(rec.as_tensor(), source_hu)
        for name, value in scores.items():
            self.log(f"val/{name}", value, sync_dist=True, batch_size=1, prog_bar=name == "ssim")
        return {"panel": [self.validator.panel_row(output_hu, batch, batch.get("target_hu") is not None)],
                "diversity": self.validator.diversity_crops(self.normalizer.forward(output_hu))}

    def extra_state(self) -> dict[str, Any]:
        return {"pool_full": self.pool_full.state_dict(), "pool_low": self.pool_low.state_dict(),
                "noise_target_hu": self.noise_target_hu.clone()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_full.load_state_dict(state["pool_full"])
        self.pool_low.load_state_dict(state["pool_low"])
        if "noise_target_hu" in state:  # absent from checkpoints written before the noise term
            self.noise_target_hu = state["noise_target_hu"].clone().cpu()
