"""The autoencoder family: capacity constraints, sparse code, denoising corruption, VAE contract."""

from __future__ import annotations

import pytest
import torch

from medgan.nets import build_net


def test_undercomplete_and_overcomplete_code_sizes() -> None:
    under = build_net({"type": "ae_undercomplete", "img_size": 16, "latent_size": 32})
    under(torch.randn(2, 1, 16, 16))
    assert under.last_code.shape == (2, 32)
    over = build_net({"type": "ae_overcomplete", "img_size": [8, 4]})
    over(torch.randn(2, 1, 8, 4))
    assert over.last_code.shape == (2, 64)  # default: twice the 32 input values


def test_sparse_code_is_in_unit_interval() -> None:
    net = build_net({"type": "ae_sparse", "img_size": 8, "latent_size": 16})
    net(10 * torch.randn(3, 1, 8, 8))
    assert net.last_code.min() >= 0 and net.last_code.max() <= 1


def test_deep_has_mirrored_hidden_layers() -> None:
    net = build_net({"type": "ae_deep", "img_size": 8, "hidden": [32, 16], "latent_size": 4})
    widths = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [32, 16, 4, 16, 32, 64]


def test_mlp_autoencoder_rejects_wrong_size() -> None:
    net = build_net({"type": "ae_deep", "img_size": 8, "hidden": [8], "latent_size": 4})
    with pytest.raises(ValueError, match="img_size"):
        net(torch.randn(1, 1, 16, 16))


def test_dae_corrupts_only_in_training() -> None:
    net = build_net({"type": "dae", "channels": [4, 8], "strides": [2, 2], "noise_std": 0.5})
    x = torch.randn(1, 1, 16, 16)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_vae_contract_and_deterministic_eval() -> None:
    net = build_net({"type": "vae", "img_size": 16, "channels": [4, 8], "strides": [2, 2], "latent_size": 6})
    x = torch.randn(2, 1, 16, 16)
    net.train()
    recon, mu, logvar = net(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 6)
    net.eval()
    assert torch.equal(net(x)[0], net(x)[0])  # decodes mu at inference
    # no sigmoid on the output: a negative output bias gives negative values (normalised CT is signed)
    last = [m for m in net.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)][-1]
    with torch.no_grad():
        last.bias.fill_(-5.0)
    assert net(x)[0].max() < 0
