"""Parameters of each recipe, chosen by ``recipe.name`` (part of the config schema, :mod:`medgan.config`).

Kept beside the recipes and free of torch, so loading a config stays light.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


def check_component(value: dict[str, Any]) -> dict[str, Any]:
    """A net/loss config must name its registered ``type``."""
    if not isinstance(value.get("type"), str) or not value["type"]:
        raise ValueError(f"needs a 'type' naming a registered component, got keys {sorted(value)}")
    return value


#: ``type:`` + keyword arguments of a registered net or loss (MONAI argument names).
Component = Annotated[dict[str, Any], Field(json_schema_extra={"medgan_component": True})]


class _Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    #: nets the recipe needs from ``nets:``
    needs: ClassVar[tuple[str, ...]] = ("generator",)


class DAERecipe(_Recipe):
    """Denoising / plain autoencoders (``ae_*``, ``dae`` nets): reconstruct the target from the source."""

    name: Literal["dae"]
    loss: Component = Field({"type": "l2"}, description="reconstruction loss")
    noise_std: float = Field(0.0, ge=0, description="Gaussian noise added to the input (normalised units)")
    sparsity_weight: float = Field(0.0, ge=0, description="weight of the sparsity loss on net.last_code")
    sparsity: Component = Field({"type": "sparsity"}, description="sparsity loss config")


class VAERecipe(_Recipe):
    """Variational autoencoder (``vae`` net): reconstruction + beta x KL, e.g. for anomaly detection."""

    name: Literal["vae"]
    loss: Component = Field({"type": "l2"}, description="reconstruction loss")
    kl_weight: float = Field(1e-3, ge=0, description="beta of the KL term")
    kl_warmup_steps: int = Field(0, ge=0, description="KL weight ramps linearly from 0 over these steps")


class RedCNNRecipe(_Recipe):
    """Supervised denoiser (RED-CNN and any image-to-image net): pixel loss source -> target."""

    name: Literal["redcnn"]
    loss: Component = Field({"type": "l2"}, description="pixel loss (MSE in the RED-CNN paper)")


class Pix2PixRecipe(_Recipe):
    """Pix2Pix (Isola et al. 2017): paired translation, D sees (input, output) pairs, GAN + lambda_l1 x L1."""

    needs: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    name: Literal["pix2pix"]
    gan_loss: Component = Field({"type": "vanilla"}, description="adversarial loss")
    lambda_l1: float = Field(100.0, ge=0, description="weight of the L1 term")


class CycleGANRecipe(_Recipe):
    """CycleGAN (Zhu et al. 2017): unpaired low <-> full dose, two G, two D, cycle + identity, image pool."""

    needs: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    name: Literal["cyclegan"]
    gan_loss: Component = Field({"type": "lsgan"}, description="adversarial loss")
    lambda_cycle: float = Field(10.0, ge=0, description="cycle weight, each direction")
    lambda_identity: float = Field(0.5, ge=0, description="identity weight as a fraction of lambda_cycle")
    pool_size: int = Field(50, ge=0, description="generated images kept per domain for D (0: no pool)")


class SRGANRecipe(_Recipe):
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


class DCGANRecipe(_Recipe):
    """Noise -> image (``dcgan``) or class-conditional (``cgan``: label from dataset.json)."""

    needs: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    name: Literal["dcgan", "cgan"]
    latent_dim: int = Field(100, ge=1, description="length of z")
    num_classes: int = Field(0, ge=0, description="cgan: number of labels")
    gan_loss: Component = Field({"type": "vanilla"}, description="adversarial loss")


RecipeConfig = Annotated[
    Union[DAERecipe, VAERecipe, RedCNNRecipe, Pix2PixRecipe, CycleGANRecipe, SRGANRecipe, DCGANRecipe],  # noqa: UP007
    Field(discriminator="name"),
]
RECIPE_CLASSES: dict[str, type[_Recipe]] = {
    n: c
    for c in typing.get_args(typing.get_args(RecipeConfig)[0])
    for n in typing.get_args(c.model_fields["name"].annotation)
}


