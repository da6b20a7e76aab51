"""Pix2Pix U-Net against the reference."""

from __future__ import annotations

import pytest
import torch

from medgan.nets import build_net


def test_reference_parameter_count_unet_256() -> None:
    # the reference prints "Total number of parameters : 54.414 M" for unet_256, ngf 64, batch norm
    with torch.device("meta"):
        net = build_net({"type": "unet_generator", "in_channels": 3, "out_channels": 3, "num_downs": 8,
                         "feature_size": 64, "norm": "batch"})
    count = sum(p.numel() for p in net.parameters())
    assert count / 1e6 == pytest.approx(54.414, rel=1e-4)
    assert count == 54_413_955


def test_dropout_in_inner_levels_only() -> None:
    # num_downs 8: three 8x-wide levels between the 4x->8x level and the innermost carry dropout (reference)
    with torch.device("meta"):
        net = build_net({"type": "unet_generator", "num_downs": 8, "feature_size": 2})
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 3
    with torch.device("meta"):
        net = build_net({"type": "unet_generator", "num_downs": 8, "feature_size": 2, "dropout": 0.0})
    assert not any(isinstance(m, torch.nn.Dropout) for m in net.modules())


def test_eval_is_deterministic_and_train_is_not() -> None:
    net = build_net({"type": "unet_generator", "num_downs": 6, "feature_size": 2})
    x = torch.randn(2, 1, 64, 64)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    torch.manual_seed(0)
    a = net(x)
    assert not torch.equal(a, net(x))  # dropout is the noise source in Pix2Pix


def test_size_not_divisible_fails_loudly() -> None:
    net = build_net({"type": "unet_generator", "num_downs": 4, "feature_size": 2})
    with pytest.raises(RuntimeError):
        net(torch.randn(1, 1, 24, 24))


def test_state_dict_keys_follow_the_reference_layout() -> None:
    """Nested ``model.model.<i>`` keys as in the authors' ``UnetGenerator`` (their unet_256 G loads)."""
    with torch.device("meta"):
        net = build_net({"type": "unet_generator", "in_channels": 3, "out_channels": 3})
    keys = set(net.state_dict())
    assert {"model.model.0.weight", "model.model.3.weight", "model.model.3.bias"} <= keys  # outer down / up conv
    assert "model.model.1.model.1.weight" in keys and "model.model.1.model.2.running_mean" in keys
    innermost = "model.model.1" + ".model.3" * 6 + ".model"  # level 7 of 8
    assert {f"{innermost}.1.weight", f"{innermost}.3.weight", f"{innermost}.4.weight"} <= keys
