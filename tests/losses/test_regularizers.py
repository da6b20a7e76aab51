"""KL of the VAE and the sparsity penalty."""

from __future__ import annotations

import math

import pytest
import torch

from medgan.errors import ConfigError
from medgan.losses import build_loss


def test_kl_zero_at_prior_and_closed_form() -> None:
    kl = build_loss("kl")
    zero = torch.zeros(3, 4)
    assert kl(zero, zero).item() == pytest.approx(0.0)
    mu, logvar = torch.full((2, 4), 1.0), torch.full((2, 4), math.log(2.0))
    # per unit: 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2), summed over 4 units
    expected = 4 * 0.5 * (2.0 + 1.0 - 1.0 - math.log(2.0))
    assert kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)


def test_sparsity_kl_zero_at_target_and_grows_away() -> None:
    loss = build_loss({"type": "sparsity", "target": 0.1})
    at_target = torch.full((4, 8), 0.1)
    assert loss(at_target).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(torch.full((4, 8), 0.5)).item() > loss(torch.full((4, 8), 0.2)).item() > 0


def test_sparsity_l1_and_errors() -> None:
    assert build_loss({"type": "sparsity", "mode": "l1"})(torch.tensor([[-1.0, 3.0]])).item() == 2.0
    with pytest.raises(ConfigError, match="mode"):
        build_loss({"type": "sparsity", "mode": "l0"})
    with pytest.raises(ConfigError, match="target"):
        build_loss({"type": "sparsity", "target": 1.5})


def test_sparsity_on_ae_sparse_code_gives_gradients() -> None:
    from medgan.nets import build_net

    net = build_net({"type": "ae_sparse", "img_size": 8, "latent_size": 6})
    net(torch.randn(2, 1, 8, 8))
    build_loss("sparsity")(net.last_code).backward()
    assert net.encoder[1].weight.grad.abs().sum() > 0
