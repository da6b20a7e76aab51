"""Parameters of each recipe, chosen by ``recipe.name``: the ``recipe:`` section of the config.

Each model is registered in :data:`medgan.config.RECIPE_PARAMS` under the names it serves; the config
imports this module through that registry on first lookup. Kept free of torch, so loading a config stays
light. A model's :meth:`~medgan.config.RecipeParams.check` holds checks that need other sections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from medgan.config import RECIPE_PARAMS, Component, RecipeParams

if TYPE_CHECKING:
    from medgan.config import ExperimentConfig


def _register(cls: type[RecipeParams]) -> type[RecipeParams]:
    """Register ``cls`` under every name of its ``name: Literal[...]``."""
    from typing import get_args

    for name in get_args(cls.model_fields["name"].annotation):
        RECIPE_PARAMS.register(name)(cls)
    return cls




@_register
class DAERecipe(RecipeParams):
    """Denoising / plain autoencoders (``ae_*``, ``dae`` nets): reconstruct the target from the source."""

    name: Literal["dae"]
    loss: Component = Field({"type": "l2"}, description="reconstruction loss")
    noise_std: float = Field(0.0, ge=0, description="Gaussian noise added to the input (normalised units)")
    sparsity_weight: float = Field(0.0, ge=0, description="weight of the sparsity loss on net.last_code")
    sparsity: Component = Field({"type": "sparsity"}, description="sparsity loss config")


@_register
class VAERecipe(RecipeParams):
    """Variational autoencoder (``vae`` net): reconstruction + beta x KL, e.g. for anomaly detection."""

    name: Literal["vae"]
    loss: Component = Field({"type": "l2"}, description="reconstruction loss")
    kl_weight: float = Field(1e-3, ge=0, description="beta of the KL term")
    kl_warmup_steps: int = Field(0, ge=0, description="KL weight ramps linearly from 0 over these steps")


@_register
class RedCNNRecipe(RecipeParams):
    """Supervised denoiser (RED-CNN and any image-to-image net): pixel loss source -> target."""

    name: Literal["redcnn"]
    loss: Component = Field({"type": "l2"}, description="pixel loss (MSE in the RED-CNN paper)")


@_register
class Pix2PixRecipe(RecipeParams):
    """Pix2Pix (Isola et al. 2017): paired translation, D sees (input, output) pairs, GAN + lambda_l1 x L1."""

    needs: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    name: Literal["pix2pix"]
    gan_loss: Component = Field({"type": "vanilla"}, description="adversarial loss")
    lambda_l1: float = Field(100.0, ge=0, description="weight of the L1 term")


@_register
class CycleGANRecipe(RecipeParams):
    """CycleGAN (Zhu et al. 2017): unpaired low <-> full dose, two G, two D, cycle + identity, image pool."""

    needs: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    name: Literal["cyclegan"]
    gan_loss: Component = Field({"type": "lsgan"}, description="adversarial loss")
    lambda_cycle: float = Field(10.0, ge=0, description="cycle weight, each direction")
    lambda_identity: float = Field(0.5, ge=0, description="identity weight as a fraction of lambda_cycle")
    pool_size: int = Field(50, ge=0, description="generated images kept per domain for D (0: no pool)")
    cycle_criterion: Literal["l1", "l2", "charbonnier"] = Field(
        "l1", description="pixel criterion of the cycle and identity losses (l1 in the reference)")
    lambda_lowfreq: float = Field(
        0.0, ge=0, description="weight of L1 between Gaussian-blurred input and output, each generator (0: off)")
    lowfreq_sigma: float = Field(2.0, gt=0, description="std of that Gaussian blur, in pixels")
    disc_highpass_sigma: float = Field(
        0.0, ge=0, description="discriminators see x - blur(x) with this Gaussian std in pixels (0: the image)")
    adversarial_warmup: int = Field(
        0, ge=0, description="iterations that train only D before G's adversarial term ramps in over as many")
    lambda_noise: float = Field(
        0.0, ge=0, description="weight of the noise-level term: each generator's output has the other pile's "
        "soft-tissue noise sigma (squared log ratio; 0: off)")
    noise_window: int = Field(5, ge=3, description="window side (pixels) of that noise sigma")
    cycle_lowpass: bool = Field(
        False, description="compare the low -> full -> low cycle after the lowfreq_sigma blur: removed noise "
        "cannot come back, so a full-resolution cycle asks G to hide it")

    def check(self, cfg: ExperimentConfig) -> None:
        super().check(cfg)
        if cfg.data.pairing == "single":
            raise ValueError("recipe 'cyclegan' needs data.pairing 'unpaired' or 'paired', got 'single'")


@_register
class SRGANRecipe(RecipeParams):
    """SRGAN (Ledig et al. 2017): SRResNet pre-training, then pixel + D-feature content + adversarial; EMA of G."""

    needs: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    name: Literal["srgan"]
    pretrain_steps: int = Field(1000, ge=0, description="SRResNet phase: pixel loss only")
    pixel_loss: Component = Field({"type": "l1"}, description="pixel loss")
    pixel_weight: float = Field(1.0, ge=0, description="pixel weight in the adversarial phase")
    gan_loss: Component = Field({"type": "vanilla"}, description="adversarial loss")
    adv_weight: float = Field(1e-3, ge=0, description="adversarial weight (Ledig et al.)")
    feature_weight: float = Field(1.0, ge=0, description="content loss on D features (no download needed)")
    ema_decay: float | None = Field(0.999, gt=0, lt=1, description="EMA of G (None: off)")

    def check(self, cfg: ExperimentConfig) -> None:
        super().check(cfg)
        up = cfg.nets.generator.get("scale")
        if isinstance(up, list):  # per-axis factors: in-plane ones are data.scale, through-plane may differ
            if cfg.data.input_mode != "3d" and len(up) != 2:
                raise ValueError(f"nets.generator.scale={up}: a '{cfg.data.input_mode}' net takes 2 factors; "
                                 "through-plane factors need data.input_mode '3d'")
            if any(f != cfg.data.scale for f in up[:2]) or max(up) < 2:
                raise ValueError(f"nets.generator.scale={up}: the in-plane factors must equal data.scale="
                                 f"{cfg.data.scale} and one factor must be >= 2 (e.g. [1, 1, 4] with data.scale 1 "
                                 "for thick -> thin slices, [2, 2, 1] for in-plane x2 of volumes)")
        elif cfg.data.scale < 2:
            raise ValueError(f"recipe 'srgan' needs data.scale >= 2 (or nets.generator.scale per axis, e.g. "
                             f"[1, 1, 4] for thick -> thin slices), got {cfg.data.scale}")


@_register
class DCGANRecipe(RecipeParams):
    """Noise -> image (``dcgan``) or class-conditional (``cgan``: label from dataset.json)."""

    needs: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    name: Literal["dcgan", "cgan"]
    latent_size: int = Field(100, ge=1, description="length of z")
    num_classes: int = Field(0, ge=0, description="cgan: number of labels")
    gan_loss: Component = Field({"type": "vanilla"}, description="adversarial loss")
    class_names: list[str] | None = Field(
        None, description="cgan: one name per label, in label order; stored in the model package (medgan-sample --class)")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5,
                                   description="one-sided label smoothing: D's target for real images is 1 - this")
    pool_size: int = Field(0, ge=0, description="past fakes kept for D (image pool; 0: off); cgan pools labels too")
