"""Feature matching on a PatchGAN's features."""

from __future__ import annotations

import pytest
import torch

from medgan.losses import build_loss
from medgan.nets import build_net


def test_feature_matching_zero_for_same_image_and_trains_generator_only() -> None:
    d = build_net({"type": "patchgan", "feature_size": 4, "num_layers": 2, "norm": "none"})
    real = torch.randn(1, 1, 32, 32)
    fake = torch.randn(1, 1, 32, 32, requires_grad=True)
    _, real_feats = d(real, return_features=True)
    loss = build_loss({"type": "feature_matching", "weight": 10.0})
    assert loss(real_feats, real_feats).item() == 0.0
    _, fake_feats = d(fake, return_features=True)
    value = loss(fake_feats, real_feats)
    assert value.item() > 0
    value.backward()
    assert fake.grad.abs().sum() > 0


def test_feature_matching_length_mismatch() -> None:
    with pytest.raises(ValueError, match="same"):
        build_loss("feature_matching")([torch.zeros(1)], [])
