"""init_weights as in the reference."""

from __future__ import annotations

import pytest
import torch

from medgan.nets import build_net, init_weights


def test_normal_init_conv_and_batchnorm() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(8, 64, 3), torch.nn.BatchNorm3d(64), torch.nn.ConvTranspose2d(8, 8, 3))
    init_weights(net, "normal", gain=0.02)
    assert net[0].weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert net[0].weight.mean().abs() < 0.002
    assert torch.all(net[0].bias == 0) and torch.all(net[1].bias == 0)
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert 0 < net[1].weight.std().item() < 0.05
    assert net[2].weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_xavier_and_kaiming_scales() -> None:
    conv = torch.nn.Conv2d(16, 32, 3)
    fan_in, fan_out = 16 * 9, 32 * 9
    init_weights(conv, "xavier", gain=1.0)
    assert conv.weight.std().item() == pytest.approx((2 / (fan_in + fan_out)) ** 0.5, rel=0.1)
    init_weights(conv, "kaiming")
    assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.1)


def test_spectral_norm_original_weight_is_initialised() -> None:
    net = build_net({"type": "patchgan", "feature_size": 8, "num_layers": 1, "norm": "none", "spectral_norm": True})
    init_weights(net, "normal", gain=0.5)
    original = net.model[2].parametrizations.weight.original
    assert original.std().item() == pytest.approx(0.5, rel=0.1)


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="init_type.*normal"):
        init_weights(torch.nn.Linear(1, 1), "uniform")
