"""Adversarial losses: values against their formulas, the generator side, and the two penalties."""

from __future__ import annotations

import math

import pytest
import torch

from medgan.losses import ADVERSARIAL, build_loss
from medgan.losses.adversarial import gradient_penalty, r1_penalty


class LinearCritic(torch.nn.Module):
    """D(x) = <w, x> per sample: its input gradient is w everywhere, so ||grad|| = ||w||."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def _unit_w(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return w / w.norm()


def test_vanilla_is_bce_on_logits() -> None:
    gan = build_loss({"type": "vanilla"})
    zeros = torch.zeros(2, 1, 4, 4)
    assert gan(zeros, True).item() == pytest.approx(math.log(2))
    logits = torch.tensor([3.0, -1.0])
    expected_fake = torch.nn.functional.softplus(logits).mean()  # -log(1 - sigmoid(x))
    assert gan(logits, False).item() == pytest.approx(expected_fake.item())
    # exact for extreme logits, where sigmoid + BCELoss would clamp
    assert gan(torch.tensor([-200.0]), True).item() == pytest.approx(200.0)


def test_lsgan_values() -> None:
    gan = build_loss({"type": "lsgan", "weight": 2.0})
    x = torch.tensor([0.5, 1.5])
    assert gan(x, True).item() == pytest.approx(2 * ((0.5 - 1) ** 2 + (1.5 - 1) ** 2) / 2)
    assert gan(x, False).item() == pytest.approx(2 * (0.25 + 2.25) / 2)
    assert gan(x, True, for_discriminator=False).item() == pytest.approx(gan(x, True).item())


def test_hinge_values() -> None:
    gan = build_loss("hinge")
    x = torch.tensor([0.5, 2.0, -3.0])
    assert gan(x, True).item() == pytest.approx((0.5 + 0 + 4) / 3)
    assert gan(x, False).item() == pytest.approx((1.5 + 3 + 0) / 3)
    assert gan(x, True, for_discriminator=False).item() == pytest.approx(-(0.5 + 2 - 3) / 3)


def test_multiscale_list_is_averaged() -> None:
    gan = build_loss("lsgan")
    a, b = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 2, 2)
    assert gan([a, b], True).item() == pytest.approx((gan(a, True) + gan(b, True)).item() / 2)


def test_generator_call_with_fake_target_is_rejected() -> None:
    with pytest.raises(ValueError, match="target_is_real=True"):
        build_loss("vanilla")(torch.zeros(2), False, for_discriminator=False)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_d_loss_lower_when_d_is_right(name: str) -> None:
    """Sanity across every adversarial loss: a D that scores reals high and fakes low has lower loss."""
    gan = build_loss(name)
    good = gan.d_loss(torch.full((4,), 3.0), torch.full((4,), -3.0))
    bad = gan.d_loss(torch.full((4,), -3.0), torch.full((4,), 3.0))
    assert good < bad
    assert gan.g_loss(torch.full((4,), 3.0)) < gan.g_loss(torch.full((4,), -3.0))


def test_wgan_gp_penalty_zero_for_1_lipschitz_linear_critic() -> None:
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    critic = LinearCritic(_unit_w((1, 1, 8, 8)))
    gan = build_loss({"type": "wgan_gp", "lambda_gp": 10.0})
    assert gan.penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-8)


def test_wgan_gp_penalty_positive_for_steep_critic_and_trains_it() -> None:
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    critic = LinearCritic(5 * _unit_w((1, 1, 8, 8)))
    gan = build_loss({"type": "wgan_gp", "lambda_gp": 10.0})
    penalty = gan.penalty(critic, real, fake)
    assert penalty.item() == pytest.approx(10 * (5 - 1) ** 2, rel=1e-5)
    penalty.backward()  # the penalty reaches the critic's weights (double backprop)
    assert critic.w.grad is not None and critic.w.grad.abs().sum() > 0


def test_r1_penalty_is_squared_gradient_norm_on_reals() -> None:
    real = torch.randn(3, 1, 6, 6)
    critic = LinearCritic(3 * _unit_w((1, 1, 6, 6), seed=1))
    assert r1_penalty(critic, real).item() == pytest.approx(9.0, rel=1e-5)
    gan = build_loss({"type": "r1", "gamma": 4.0})
    assert gan.penalty(critic, real, real).item() == pytest.approx(2.0 * 9.0, rel=1e-5)
    assert gradient_penalty(critic, real, real).item() == pytest.approx(4.0, rel=1e-5)


@pytest.mark.parametrize("name", ["vanilla", "lsgan", "hinge"])
def test_plain_losses_have_no_penalty(name: str) -> None:
    critic = LinearCritic(_unit_w((1, 1, 4, 4)))
    x = torch.randn(2, 1, 4, 4)
    assert build_loss(name).penalty(critic, x, x).item() == 0.0
