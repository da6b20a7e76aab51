"""SRGAN without an adversary (``configs/sr.yaml``): one optimiser step per iteration, D untouched and not
packaged; trained on on-the-fly SR pairs made from a real prepared dataset."""

from __future__ import annotations

import pytest
import SimpleITK as sitk
import torch

from medgan.config import validate_config
from medgan.data import CTDataModule
from medgan.data.prepare import prepare_sr
from medgan.data.sr_pairs import SRPairDataset
from medgan.engine import train
from medgan.package import load_model_package

from ._configs import tiny_config


@pytest.fixture
def sr_dataset(tmp_path, ct_chest_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    image = sitk.ReadImage(str(ct_chest_path))
    sitk.WriteImage(image[32:96, 32:96, 10:14], str(scans / "P1_chest.nrrd"))
    sitk.WriteImage(image[32:96, 32:96, 20:24], str(scans / "P2_chest.nrrd"))
    return prepare_sr(scans, tmp_path / "ds", 2, split=(0.5, 0.5, 0.0), progress=False)


@pytest.mark.slow
def test_supervised_srgan_on_the_fly_pairs(tmp_path, sr_dataset):
    raw = tiny_config("srgan", tmp_path / "run", trainer={"max_steps": 3},
                      recipe={"adv_weight": 0.0, "feature_weight": 0.0, "ema_decay": 0.9},
                      data={"root": str(sr_dataset), "batch_size": 2,
                            "sr_pairs": {"pixel_range": [0.5, 1.5], "noise_range": [0.0, 10.0]}})
    cfg = validate_config(raw)
    dm = CTDataModule(cfg.data, seed=0)
    dm.setup("fit")
    assert isinstance(dm.train_set, SRPairDataset)
    batch = next(iter(dm.train_dataloader()))
    assert batch["source"].shape == (2, 1, 16, 16) and batch["target"].shape == (2, 1, 32, 32)

    result = train(cfg)
    ckpt = torch.load(result.last_ckpt, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3  # one optimiser step per iteration: D is not trained
    assert len(ckpt["optimizer_states"]) == 1
    manifest, package = load_model_package(tmp_path / "run" / "model")
    assert manifest["infer_net"] == "generator_ema" and manifest["scale"] == 2
    assert all(k.startswith("generator_ema.") for k in package)


@pytest.mark.slow
def test_3d_thick_to_thin_trains_and_infers_on_the_thin_grid(tmp_path, ct_chest_path):
    from monai.data import MetaTensor

    from medgan.inference import Predictor
    from medgan.io import read_volume

    scans = tmp_path / "scans"
    scans.mkdir()
    image = sitk.ReadImage(str(ct_chest_path))
    for k, name in enumerate(("P1_a", "P2_a")):
        sitk.WriteImage(image[32:64, 40:72, 16 * k:16 * k + 16], str(scans / f"{name}.nrrd"))
    root = prepare_sr(scans, tmp_path / "ds", 2, slice_scale=4, split=(0.5, 0.5, 0.0), progress=False)
    raw = tiny_config("srgan", tmp_path / "run", trainer={"max_steps": 2},
                      recipe={"adv_weight": 0.0, "feature_weight": 0.0, "ema_decay": 0.9},
                      nets={"generator": {"type": "srresnet", "feature_size": 4, "num_res_blocks": 1, "scale": [2, 2, 4],
                                          "consistency": True, "norm": "none"}},
                      data={"root": str(root), "input_mode": "3d", "patch_size": [8, 8, 4]})
    train(validate_config(raw))
    low = read_volume(root / "val" / "source" / "P2_a.nrrd")
    pred = Predictor(tmp_path / "run" / "model", roi_size="full")
    out = pred.predict(low)
    assert tuple(out.shape) == (1, 32, 32, 16)
    thin = read_volume(root / "val" / "target" / "P2_a.nrrd")
    # the output grid is the thin grid: same voxel positions as the original thin slices
    assert torch.allclose(torch.as_tensor(out.affine), torch.as_tensor(thin.affine), atol=1e-4)
    # consistency: each 2x2x4 block of the output averages to its thick input voxel (HU, int16 input)
    blocks = torch.nn.functional.avg_pool3d(out[None].float(), (2, 2, 4))[0]
    assert torch.allclose(blocks, MetaTensor(low).float().clamp(min=-1024), atol=1.0)
