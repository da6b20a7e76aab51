"""``build_loss`` registry contract."""

from __future__ import annotations

import copy

import pytest

from medgan.errors import ConfigError
from medgan.losses import LOSSES, build_loss

NAMES = ["vanilla", "lsgan", "hinge", "wgan_gp", "r1", "l1", "l2", "charbonnier", "cycle", "identity", "kl",
         "sparsity", "feature_matching", "perceptual"]


def test_registry_names() -> None:
    assert sorted(NAMES) == LOSSES.names()


def test_unknown_loss_lists_known() -> None:
    with pytest.raises(KeyError, match="did you mean 'lsgan'.*hinge"):
        build_loss({"type": "lsgna"})


def test_unknown_argument_named_and_cfg_untouched() -> None:
    cfg = {"type": "wgan_gp", "lambda_g": 10}
    before = copy.deepcopy(cfg)
    with pytest.raises(ConfigError, match="'lambda_g'.*did you mean 'lambda_gp'"):
        build_loss(cfg)
    assert cfg == before


def test_perceptual_needs_weights_path() -> None:
    with pytest.raises(ConfigError, match="missing required argument 'weights_path'"):
        build_loss("perceptual")
