"""The light residual U-Net and NAFNet-style denoisers: identity at start, 2D/3D/2.5D shapes, residual output."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import ConfigError
from medgan.nets import build_net

TINY = {"resunet": {"channels": [4, 8]}, "nafnet": {"channels": [4, 8], "num_middle_blocks": 1}}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("dims", [2, 3])
def test_untrained_net_returns_its_input(name: str, dims: int) -> None:
    net = build_net({"type": name, "spatial_dims": dims, **TINY[name]})
    x = torch.randn((2, 1) + (8,) * dims)
    assert torch.equal(net(x), x)  # the zero-initialised last conv: no harm before training


@pytest.mark.parametrize("name", sorted(TINY))
def test_trained_net_changes_the_image_and_keeps_its_shape(name: str) -> None:
    torch.manual_seed(0)
    net = build_net({"type": name, **TINY[name]})
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(2, 1, 16, 12)
    for _ in range(3):  # learn to remove a constant: every parameter gets a gradient after the first step
        loss = (net(x) - (x - 0.5)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    y = net(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    assert (y - (x - 0.5)).pow(2).mean() < 0.25


@pytest.mark.parametrize("name", sorted(TINY))
def test_2_5d_stack_denoises_the_centre_slice(name: str) -> None:
    net = build_net({"type": name, "in_channels": 3, "out_channels": 1, **TINY[name]})
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(net(x), x[:, 1:2])


def test_nafnet_attention_runs_and_bad_channels_are_config_errors() -> None:
    net = build_net({"type": "nafnet", "channels": [4, 8], "attention": True})
    assert net(torch.randn(1, 1, 8, 8)).shape == (1, 1, 8, 8)
    for bad in ([], [4, 0], 16, "16"):
        with pytest.raises(ConfigError, match="channels"):
            build_net({"type": "resunet", "channels": bad})


def test_resunet_is_far_lighter_than_redcnn_per_pixel() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    def macs(cfg: dict) -> float:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            build_net(cfg)(torch.zeros(1, 1, 32, 32))
        return counter.get_total_flops() / 2 / 32**2

    assert macs({"type": "resunet"}) * 20 < macs({"type": "redcnn"})
    assert macs({"type": "nafnet"}) < macs({"type": "rescnn_lite"})
