"""Training recipes by name: ``build_recipe(config)`` gives the recipe's ``LightningModule``.

Names: ``dae``, ``vae``, ``redcnn``, ``pix2pix``, ``cyclegan``, ``srgan``, ``dcgan``, ``cgan``.

The exports are resolved on first use (PEP 562), so that :mod:`medgan.recipes.params` - the ``recipe:``
sections, which the config's registry imports on first lookup - loads without torch and Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RECIPES": "medgan.recipes.registry",
    "build_recipe": "medgan.recipes.registry",
    "Recipe": "medgan.recipes.base",
    "set_requires_grad": "medgan.recipes.base",
    "LRSchedule": "medgan.recipes.schedule",
    "VolumeValidator": "medgan.recipes.validation",
    "PanelWriter": "medgan.recipes.panels",
    "DiversityMonitor": "medgan.recipes.diversity",
    "collapse_warning": "medgan.recipes.diversity",
    "TrainingState": "medgan.recipes.training_state",
    "CycleGANRecipe": "medgan.recipes.cyclegan",
    "DCGANRecipe": "medgan.recipes.dcgan",
    "Pix2PixRecipe": "medgan.recipes.pix2pix",
    "SRGANRecipe": "medgan.recipes.srgan",
    "DAERecipe": "medgan.recipes.supervised",
    "RedCNNRecipe": "medgan.recipes.supervised",
    "VAERecipe": "medgan.recipes.supervised",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'medgan.recipes' has no attribute '{name}'")
