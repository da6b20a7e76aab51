"""Tiny nets with known outputs, saved as real model packages, for the inference tests."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import nn

from medgan.nets import NETS
from medgan.package import make_manifest, save_model_package

WINDOW = {"type": "window", "hu_min": -1024.0, "hu_max": 3071.0, "out_min": -1.0, "out_max": 1.0}


class Identity2p5d(nn.Module):
    """A 1×1 conv that passes the centre channel of a 2.5D stack through (weight one-hot, bias 0)."""

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.conv = conv(in_channels, 1, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, in_channels // 2] = 1.0
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """×scale nearest/bilinear "SR net" with one dummy parameter (so it has a state dict)."""

    def __init__(self, scale: int = 2, mode: str = "nearest") -> None:
        super().__init__()
        self.scale, self.mode = scale, mode
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kw = {} if self.mode == "nearest" else {"align_corners": False}
        return self.gain * nn.functional.interpolate(x, scale_factor=self.scale, mode=self.mode, **kw)


class Strided(nn.Module):
    """Needs inputs that are multiples of 4 (two stride-2 stages), like an encoder-decoder generator."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(1, 4, 4, stride=4)
        self.up = nn.ConvTranspose2d(4, 1, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.tanh(self.down(x)))


class ConvStack(nn.Module):
    """Residual 3-layer 3×3 conv net: a denoiser-shaped net with a receptive-field radius of 3 voxels."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _basic_unet(**kw) -> nn.Module:
    from monai.networks.nets import BasicUNet

    return BasicUNet(**kw)


TEST_NETS = {"identity": Identity2p5d, "upsample": Upsample, "convstack": ConvStack, "strided": Strided,
             "basic_unet": _basic_unet}


@contextmanager
def registered(nets: dict):
    """Register ``nets`` (name -> factory) in the nets registry for the block, then remove them again."""
    for name, factory in nets.items():
        NETS.register(name)(factory)
    try:
        yield
    finally:
        for name in nets:
            NETS.unregister(name)


def _factory(cfg: dict) -> nn.Module:
    return NETS.build(cfg)


@pytest.fixture
def test_nets():
    """The tiny nets above, registered under their names while the test runs, so model packages that
    name them load through the same registry as real ones."""
    with registered(TEST_NETS):
        yield _factory


@pytest.fixture
def make_package(tmp_path, test_nets):
    """``make_package(net_cfg, **manifest_kw) -> Path``: builds the net, saves its weights as a package."""
    counter = iter(range(1000))

    def make(net_cfg: dict, seed: int = 0, **kw) -> Path:
        torch.manual_seed(seed)
        net = _factory(net_cfg)
        state = {f"generator.{k}": v for k, v in net.state_dict().items()}
        dims = kw.pop("spatial_dims", net_cfg.get("spatial_dims", 2))
        manifest = make_manifest(recipe="test", nets={"generator": net_cfg}, infer_net="generator",
                                 spatial_dims=dims, normalization=WINDOW, **kw)
        return save_model_package(tmp_path / f"model{next(counter)}", state, manifest)

    return make
