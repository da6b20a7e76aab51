"""The engine on the real chest CT: resume equals uninterrupted training, same seed gives the same
weights, run-directory rules, DDP on CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medgan.config import load_config
from medgan.engine import train
from medgan.errors import MissingFileError, OutputExistsError
from tests.recipes._dataset import shared_chest_dataset

ROOT = Path(__file__).parents[1]

TINY_CYCLEGAN = [
    "nets.generator.channels=[4,8]", "nets.discriminator.feature_size=4",
    "nets.discriminator.num_layers=1", "data.patch_size=[32,32]", "data.num_workers=0", "data.cache=false",
    "data.samples_per_epoch=4", "data.val_max_slices=2", "trainer.accelerator=cpu", "trainer.devices=1",
    "trainer.val_check_interval=null", "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false",
    "recipe.pool_size=2", "validation.panels=1", "scheduler.total_steps=8",
]




@pytest.fixture(scope="module")
def dataset() -> Path:
    return shared_chest_dataset()


def _cfg(dataset: Path, run: Path, *extra: str, config: str = "ldct_cyclegan.yaml"):
    return load_config(ROOT / "configs" / config, [f"data.root={dataset}", f"run.dir={run}", *TINY_CYCLEGAN, *extra])


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    diff = {k: (a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point()}
    assert max(diff.values()) == 0.0, {k: v for k, v in diff.items() if v}


@pytest.mark.slow
def test_resume_equals_uninterrupted_and_same_seed_repeats(dataset, tmp_path):
    straight = train(_cfg(dataset, tmp_path / "straight", "trainer.max_steps=8"))
    assert straight.metrics["val/rmse"] > 0
    train(_cfg(dataset, tmp_path / "split", "trainer.max_steps=4"))
    first_half = torch.load(tmp_path / "split/checkpoints/last.ckpt", weights_only=True)
    assert first_half["global_step"] == 8  # 4 iterations x (G step + D step)
    assert len(first_half["medgan_state"]["recipe"]["pool_full"]["images"]) == 2, "the image pool is checkpointed"
    train(_cfg(dataset, tmp_path / "split", "trainer.max_steps=8"), resume=True)
    resumed = torch.load(tmp_path / "split/checkpoints/last.ckpt", weights_only=True)
    # weights, optimiser moments and the lr schedule all continue as if never interrupted
    _assert_same(_weights(tmp_path / "straight"), resumed["state_dict"])
    straight_ckpt = torch.load(tmp_path / "straight/checkpoints/last.ckpt", weights_only=True)
    for o1, o2 in zip(straight_ckpt["optimizer_states"], resumed["optimizer_states"]):
        for s1, s2 in zip(o1["state"].values(), o2["state"].values()):
            assert torch.equal(s1["exp_avg"], s2["exp_avg"])
    assert straight_ckpt["lr_schedulers"][0]["last_epoch"] == resumed["lr_schedulers"][0]["last_epoch"] == 8
    # same seed, fresh run dir: identical weights; another seed: different ones
    train(_cfg(dataset, tmp_path / "again", "trainer.max_steps=8"))
    _assert_same(_weights(tmp_path / "straight"), _weights(tmp_path / "again"))
    train(_cfg(dataset, tmp_path / "other", "trainer.max_steps=8", "seed=1"))
    w1, w2 = _weights(tmp_path / "straight"), _weights(tmp_path / "other")
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)


@pytest.mark.slow
def test_resume_restores_the_global_rng(dataset, tmp_path):
    """The DAE draws its input noise from torch's global RNG: resuming must restore it."""
    tiny = ["nets.generator.channels=[4,8]", "nets.generator.strides=[2,2]", "data.patch_size=[32,32]",
            "data.samples_per_epoch=3", "data.val_max_slices=1", "trainer.accelerator=cpu", "trainer.devices=1",
            "trainer.val_check_interval=null", "trainer.enable_progress_bar=false", "data.num_workers=0",
            "data.cache=false", "recipe.noise_std=0.1", "scheduler.total_steps=6"]

    def cfg(run, steps):
        return load_config(ROOT / "configs/ldct_dae.yaml",
                           [f"data.root={dataset}", f"run.dir={run}", f"trainer.max_steps={steps}", *tiny])

    train(cfg(tmp_path / "straight", 6))
    train(cfg(tmp_path / "split", 3))
    train(cfg(tmp_path / "split", 6), resume=True)
    _assert_same(_weights(tmp_path / "straight"), _weights(tmp_path / "split"))


