"""Pixel losses and cycle / identity."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import ConfigError
from medgan.losses import build_loss


def test_l1_l2_values_and_weight() -> None:
    pred, target = torch.tensor([1.0, -1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    assert build_loss("l1")(pred, target).item() == pytest.approx(1.0)
    assert build_loss({"type": "l2", "weight": 3.0})(pred, target).item() == pytest.approx(3 * 5 / 3)


def test_charbonnier_between_l1_and_l1_plus_eps() -> None:
    pred, target = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    loss = build_loss({"type": "charbonnier", "eps": 1e-2})
    l1 = (pred - target).abs().mean().item()
    assert l1 < loss(pred, target).item() <= l1 + 1e-2
    assert loss(pred, pred).item() == pytest.approx(1e-2)  # smooth at 0: eps, not 0
    with pytest.raises(ConfigError, match="eps"):
        build_loss({"type": "charbonnier", "eps": 0})


@pytest.mark.parametrize("name", ["cycle", "identity"])
def test_cycle_identity_criteria(name: str) -> None:
    a, b = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    assert build_loss({"type": name, "weight": 10.0})(a, b).item() == pytest.approx(5.0)
    assert build_loss({"type": name, "criterion": "l2"})(a, b).item() == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="criterion"):
        build_loss({"type": name, "criterion": "l3"})
