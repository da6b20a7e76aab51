"""PatchGAN / PixelGAN against the reference: parameter count and the 70×70 receptive field."""

from __future__ import annotations

import pytest
import torch

from medgan.nets import build_net


def test_reference_parameter_count() -> None:
    # pytorch-CycleGAN-and-pix2pix "basic" D: num_layers 3, ndf 64, instance norm, 3 input channels
    with torch.device("meta"):
        net = build_net({"type": "patchgan", "in_channels": 3, "feature_size": 64, "num_layers": 3, "norm": "instance"})
    assert sum(p.numel() for p in net.parameters()) == 2_764_737


def _receptive_field(num_layers: int) -> tuple[int, int]:
    net = build_net({"type": "patchgan", "feature_size": 2, "num_layers": num_layers, "norm": "none"})
    with torch.no_grad():  # positive weights: no cancellation, the gradient support is the receptive field
        for p in net.parameters():
            p.fill_(0.01)
    x = torch.zeros(1, 1, 160, 160, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("num_layers, field", [(3, 70), (1, 16), (2, 34)])
def test_receptive_field(num_layers: int, field: int) -> None:
    assert _receptive_field(num_layers) == (field, field)


def test_spectral_norm_bounds_each_conv() -> None:
    net = build_net({"type": "patchgan", "feature_size": 4, "num_layers": 2, "norm": "none", "spectral_norm": True})
    net.train()
    for _ in range(10):  # power iterations converge over forward passes
        net(torch.randn(1, 1, 32, 32))
    net.eval()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    for c in convs:
        sigma = torch.linalg.matrix_norm(c.weight.flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, rel=0.1)


def test_state_dict_keys_follow_the_reference_layout() -> None:
    """Flat ``model.<i>`` as the authors' ``NLayerDiscriminator`` (``net.<i>`` for the PixelGAN)."""
    with torch.device("meta"):
        net = build_net({"type": "patchgan", "in_channels": 3, "norm": "batch"})
    keys = set(net.state_dict())
    assert {"model.0.weight", "model.2.weight", "model.3.running_mean", "model.11.weight", "model.11.bias"} <= keys
    assert max(int(k.split(".")[1]) for k in keys) == 11
    with torch.device("meta"):
        pixel = build_net({"type": "pixelgan", "in_channels": 3})
    assert {"net.0.weight", "net.2.weight", "net.3.weight", "net.5.weight"} <= set(pixel.state_dict())


def test_pixelgan_is_per_pixel() -> None:
    net = build_net({"type": "pixelgan", "feature_size": 4}).eval()
    x = torch.randn(1, 1, 16, 16)
    y = x.clone()
    y[..., 3, 5] += 1.0
    changed = (net(x) != net(y))[0, 0]
    assert changed.sum() == 1 and changed[3, 5]
