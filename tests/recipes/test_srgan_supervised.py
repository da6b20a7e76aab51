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
