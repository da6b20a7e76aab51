"""ResnetGenerator against the CycleGAN reference."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import ConfigError
from medgan.nets import build_net


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_reference_parameter_count_9_blocks() -> None:
    # pytorch-CycleGAN-and-pix2pix, resnet_9blocks, ngf 64, instance norm, 3 -> 3 channels
    with torch.device("meta"):
        net = build_net({"type": "resnet_generator", "in_channels": 3, "out_channels": 3, "feature_size": 64,
                         "num_res_blocks": 9, "norm": "instance"})
    assert _count(net) == 11_378_179


def test_6_blocks_count_and_reflection_padding() -> None:
    with torch.device("meta"):
        net = build_net({"type": "resnet_generator", "in_channels": 3, "out_channels": 3, "num_res_blocks": 6})
    # three 256-channel blocks fewer, each two 3x3 convs with bias
    assert _count(net) == 11_378_179 - 3 * 2 * (256 * 256 * 9 + 256)
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())


def test_3d_uses_3d_layers_and_tanh_range() -> None:
    net = build_net({"type": "resnet_generator", "spatial_dims": 3, "feature_size": 2, "num_res_blocks": 1})
    assert any(isinstance(m, torch.nn.ReflectionPad3d) for m in net.modules())
    out = net(10 * torch.randn(1, 1, 8, 12, 16))
    assert out.shape == (1, 1, 8, 12, 16)
    assert out.abs().max() <= 1.0


def test_non_square_input_and_dropout_in_blocks() -> None:
    net = build_net({"type": "resnet_generator", "feature_size": 4, "num_res_blocks": 2, "dropout": 0.5})
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 2
    assert net(torch.randn(1, 1, 20, 36)).shape == (1, 1, 20, 36)


def test_state_dict_keys_follow_the_reference_layout() -> None:
    """Same module order as the authors' ``ResnetGenerator``, so their ``latest_net_G.pth`` loads."""
    with torch.device("meta"):
        net = build_net({"type": "resnet_generator", "in_channels": 3, "out_channels": 3})
    keys = set(net.state_dict())
    # pad(0) conv(1) norm ReLU | conv(4) .. conv(7) .. | 9 blocks 10-18 | convT(19) .. convT(22) .. | pad conv(26)
    expected = {"model.1.weight", "model.1.bias", "model.4.weight", "model.7.weight", "model.19.weight",
                "model.22.weight", "model.26.weight", "model.26.bias"}
    expected |= {f"model.{i}.conv_block.{j}.{p}" for i in range(10, 19) for j in (1, 5) for p in ("weight", "bias")}
    assert keys == expected | {k.replace("weight", "bias") for k in expected}


def test_residual_generator_starts_as_the_exact_identity_and_then_learns() -> None:
    net = build_net({"type": "resnet_generator", "feature_size": 4, "num_res_blocks": 1, "residual": True})
    x = 3 * torch.randn(2, 1, 16, 20)  # beyond tanh's range: a residual net must not squash it
    assert torch.equal(net(x), x)
    assert not any(isinstance(m, torch.nn.Tanh) for m in net.modules())
    # the zero last layer still gets a gradient, so one step moves the net off the identity
    loss = (net(x) - 0.5 * x).pow(2).mean()
    loss.backward()
    last = net.model[-1]
    assert last.weight.grad.abs().sum() > 0
    with torch.no_grad():
        last.weight -= 0.1 * last.weight.grad
    assert not torch.equal(net(x), x)


def test_residual_generator_keeps_the_reference_state_dict_keys_and_takes_a_2_5d_stack() -> None:
    plain = build_net({"type": "resnet_generator", "feature_size": 4, "num_res_blocks": 1})
    residual = build_net({"type": "resnet_generator", "feature_size": 4, "num_res_blocks": 1, "residual": True})
    assert set(plain.state_dict()) == set(residual.state_dict())
    stack = build_net({"type": "resnet_generator", "in_channels": 3, "feature_size": 4, "num_res_blocks": 1, "residual": True})
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(stack(x), x[:, 1:2])  # the centre slice


def test_residual_generator_refuses_channels_it_cannot_add_and_non_bool() -> None:
    with pytest.raises(ConfigError, match="residual learning needs"):
        build_net({"type": "resnet_generator", "in_channels": 2, "out_channels": 1, "residual": True})
    with pytest.raises(ConfigError, match="residual must be true or false"):
        build_net({"type": "resnet_generator", "residual": "yes"})
