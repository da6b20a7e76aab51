"""DCGAN generator / discriminator: sizes, conditioning, minibatch-std."""

from __future__ import annotations

import pytest
import torch

from medgan.nets import build_net
from medgan.nets.dcgan import MinibatchStd


@pytest.mark.parametrize("img_size", [8, 32, 64])
def test_generator_sizes_and_tanh(img_size: int) -> None:
    net = build_net({"type": "dcgan_generator", "latent_size": 8, "feature_size": 2, "img_size": img_size})
    out = net(torch.randn(2, 8))
    assert out.shape == (2, 1, img_size, img_size)
    assert out.abs().max() <= 1


def test_paper_generator_widths() -> None:
    with torch.device("meta"):
        net = build_net({"type": "dcgan_generator", "latent_size": 100, "feature_size": 64, "img_size": 64})
    convs = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 1]
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 4  # BN everywhere except the output layer


def test_conditioning_changes_output_and_labels_required() -> None:
    gen = build_net({"type": "dcgan_generator", "latent_size": 8, "feature_size": 2, "img_size": 8,
                     "num_classes": 4}).eval()
    z = torch.randn(1, 8).repeat(2, 1)
    out = gen(z, torch.tensor([0, 3]))
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="labels"):
        gen(z)
    disc = build_net({"type": "dcgan_discriminator", "feature_size": 2, "img_size": 8, "num_classes": 4}).eval()
    x = torch.randn(1, 1, 8, 8).repeat(2, 1, 1, 1)
    logits = disc(x, torch.tensor([1, 2]))
    assert logits.shape == (2, 1) and logits[0] != logits[1]
    with pytest.raises(ValueError, match="labels"):
        build_net({"type": "dcgan_discriminator", "feature_size": 2, "img_size": 8})(x, torch.tensor([0, 1]))


def test_minibatch_std_sees_batch_diversity() -> None:
    layer = MinibatchStd(group_size=4)
    same = torch.ones(4, 3, 2, 2)
    varied = torch.randn(4, 3, 2, 2)
    out_same, out_varied = layer(same), layer(varied)
    assert out_same.shape == (4, 4, 2, 2)
    assert out_same[:, 3].max() < 1e-3  # collapsed batch: std ~ 0
    assert out_varied[:, 3].min() > 0.1
    assert torch.isfinite(layer(torch.randn(1, 3, 2, 2))).all()  # batch of one
    assert layer(torch.randn(6, 2, 2, 2)).shape == (6, 3, 2, 2)  # batch not divisible by group
