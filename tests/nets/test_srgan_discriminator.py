"""SRGAN discriminator: paper widths and any input size."""

from __future__ import annotations

import torch

from medgan.nets import build_net


def test_paper_widths_and_strides() -> None:
    with torch.device("meta"):
        net = build_net({"type": "srgan_discriminator"})
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert linears[0].in_features == 512 * 6 * 6 and linears[0].out_features == 1024
    assert linears[1].out_features == 1


def test_any_input_size() -> None:
    net = build_net({"type": "srgan_discriminator", "feature_size": 2, "dense_units": 4})
    for size in [(16, 16), (40, 24)]:
        assert net(torch.randn(2, 1, *size)).shape == (2, 1)
