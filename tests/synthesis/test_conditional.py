"""The cheap form of the done-when check: a cGAN trained briefly on two classes that differ in HU draws the
class it is asked for (through its package and medgan-sample's loader)."""

import pytest
import torch

from medgan.losses import build_loss
from medgan.nets import build_net
from medgan.synthesis.sampling import load_generative
from tests.synthesis._packages import NORM, cgan_config, save_package

CLASS_HU = (-800.0, 40.0)  # lung-like and soft-tissue-like patches


def _real_batch(g: torch.Generator, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, 2, (n,), generator=g)
    hu = torch.tensor(CLASS_HU)[labels].reshape(n, 1, 1, 1) + 60 * torch.randn(n, 1, 16, 16, generator=g)
    return NORM.forward(hu), labels


@pytest.mark.slow
def test_briefly_trained_cgan_draws_the_requested_class(tmp_path):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    gen = build_net(cgan_config())
    disc = build_net({"type": "dcgan_discriminator", "img_size": 16, "feature_size": 8, "num_classes": 2})
    loss = build_loss({"type": "lsgan"})
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for _ in range(80):
        real, labels = _real_batch(g)
        fake = gen(torch.randn(len(real), 8, generator=g), labels)
        opt_d.zero_grad()
        (loss(disc(real, labels), True) + loss(disc(fake.detach(), labels), False)).backward()
        opt_d.step()
        opt_g.zero_grad()
        loss.g_loss(disc(fake, labels)).backward()
        opt_g.step()
    model = load_generative(save_package(tmp_path / "pkg", cgan_config(), net=gen.eval(), class_names=["lung", "soft"]))
    means = [float(model.sample(range(100 * c, 100 * c + 16), [c] * 16).mean(dim=(1, 2, 3)).median()) for c in (0, 1)]
    # each class's samples sit nearer their own class's HU than the other's (chance would mix them)
    for c in (0, 1):
        assert abs(means[c] - CLASS_HU[c]) < abs(means[c] - CLASS_HU[1 - c]), means
