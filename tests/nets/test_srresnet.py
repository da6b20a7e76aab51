"""SRResNet: upscale factors, paper layout, 3D pixel shuffle."""

from __future__ import annotations

import pytest
import torch

from medgan.nets import build_net


@pytest.mark.parametrize("upscale", [1, 2, 3, 4])
def test_upscale_factors(upscale: int) -> None:
    net = build_net({"type": "srresnet", "channels": 4, "num_blocks": 1, "upscale": upscale})
    assert net(torch.randn(2, 1, 8, 10)).shape == (2, 1, 8 * upscale, 10 * upscale)


def test_paper_layout() -> None:
    net = build_net({"type": "srresnet"})  # on CPU: MONAI's ICNR init is slow on the meta device
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (9, 9) and convs[-1].kernel_size == (9, 9)
    assert len(net.body) == 16 + 2  # 16 residual blocks, then conv + BN before the long skip
    shuffles = [m for m in net.upsample.modules() if type(m).__name__ == "SubpixelUpsample"]
    assert len(shuffles) == 2  # x4 = two x2 stages


def test_3d_super_resolution() -> None:
    net = build_net({"type": "srresnet", "spatial_dims": 3, "channels": 4, "num_blocks": 1, "upscale": 2})
    assert net(torch.randn(2, 1, 6, 8, 10)).shape == (2, 1, 12, 16, 20)
