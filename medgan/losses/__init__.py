"""Losses by name: ``build_loss({"type": "lsgan", "weight": 1.0})``.

Calling conventions (all return a scalar):
    adversarial (``vanilla``, ``lsgan``, ``hinge``, ``wgan_gp``, ``r1``): ``loss(logits, target_is_real,
        for_discriminator=True)`` + ``loss.penalty(d, real, fake)``; see :mod:`medgan.losses.adversarial`;
    ``l1``, ``l2``, ``charbonnier``, ``cycle``, ``identity``, ``perceptual``: ``loss(pred, target)``;
    ``kl``: ``loss(mu, logvar)``; ``sparsity``: ``loss(code)``;
    ``feature_matching``: ``loss(fake_features, real_features)``.
Every loss takes ``weight`` (default 1).
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from medgan.losses.adversarial import (
    AdversarialLoss,
    HingeGANLoss,
    LSGANLoss,
    R1GANLoss,
    VanillaGANLoss,
    WGANGPLoss,
    gradient_penalty,
    r1_penalty,
)
from medgan.losses.feature_matching import FeatureMatchingLoss
from medgan.losses.perceptual import PerceptualLoss
from medgan.losses.reconstruction import CharbonnierLoss, CycleLoss, IdentityLoss, L1Loss, L2Loss
from medgan.losses.regularizers import KLDivergenceLoss, SparsityLoss
from medgan.registry import Registry

LOSSES = Registry("losses", noun="loss")
for _name, _cls in {
    "vanilla": VanillaGANLoss,
    "lsgan": LSGANLoss,
    "hinge": HingeGANLoss,
    "wgan_gp": WGANGPLoss,
    "r1": R1GANLoss,
    "l1": L1Loss,
    "l2": L2Loss,
    "charbonnier": CharbonnierLoss,
    "cycle": CycleLoss,
    "identity": IdentityLoss,
    "kl": KLDivergenceLoss,
    "sparsity": SparsityLoss,
    "feature_matching": FeatureMatchingLoss,
    "perceptual": PerceptualLoss,
}.items():
    LOSSES.register(_name, adversarial=issubclass(_cls, AdversarialLoss))(_cls)

ADVERSARIAL = tuple(LOSSES.names(adversarial=True))


def build_loss(cfg: dict[str, Any] | str) -> nn.Module:
    """Build a loss from ``{"type": <registry name>, **kwargs}`` (or just the name); ``cfg`` is not modified.

    Raises:
        KeyError: unknown ``type`` (the message lists the known names).
        ConfigError: missing ``type``, unknown argument or bad value, naming the argument.
    """
    return LOSSES.build(cfg)


__all__ = [
    "LOSSES", "ADVERSARIAL", "build_loss", "AdversarialLoss", "VanillaGANLoss", "LSGANLoss", "HingeGANLoss",
    "WGANGPLoss", "R1GANLoss", "gradient_penalty", "r1_penalty", "L1Loss", "L2Loss", "CharbonnierLoss",
    "CycleLoss", "IdentityLoss", "KLDivergenceLoss", "SparsityLoss", "FeatureMatchingLoss", "PerceptualLoss",
]
