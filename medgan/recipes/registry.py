"""The recipe registry: ``RECIPES`` (name -> LightningModule class) and :func:`build_recipe`."""

from __future__ import annotations

from typing import Any

from medgan.config import ExperimentConfig, validate_config
from medgan.recipes.base import Recipe
from medgan.recipes.cyclegan import CycleGANRecipe
from medgan.recipes.dcgan import DCGANRecipe
from medgan.recipes.pix2pix import Pix2PixRecipe
from medgan.recipes.srgan import SRGANRecipe
from medgan.recipes.supervised import DAERecipe, RedCNNRecipe, VAERecipe
from medgan.registry import Registry

RECIPES = Registry("recipes")
for _name, _cls in {
    "dae": DAERecipe,
    "vae": VAERecipe,
    "redcnn": RedCNNRecipe,
    "pix2pix": Pix2PixRecipe,
    "cyclegan": CycleGANRecipe,
    "srgan": SRGANRecipe,
    "dcgan": DCGANRecipe,
    "cgan": DCGANRecipe,
}.items():
    RECIPES.register(_name)(_cls)


def build_recipe(config: ExperimentConfig | dict[str, Any]) -> Recipe:
    """The recipe named by ``config.recipe.name``, with its nets built from ``config.nets``."""
    cfg = config if isinstance(config, ExperimentConfig) else validate_config(config)
    return RECIPES.get(cfg.recipe.name)(cfg)