@pytest.mark.slow
def test_run_dir_rules(dataset, tmp_path):
    cfg = _cfg(dataset, tmp_path / "run", "trainer.max_steps=1")
    with pytest.raises(MissingFileError, match="no checkpoint to resume"):
        train(cfg, resume=True)
    train(cfg)
    assert (tmp_path / "run/checkpoints/best.ckpt").is_file() and (tmp_path / "run/model_best/medgan.yaml").is_file()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--resume .* or --overwrite"):
        train(cfg)
    train(cfg, overwrite=True)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine", "--overwrite only removes what a run writes"


@pytest.mark.slow
def test_ddp_two_cpu_processes_hold_identical_weights(dataset, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "medgan.cli.train", "--config", str(ROOT / "configs/ldct_cyclegan.yaml"),
           f"data.root={dataset}", f"run.dir={run}", *TINY_CYCLEGAN, "trainer.max_steps=3",
           "trainer.devices=2", "trainer.strategy=ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run / "ddp_weights.json").read_text())
    assert report["world_size"] == 2 and len(report["checksums"]) == 2
    assert report["checksums"][0] == report["checksums"][1]
    assert torch.load(run / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 6


KILLED_SAVE = """
import io, os, signal, sys
import torch
from medgan.engine import AtomicCheckpointIO

path = sys.argv[1]
writer = AtomicCheckpointIO()
writer.save_checkpoint({"w": torch.ones(1000)}, path)
real_save = torch.save

def dying_save(obj, f, *args, **kwargs):  # half the bytes reach the disk, then kill -9
    buffer = io.BytesIO()
    real_save(obj, buffer)
    with open(f, "wb") as fh:
        fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        fh.flush()
        os.fsync(fh.fileno())
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = dying_save
writer.save_checkpoint({"w": torch.zeros(1000)}, path)
"""


def test_kill_9_during_a_checkpoint_save_leaves_the_previous_one_loadable(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(1000))
    # --resume clears what the killed save left beside it
    from medgan.engine import prepare_run_dir

    assert list(path.parent.glob(".*.medgan-tmp"))
    cfg = load_config(ROOT / "configs" / "ldct_redcnn.yaml", [f"run.dir={tmp_path}"])
    assert prepare_run_dir(cfg, resume=True, overwrite=False) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


@pytest.mark.slow
def test_validation_scores_what_medgan_infer_writes(dataset, tmp_path):
    """The logged validation metrics are those of the model package run by medgan-infer's Predictor on
    the whole validation case (issue 11: model selection on what users run)."""
    from medgan.inference.predictor import Predictor
    from medgan.io import read_volume
    from medgan.metrics import windowed_metrics

    cfg = load_config(ROOT / "configs" / "ldct_redcnn.yaml", [
        f"data.root={dataset}", f"run.dir={tmp_path / 'run'}", "nets.generator.feature_size=4", "data.patch_size=[32,32]",
        "data.samples_per_epoch=2", "data.val_max_slices=null", "data.cache=false", "data.num_workers=0",
        "trainer.max_steps=2", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.val_check_interval=null",
        "trainer.enable_progress_bar=false", "validation.window=abdomen"])
    result = train(cfg)
    (case,) = sorted((dataset / "val" / "source").iterdir())
    source = read_volume(case)
    target = read_volume(dataset / "val" / "target" / case.name)
    output = Predictor(tmp_path / "run" / "model", device="cpu").predict(source)
    expected = windowed_metrics(output.as_tensor()[None], target.as_tensor()[None].float(), cfg.validation.hu_window())
    for name in ("psnr", "ssim", "rmse"):
        assert result.metrics[f"val/{name}"] == pytest.approx(float(expected[name][0]), rel=1e-4, abs=1e-4), name
