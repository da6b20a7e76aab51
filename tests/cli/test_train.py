"""``medgan-train`` end to end: every shipped config trains 2 iterations on the real chest CT with tiny
overrides, and user errors exit 2 with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from medgan.cli.train import main
from medgan.package import load_model_package
from tests.recipes._dataset import shared_chest_dataset, shared_sr_dataset

ROOT = Path(__file__).parents[2]
COMMON = ["data.num_workers=0", "data.cache=false", "data.samples_per_epoch=2", "data.val_max_slices=1",
          "trainer.max_steps=2", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.val_check_interval=null",
          "trainer.precision=32-true", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
          "validation.panels=1"]
D4 = ["nets.discriminator.feature_size=4"]
TINY = {
    "ldct_cyclegan": ["nets.generator.channels=[4,8]", *D4, "nets.discriminator.num_layers=1",
                      "data.patch_size=[32,32]"],
    "ldct_cyclegan_3d": ["nets.generator.channels=[4,8]", *D4,
                         "nets.discriminator.num_layers=1", "data.patch_size=[16,16,8]", "trainer.limit_val_batches=1"],
    "ldct_pix2pix": ["nets.generator.feature_size=4", "nets.generator.num_downs=3", *D4, "nets.discriminator.num_layers=1",
                     "data.patch_size=[32,32]"],
    "ldct_denoise": ["nets.generator.channels=[4,8]", "data.patch_size=[32,32]", "data.batch_size=2",
                     "data.dose_pairs=null"],
    "ldct_redcnn": ["nets.generator.feature_size=4", "data.patch_size=[32,32]", "data.batch_size=2"],
    "ldct_dae": ["nets.generator.channels=[4,8]", "nets.generator.strides=[2,2]", "data.patch_size=[32,32]"],
    "sr_srgan": ["nets.generator.feature_size=4", "nets.generator.num_res_blocks=1", *D4, "nets.discriminator.dense_units=8",
                 "data.patch_size=[16,16]", "data.batch_size=1", "recipe.pretrain_steps=1"],
    "anomaly": ["nets.generator.channels=[4,8]", "data.patch_size=[32,32]", "data.batch_size=2"],
    "anomaly_ae": ["nets.generator.channels=[4,8]", "nets.generator.strides=[2,2]", "data.patch_size=[32,32]",
                   "data.batch_size=2"],
    "anomaly_vae": ["nets.generator.channels=[4,8]", "nets.generator.strides=[2,2]", "nets.generator.latent_size=8",
                    "data.patch_size=[32,32]", "data.batch_size=2"],
    "sr": ["nets.generator.feature_size=4", "nets.generator.num_res_blocks=1", "data.patch_size=[16,16]", "data.batch_size=1"],
    "synth_cgan": ["nets.generator.feature_size=4", *D4, "recipe.latent_size=8", "data.patch_size=[16,16]",
                   "data.batch_size=2", "validation.diversity.samples=4"],
}




@pytest.fixture(scope="module")
def datasets() -> dict[str, Path]:
    return {"ldct": shared_chest_dataset(), "sr": shared_sr_dataset()}


def test_every_shipped_config_has_tiny_overrides():
    assert {p.stem for p in (ROOT / "configs").glob("*.yaml")} == set(TINY)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_shipped_config_trains_on_the_real_ct(name, datasets, tmp_path, capsys):
    run = tmp_path / "run"
    root = datasets["sr" if name.startswith("sr") else "ldct"]
    code = main(["--config", str(ROOT / "configs" / f"{name}.yaml"), f"data.root={root}", f"run.dir={run}",
                 *COMMON, *TINY[name]])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 2 and saved["data"]["root"] == str(root)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    manifest, state = load_model_package(run / "model")
    assert manifest["infer_net"] in manifest["nets"] and state
    assert list((run / "samples").glob("val_step*.png"))
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "train/" in header
    if manifest["recipe"] not in ("dcgan", "cgan"):
        assert "val/ssim" in header and (run / "checkpoints" / "best.ckpt").is_file()
    assert f"model:       {run / 'model'}" in out.out and "tensorboard --logdir" in out.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trainer.max_step=4"], "unknown key 'trainer.max_step' (did you mean 'trainer.max_steps'?)"),
        (["trainer.max_steps=four"], "config key 'trainer.max_steps': got 'four' (str)"),
        (["nets.generator.type=resnet_generatr"], "nets.generator.type: No object named 'resnet_generatr'"),
        (["nets.generator.num_res_block=4"], "unknown argument 'num_res_block' (did you mean 'num_res_blocks'?)"),
        (["nets.generator.n_blocks=4"], "net 'resunet': argument 'n_blocks' is now called 'num_res_blocks'"),
        (["--config-name=synth_cgan", "recipe.latent_dim=8"],
         "config key 'recipe.latent_dim' is now called 'recipe.latent_size'"),
        (["data.root=/nonexistent/ds"], "data.root: dataset folder not found: /nonexistent/ds"),
        (["--config-name=ldct_pix2pix", "data.patch_size=[64,64]"],
         "nets.generator.num_downs=8 needs every data.patch_size side divisible by 2**8=256, got data.patch_size=[64, 64]"),
        (["--config-name=sr", "nets.generator.scale=2", "data.scale=4"], "nets.generator.scale=2 does not fit the data"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, message, tmp_path, capsys):
    name = args[0].removeprefix("--config-name=") if args[0].startswith("--config-name=") else "ldct_cyclegan"
    args = [a for a in args if not a.startswith("--config-name=")]
    code = main(["--config", str(ROOT / f"configs/{name}.yaml"), f"run.dir={tmp_path / 'run'}",
                 "trainer.accelerator=cpu", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("medgan-train: error: ") and err.count("\n") == 1, err
    assert message in err


def test_empty_data_root_is_one_line_and_leaves_no_run(tmp_path, capfd):
    (tmp_path / "empty").mkdir()
    code = main(["--config", str(ROOT / "configs/ldct_redcnn.yaml"), f"data.root={tmp_path / 'empty'}",
                 f"run.dir={tmp_path / 'run'}", "trainer.accelerator=cpu"])
    err = capfd.readouterr().err
    assert code == 2
    assert err.startswith("medgan-train: error: data.root: no cases in") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_missing_config_and_print_config(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "none.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["--config", str(ROOT / "configs/ldct_pix2pix.yaml"), "--print-config", "optim.lr=1e-3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optim"]["lr"] == pytest.approx(1e-3) and printed["recipe"]["lambda_l1"] == 100.0


def test_help_is_instant_and_does_not_import_torch():
    # measured by what it imports, not by wall time (a loaded machine would make a timer flaky)
    heavy = ["torch", "lightning", "monai", "SimpleITK", "pydicom"]
    proc = subprocess.run([sys.executable, "-c", "import sys; from medgan.cli.train import main; code = main(['--help']); "
                           f"loaded = [m for m in {heavy!r} if m in sys.modules]; assert not loaded, loaded; sys.exit(code)"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "--resume" in proc.stdout and "key.sub=value" in proc.stdout
