"""On-the-fly SR pairs: the prepared pair when nothing is randomised, always block-aligned, seeded per key."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medgan.data.sr_pairs import SRPairDataset, sr_pair_transforms
from medgan.errors import ConfigError
from medgan.transforms.degrade import degrade_for_sr
from medgan.transforms.intensity import HUNormalizer


class _Store:
    """The two things the dataset reads from a VolumeStore."""

    def __init__(self, volume: torch.Tensor, spacing: float) -> None:
        self.volume = volume
        self.affines = [torch.diag(torch.tensor([spacing, spacing, 5.0, 1.0], dtype=torch.float64))]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.volume}


def _volume() -> torch.Tensor:
    torch.manual_seed(0)
    smooth = F.avg_pool2d(torch.randn(3, 1, 40, 36) * 900, 3, 1, 1)[:, 0]  # (Z, X, Y), inside the HU window
    return smooth.permute(1, 2, 0)[None].clamp(-1000, 2000)  # (1, X, Y, Z)


NORM = HUNormalizer()


def test_without_randomisation_it_is_the_prepared_pair() -> None:
    vol = _volume()
    cfg = {"resample_prob": 0.0, "attenuation_jitter": 0.0, "flips": False}
    ds = SRPairDataset(_Store(vol, 0.7), [(0, 1)], patch_size=(8, 6), scale=2, normalizer=NORM, transforms=cfg)
    item = ds[(0, 0, 5)]
    assert item["source"].shape == (1, 8, 6) and item["target"].shape == (1, 16, 12)
    prepared = degrade_for_sr(vol, 2)[0, :, :, 1]  # what medgan-prepare sr writes
    hr = vol[0, :, :, 1]
    # find the crop: the target is the HR patch at twice the source corner
    found = [(i, j) for i in range(0, 20 - 8 + 1) for j in range(0, 18 - 6 + 1)
             if torch.allclose(NORM.inverse(item["source"][0]), prepared[i:i + 8, j:j + 6], atol=0.05)]
    assert len(found) == 1
    i, j = found[0]
    assert torch.allclose(NORM.inverse(item["target"][0]), hr[2 * i:2 * i + 16, 2 * j:2 * j + 12], atol=0.05)


@pytest.mark.parametrize("key", [(0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 0, 4)])
def test_random_pixel_sizes_and_flips_keep_the_pair_block_aligned(key) -> None:
    cfg = {"resample_prob": 1.0, "pixel_range": [0.3, 1.4], "flips": True, "attenuation_jitter": 0.02}
    ds = SRPairDataset(_Store(_volume(), 0.7), [(0, 1)], patch_size=(6, 6), scale=2, normalizer=NORM,
                       transforms=cfg, realisations=4)
    item = ds[key]
    assert torch.allclose(F.avg_pool2d(item["target"], 2), item["source"], atol=1e-5)
    again = ds[key]
    assert torch.equal(item["source"], again["source"]) and torch.equal(item["target"], again["target"])


def test_pixel_sizes_and_noise_vary_between_realisations() -> None:
    pipeline = sr_pair_transforms(2, {"resample_prob": 1.0, "noise_range": [5.0, 20.0]})
    from monai.data import MetaTensor

    hr = MetaTensor(_volume()[..., 1], affine=torch.diag(torch.tensor([0.7, 0.7, 5.0, 1.0], dtype=torch.float64)))
    sizes, noises = set(), set()
    for seed in range(4):
        pipeline.set_random_state(seed=seed)
        pair = pipeline({"target": hr})
        sizes.add(tuple(pair["target"].shape))
        noises.add(round(pipeline.transforms[2].last_noise_std, 3))
        assert pair["source"].shape[1] * 2 == pair["target"].shape[1]
    assert len(sizes) > 1 and len(noises) == 4 and all(5 <= n <= 20 for n in noises)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="sr_pairs.*pixel_size"):
        sr_pair_transforms(2, {"pixel_size": [1, 2]})
    with pytest.raises(ConfigError, match="resample_prob"):
        sr_pair_transforms(2, {"resample_prob": 2})
    with pytest.raises(ConfigError, match="noise_range"):
        sr_pair_transforms(2, {"noise_range": [5, 1]})
    with pytest.raises(ConfigError, match="refine_mode"):
        sr_pair_transforms(2, {"refine_mode": "nearest"})


def test_refined_targets_are_bicubic_not_bilinear() -> None:
    """A target brought to finer pixels than its scan's has no kinks on the coarse grid (bilinear's)."""
    from monai.data import MetaTensor

    vol = MetaTensor(_volume()[..., 0], affine=torch.diag(torch.tensor([2.0, 2.0, 5.0, 1.0], dtype=torch.float64)))
    pipeline = sr_pair_transforms(2, {"pixel_range": [1.0, 1.0], "resample_prob": 1.0, "attenuation_jitter": 0.0,
                                      "flips": False})
    target = pipeline({"target": vol})["target"].as_tensor()
    expected = F.interpolate(vol.as_tensor()[None].float(), size=(80, 72), mode="bicubic", align_corners=False)[0]
    assert target.shape == (1, 80, 72)
    assert torch.allclose(target, expected, atol=1e-3)
