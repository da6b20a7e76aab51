"""RED-CNN against the paper's layer list, and the light residual CNN."""

from __future__ import annotations

import torch

from medgan.nets import build_net


def test_redcnn_shape_and_paper_parameter_count() -> None:
    net = build_net({"type": "redcnn"})
    x = torch.randn(1, 1, 64, 64)
    assert net(x).shape == (1, 1, 64, 64)
    k, c = 5, 96
    # Chen et al. 2017: conv1 (1->96), conv2-5 (96->96), deconv1-4 (96->96), deconv5 (96->1); 5x5, biases
    layers = [(1, c)] + [(c, c)] * 4 + [(c, c)] * 4 + [(c, 1)]
    expected = sum(cin * cout * k * k + cout for cin, cout in layers)
    assert sum(p.numel() for p in net.parameters()) == expected == 1_848_865


def test_redcnn_is_residual_from_input() -> None:
    net = build_net({"type": "redcnn", "feature_size": 4})
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    x = torch.randn(1, 1, 32, 32)
    assert torch.equal(net(x), x)  # zero body: the input shortcut alone, no final ReLU clipping negatives
    net_relu = build_net({"type": "redcnn", "feature_size": 4, "final_relu": True})
    with torch.no_grad():
        for p in net_relu.parameters():
            p.zero_()
    assert torch.equal(net_relu(x), x.clamp(min=0))


def test_2_5d_input_adds_centre_slice() -> None:
    for name in ("redcnn", "rescnn_lite"):
        net = build_net({"type": name, "in_channels": 3, "out_channels": 1, "feature_size": 4})
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
        x = torch.randn(2, 3, 24, 24)
        assert torch.equal(net(x), x[:, 1:2]), name


def test_rescnn_lite_is_much_lighter() -> None:
    lite = build_net({"type": "rescnn_lite"})
    red = build_net({"type": "redcnn"})
    n_lite = sum(p.numel() for p in lite.parameters())
    assert n_lite * 20 < sum(p.numel() for p in red.parameters())
    assert lite(torch.randn(1, 1, 30, 40)).shape == (1, 1, 30, 40)
