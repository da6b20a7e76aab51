"""On-the-fly low-dose pairs: resampling geometry, physics jitter, seeded simulation, aligned flips."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from medgan.data.augment import (
    LowDosePaird,
    RandAttenuationJitterd,
    RandPixelSized,
    SimulatedPairDataset,
    pair_transforms,
    resample_inplane,
    voxel_size,
)
from medgan.errors import ConfigError

SIM = {"views": 24, "photons": 1e4}  # tiny projector, fixed budget: the physics is tested in tests/transforms


def _phantom(shape=(1, 24, 20), pixel=0.5, thickness=2.0) -> MetaTensor:
    g = torch.Generator().manual_seed(0)
    img = torch.full(shape, -1024.0)
    img[:, 4:-4, 4:-4] = 40.0 + 10 * torch.randn(shape[0], shape[1] - 8, shape[2] - 8, *shape[3:], generator=g)
    img[:, 6:9, 6:12] = 700.0  # an asymmetric bone so flips are visible
    affine = torch.diag(torch.tensor([pixel, pixel, thickness, 1.0], dtype=torch.float64))
    return MetaTensor(img, affine=affine)


def test_resample_changes_size_and_affine_together_and_keeps_padding() -> None:
    img = _phantom()
    img[0, 0, :] = -3024.0  # field-of-view padding
    out = resample_inplane(img, 0.5)
    assert out.shape == (1, 12, 10)
    assert voxel_size(out)[:2] == pytest.approx((1.0, 1.0))
    assert out[0, 0].min() == -3024.0 and out.as_tensor()[:, 3:].max() < 1000.0


def test_volume_thickness_is_a_mean_of_neighbouring_slices() -> None:
    vol = _phantom((1, 8, 8, 6), thickness=1.0)
    vol[0, :, :, 1] += 100.0
    out = resample_inplane(vol, 1.0, z_factor=2)
    assert out.shape == (1, 8, 8, 3) and voxel_size(out)[2] == pytest.approx(2.0)
    assert out.meta["slice_thickness_mm"] == pytest.approx(2.0)  # what the simulator reads for the photon budget
    torch.testing.assert_close(out.as_tensor()[..., 0], vol.as_tensor()[..., :2].mean(-1))


def test_random_pixel_size_stays_in_range_and_pads_to_the_multiple() -> None:
    t = RandPixelSized("image", pixel_range=(0.6, 1.2), size_multiple=16)
    for seed in range(5):
        t.set_random_state(seed)
        out = t({"image": _phantom()})["image"]
        assert 0.6 <= t.last_pixel <= 1.2
        assert voxel_size(out)[0] == pytest.approx(t.last_pixel, rel=0.06)  # rounding to whole pixels
        assert all(n % 16 == 0 for n in out.shape[1:])


def test_no_upsampling_keeps_a_coarse_scan_at_its_own_pixel() -> None:
    coarse = RandPixelSized("image", pixel_range=(0.4, 1.5), size_multiple=8, upsample=False)
    fine = RandPixelSized("image", pixel_range=(0.4, 1.5), size_multiple=8)
    for seed in range(5):
        coarse.set_random_state(seed)
        fine.set_random_state(seed)
        assert coarse({"image": _phantom(pixel=3.0)})["image"].shape == (1, 24, 24)  # only padded
        assert coarse.last_pixel == pytest.approx(3.0)
        fine({"image": _phantom(pixel=3.0)})
        assert fine.last_pixel < 3.0
        coarse({"image": _phantom(pixel=0.5)})  # a finer scan is still coarsened within the range
        assert 0.5 <= coarse.last_pixel <= 1.5
    with pytest.raises(ConfigError, match="upsample"):
        RandPixelSized("image", upsample="no")


def test_attenuation_jitter_scales_tissue_not_air_or_padding() -> None:
    img = torch.tensor([[[-1000.0, 0.0, 1000.0, -3024.0]]])
    t = RandAttenuationJitterd("image", jitter=0.05)
    t.set_random_state(3)
    out = t({"image": img})["image"][0, 0]
    s = t.last_scale
    assert 0.95 <= s <= 1.05 and s != 1.0
    torch.testing.assert_close(out, torch.tensor([-1000.0, 1000 * s - 1000, 2000 * s - 1000, -3024.0]))
    with pytest.raises(ConfigError, match="jitter"):
        RandAttenuationJitterd("image", jitter=0.9)


def test_low_dose_pair_is_seeded_and_noisier_at_lower_dose() -> None:
    levels = []
    for dose in (0.5, 0.1):
        t = LowDosePaird((dose, dose), **SIM).set_random_state(7)
        a = t({"target": _phantom()})
        b = LowDosePaird((dose, dose), **SIM).set_random_state(7)({"target": _phantom()})
        assert torch.equal(torch.as_tensor(a["source"]), torch.as_tensor(b["source"]))
        assert a["dose"] == dose and a["noise_level"] > 0
        levels.append(a["noise_level"])
    assert levels[1] > 1.5 * levels[0]  # sigma ~ 1/sqrt(dose): sqrt(5) = 2.2 expected


def test_flips_keep_the_pair_aligned() -> None:
    # dose 1 in relative mode adds no noise: source and target must stay identical through every flip
    tr = pair_transforms({"dose_range": [1.0, 1.0], "pixel_range": None, "size_multiple": 8, "simulator": SIM})
    seen = set()
    for seed in range(6):
        tr.set_random_state(seed)
        d = tr({"target": _phantom()})
        assert torch.equal(torch.as_tensor(d["source"]), torch.as_tensor(d["target"]))
        target = torch.as_tensor(d["target"])[0]
        seen.add(tuple(torch.nonzero(target > 500.0)[0].tolist()))  # the bone's first voxel
    assert len(seen) > 1  # the bone moved: flips / rotations were applied


def test_pair_config_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="dose_rnage"):
        pair_transforms({"dose_rnage": [0.1, 0.2]})
    with pytest.raises(ConfigError, match="pixel_range"):
        pair_transforms({"pixel_range": [2.0, 1.0]})


class _Store:
    def __init__(self, volume: MetaTensor) -> None:
        self.volume = volume
        self.affines = [volume.affine]

    def __getitem__(self, i: int) -> dict:
        return {"image": self.volume}


def test_dataset_samples_depend_only_on_their_key() -> None:
    vol = _phantom((1, 24, 20, 3))
    cfg = {"dose_range": [0.1, 0.5], "pixel_range": [0.5, 1.0], "size_multiple": 8, "simulator": SIM}
    ds = SimulatedPairDataset(_Store(vol), [(0, 0), (0, 1), (0, 2)], (16, 16), transforms=cfg, context_slices=1)
    other = SimulatedPairDataset(_Store(vol), [(0, 0), (0, 1), (0, 2)], (16, 16), transforms=cfg, context_slices=1)
    a, b = ds[(1, 1, 123)], other[(1, 1, 123)]
    assert a["source"].shape == (3, 16, 16) and a["target"].shape == (1, 16, 16)
    assert torch.equal(a["source"], b["source"]) and torch.equal(a["target"], b["target"])
    assert not torch.equal(a["source"][1:2], a["target"])  # noise was added
    assert 0.1 <= float(a["dose"]) <= 0.5


def test_data_module_serves_simulated_pairs_from_the_targets(make_dataset) -> None:
    from medgan.data.datamodule import CTDataModule

    cfg = {"dose_range": [0.25, 0.25], "pixel_range": [2.0, 4.0], "size_multiple": 8, "simulator": SIM}
    dm = CTDataModule(make_dataset(), patch_size=[16, 16], batch_size=2, seed=1, dose_pairs=cfg)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["source"].shape == (2, 1, 16, 16) and batch["target"].shape == (2, 1, 16, 16)
    assert torch.all(batch["dose"] == 0.25) and torch.all(batch["noise_level"] > 0)
    assert not torch.equal(batch["source"], batch["target"])
    with pytest.raises(ConfigError, match="dose_pairs"):
        CTDataModule(make_dataset(), patch_size=[8, 8, 4], input_mode="3d", dose_pairs=cfg).setup("fit")
