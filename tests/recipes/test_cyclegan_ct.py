"""The CT options of the CycleGAN recipe: identity start, high-pass discriminator view, adversarial warm-up,
low-frequency consistency - checked on the built recipe without training."""

from __future__ import annotations

import torch

from medgan.config import validate_config
from medgan.recipes import build_recipe
from tests.recipes._configs import tiny_config


def _recipe(tmp_path, **recipe):
    cfg = tiny_config("cyclegan", tmp_path, recipe={"name": "cyclegan", "pool_size": 3, **recipe})
    cfg["nets"]["generator"]["residual"] = True
    return build_recipe(validate_config(cfg))


def test_defaults_are_the_reference(tmp_path):
    r = _recipe(tmp_path)
    x = torch.randn(1, 1, 16, 16)
    assert r.blur is None and r.highpass is None and r.adversarial_weight() == 1.0
    assert torch.equal(r.disc_view(x), x)
    assert torch.equal(r.predict(x), x)  # residual generator: the untrained CycleGAN returns its input


def test_highpass_view_hides_anatomy_scale_content_and_warmup_ramps(tmp_path):
    r = _recipe(tmp_path, disc_highpass_sigma=2.0, adversarial_warmup=10, lambda_lowfreq=1.0)
    smooth = torch.linspace(-1, 1, 16)[None, None, :, None].expand(1, 1, 16, 16)  # a slow ramp: anatomy scale
    noise = 0.05 * torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    view = r.disc_view(smooth + noise)
    centre = (slice(None), slice(None), slice(4, 12), slice(4, 12))  # away from the blur's border
    assert view[centre].abs().mean() < 1.5 * noise[centre].abs().mean()  # the ramp is gone, the noise stays
    assert view[centre].abs().mean() > 0.5 * noise[centre].abs().mean()
    assert r.adversarial_weight() == 0.0  # iteration 0: D trains alone
    assert r.blur is not None
