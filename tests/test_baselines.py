"""Classical baselines: names checked, noise estimated from the input, every filter reduces noise, padding kept."""

import numpy as np
import pytest

from medgan.baselines import BASELINES, DenoiseContext, estimate_noise_hu, parse_baselines, run_baseline
from medgan.errors import ConfigError


def _phantom(rng, sigma=30.0, size=48):
    """Soft tissue (40 HU) with a bright disc and a dark bar, plus white noise; two slices."""
    yy, xx = np.mgrid[:size, :size]
    clean = np.full((size, size), 40.0)
    clean[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 5) ** 2] = 300.0
    clean[5:10, 8:40] = -200.0
    clean = np.stack([clean, clean])
    return clean.astype(np.float32), (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)


def test_names_are_checked_and_deduplicated():
    assert parse_baselines("bm3d, nlm,bm3d") == ["bm3d", "nlm"]
    with pytest.raises(ConfigError, match="allowed: a comma list of bm3d, nlm, bilateral, tv, gaussian"):
        parse_baselines("bm3d,wiener")


def test_noise_estimate_follows_white_noise_in_soft_tissue():
    rng = np.random.default_rng(0)
    for sigma in (10.0, 40.0):
        _, noisy = _phantom(rng, sigma, size=96)
        assert estimate_noise_hu(noisy) == pytest.approx(sigma, rel=0.15)
    with pytest.raises(ValueError, match="soft tissue"):
        estimate_noise_hu(np.full((1, 32, 32), -1000.0))


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_reduces_the_error_and_keeps_padding(name):
    rng = np.random.default_rng(1)
    clean, noisy = _phantom(rng)
    noisy[:, :, :3] = -3024.0  # scanner padding: not filtered, returned as is
    out = run_baseline(name, noisy, DenoiseContext(sigma_hu=30.0))
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert np.all(out[:, :, :3] == -3024.0)
    inner = (slice(None), slice(None), slice(6, None))
    before = np.sqrt(np.mean((noisy[inner] - clean[inner]) ** 2))
    after = np.sqrt(np.mean((out[inner] - clean[inner]) ** 2))
    assert after < 0.8 * before, (name, before, after)


def test_sigma_must_be_positive():
    with pytest.raises(ConfigError, match="noise sigma"):
        run_baseline("gaussian", np.zeros((1, 16, 16), np.float32), DenoiseContext(sigma_hu=0.0))
