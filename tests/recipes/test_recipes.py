"""Every recipe: 2 training steps from an inline config, run-directory outputs, checkpoint round trip."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from medgan.config import validate_config
from medgan.engine import train
from medgan.package import load_model_package
from medgan.recipes import RECIPES, build_recipe

from ._configs import RECIPE_CONFIGS, tiny_config
from .conftest import SyntheticCTDataModule


def _dm(cfg: dict) -> SyntheticCTDataModule:
    d = cfg["data"]
    return SyntheticCTDataModule(patch_size=d["patch_size"], scale=d.get("scale", 1), n_train=2, n_val=2)


def test_registry_covers_every_recipe_name():
    assert set(RECIPES.names()) == set(RECIPE_CONFIGS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPE_CONFIGS))
def test_two_steps_write_a_run_and_round_trip_the_checkpoint(name, tmp_path):
    raw = tiny_config(name, tmp_path / "run")
    cfg = validate_config(raw)
    result = train(cfg, datamodule=_dm(raw))
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()
    assert result.last_ckpt.is_file()
    assert list((run / "samples").glob("val_step*.png")), "a validation panel"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    events.Reload()
    assert "val/panel" in events.Tags()["images"], "the same panel in TensorBoard"
    ckpt = torch.load(result.last_ckpt, map_location="cpu", weights_only=True)
    # training moved the weights away from the (same-seed) initial ones ...
    pl.seed_everything(cfg.seed, verbose=False)
    recipe = build_recipe(cfg)
    assert ckpt["global_step"] == 2 * recipe.steps_per_iteration  # per instance: SRGAN without D takes one
    initial = recipe.state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    # ... and the checkpoint restores them exactly into a fresh recipe
    fresh = build_recipe(cfg)
    fresh.load_state_dict(ckpt["state_dict"])
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in ckpt["state_dict"].items())
    # the model package and the .ckpt load through medgan.package with the recipe's inference net
    manifest, state = load_model_package(run / "model")
    assert manifest["recipe"] == name and manifest["infer_net"] in manifest["nets"]
    ck_manifest, ck_state = load_model_package(result.last_ckpt)
    assert ck_manifest["infer_net"] == manifest["infer_net"]
    assert set(ck_state) == set(state)
    x = torch.zeros(1, 1, *raw["data"]["patch_size"])
    fresh.eval()
    with torch.no_grad():
        y = fresh.predict(x)
    assert torch.isfinite(y).all()
    assert y.shape[2:] == torch.Size([s * raw["data"].get("scale", 1) for s in raw["data"]["patch_size"]])


@pytest.mark.slow
def test_gradient_accumulation_steps_once_per_window(tmp_path):
    raw = tiny_config("redcnn", tmp_path / "run", trainer={"max_steps": 2, "accumulate_grad_batches": 2,
                                                             "gradient_clip_val": 0.5})
    result = train(validate_config(raw), datamodule=SyntheticCTDataModule(patch_size=[32, 32], n_train=4))
    ckpt = torch.load(result.last_ckpt, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2  # optimiser steps
    assert ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 4  # batches
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 2


@pytest.mark.slow
def test_bf16_autocast_trains_a_gan_on_cpu(tmp_path):
    raw = tiny_config("pix2pix", tmp_path / "run", trainer={"precision": "bf16-mixed"})
    result = train(validate_config(raw), datamodule=_dm(raw))
    state = torch.load(result.last_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert state["generator.model.model.0.weight"].dtype == torch.float32  # master weights stay fp32


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pix2pix", "redcnn"])
def test_25d_slabs_feed_the_generator_and_the_package_records_them(name, tmp_path):
    raw = tiny_config(name, tmp_path / "run", data={"input_mode": "2.5d", "context_slices": 1})
    dm = SyntheticCTDataModule(patch_size=raw["data"]["patch_size"], input_mode="2.5d", context_slices=1, n_train=2)
    train(validate_config(raw), datamodule=dm)
    manifest, _ = load_model_package(tmp_path / "run" / "model")
    assert manifest["input_mode"] == "2.5d" and manifest["context_slices"] == 1
    assert manifest["nets"]["generator"]["in_channels"] == 3


def test_cyclegan_refuses_25d_and_a_contradicting_net_argument(tmp_path):
    from medgan.errors import ConfigError

    with pytest.raises(ConfigError, match="'2d' or '3d', got '2.5d'"):
        build_recipe(validate_config(tiny_config("cyclegan", tmp_path, data={"input_mode": "2.5d"})))
    raw = tiny_config("redcnn", tmp_path, data={"input_mode": "2.5d"})
    raw["nets"]["generator"]["in_channels"] = 1
    with pytest.raises(ConfigError, match=r"nets.generator.in_channels=1 does not fit the data.*needs 3"):
        build_recipe(validate_config(raw))


@pytest.mark.slow
def test_max_time_ends_training_like_a_normal_end(tmp_path):
    from medgan.recipes.base import Recipe

    raw = tiny_config("redcnn", tmp_path / "run", trainer={"max_steps": 100000, "max_time": {"seconds": 1},
                                                          "limit_val_batches": 0})
    cfg = validate_config(raw)
    assert cfg.trainer.max_time_seconds() == 1.0
    result = train(cfg, datamodule=SyntheticCTDataModule(patch_size=[32, 32], n_train=2))
    ckpt = torch.load(result.last_ckpt, map_location="cpu", weights_only=True)
    assert 0 < ckpt["global_step"] < 100000, "stopped by the wall-time limit"
    # last.ckpt holds the final weights, and so does the model package
    _, package = load_model_package(tmp_path / "run" / "model")
    assert all(torch.equal(ckpt["state_dict"][k], v) for k, v in package.items())
    assert isinstance(build_recipe(cfg), Recipe)


@pytest.mark.parametrize(("value", "ok"), [("00:00:14:00", True), ({"minutes": 14}, True), ("14:00", False),
                                           ({"weeks": 1}, False)])
def test_max_time_forms(tmp_path, value, ok):
    from medgan.errors import ConfigError

    raw = tiny_config("redcnn", tmp_path / "run", trainer={"max_time": value})
    if ok:
        assert validate_config(raw).trainer.max_time_seconds() == 14 * 60
    else:
        with pytest.raises(ConfigError, match="trainer.max_time"):
            validate_config(raw)


def test_a_run_failing_before_its_first_step_leaves_nothing(tmp_path):
    from medgan.errors import InputError

    class Broken(SyntheticCTDataModule):
        def train_dataloader(self):
            raise InputError("data.root: the first batch cannot be read")

    raw = tiny_config("redcnn", tmp_path / "run")
    with pytest.raises(InputError, match="first batch"):
        train(validate_config(raw), datamodule=Broken(patch_size=[32, 32]))
    assert not (tmp_path / "run").exists(), "no config.yaml / tb/ left to block the next run"
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(InputError):
        train(validate_config(tiny_config("redcnn", tmp_path / "kept")), datamodule=Broken(patch_size=[32, 32]))
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"], "only the run's outputs go"


def test_mode_collapse_warning_threshold():
    from medgan.recipes.diversity import collapse_warning

    assert collapse_warning([(0, 1.0)], 0.25) is None
    assert collapse_warning([(0, 1.0), (10, 0.3)], 0.25) is None
    message = collapse_warning([(0, 1.0), (10, 0.3), (20, 0.2)], 0.25)
    assert message is not None and "possible mode collapse" in message and "step 20" in message


@pytest.mark.slow
def test_srgan_package_and_checkpoint_hold_the_ema_generator(tmp_path):
    raw = tiny_config("srgan", tmp_path / "run", trainer={"max_steps": 3})
    result = train(validate_config(raw), datamodule=_dm(raw))
    ckpt = torch.load(result.last_ckpt, map_location="cpu", weights_only=True)
    manifest, package = load_model_package(tmp_path / "run" / "model")
    ck_manifest, ck_state = load_model_package(result.last_ckpt)
    assert manifest["infer_net"] == ck_manifest["infer_net"] == "generator_ema"
    assert ckpt["medgan_state"]["recipe"]["ema_updates"] == 3
    for key, value in package.items():
        assert torch.equal(ck_state[key], value)
    # the average lags the trained generator
    raw_g = {k.removeprefix("generator."): v for k, v in ckpt["state_dict"].items() if k.startswith("generator.")}
    assert any(not torch.equal(raw_g[k.removeprefix("generator_ema.")], v) for k, v in package.items()
               if v.is_floating_point() and k.removeprefix("generator_ema.") in raw_g)
