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


def test_class_noise_measures_noise_in_homogeneous_tissue_and_passes_gradients():
    from medgan.recipes.label_free import NOISE_CLASSES_HU, class_noise

    (soft,) = NOISE_CLASSES_HU
    air = (-1100.0, -900.0)

    gen = torch.Generator().manual_seed(0)
    tissue = torch.full((1, 1, 32, 32), 40.0)
    tissue[..., :, :8] = -800.0  # a strip of lung: its windows are not measured
    noisy = (tissue + 30.0 * torch.randn(tissue.shape, generator=gen)).requires_grad_(True)
    sigma = class_noise(noisy, tissue, soft)
    assert 20.0 < float(sigma) < 32.0  # the quantile keeps the calmer windows of 30 HU noise
    sigma.backward()
    assert (noisy.grad[..., 12:, :] != 0).float().mean() > 0.5  # a dense gradient, not one window's
    assert noisy.grad[..., :, :3].abs().sum() == 0  # lung windows take no part
    assert class_noise(noisy, torch.full_like(tissue, -800.0), soft) is None  # no soft tissue at all
    assert class_noise(noisy, tissue, air) is None  # no air in it


def test_noise_term_pulls_towards_the_other_piles_level_and_cycle_lowpass_blurs(tmp_path):
    r = _recipe(tmp_path, lambda_noise=1.0, cycle_lowpass=True)
    gen = torch.Generator().manual_seed(0)
    tissue = r.normalizer.forward(torch.full((1, 1, 32, 32), 40.0))
    quiet = tissue + 10.0 * r.normalizer.scale * torch.randn(tissue.shape, generator=gen)
    loud = tissue + 40.0 * r.normalizer.scale * torch.randn(tissue.shape, generator=gen)
    assert r._noise_term(loud, loud, quiet, 0) > 0.5  # log(45/15)^2 ~ 1.2 (a little less: calm windows)
    assert r._noise_term(quiet, quiet, quiet, 0) < 0.05
    assert 5.0 < float(r.noise_target_hu[0, 0]) < 12.0  # the running full-dose soft-tissue level, in HU
    rec, real = r._cycle_view(loud, quiet)
    centre = (..., slice(8, 24), slice(8, 24))  # away from the blur's zero-padded border
    assert rec[centre].std() < 0.5 * loud[centre].std()  # compared after the blur: removed noise need not come back
