"""The recommended denoiser config learns: configs/ldct_denoise.yaml (resunet, on-the-fly calibrated
low-dose pairs) trained briefly on two slabs of the real chest CT beats the low-dose input on the third."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from medgan.cli.prepare import main as prepare
from medgan.cli.train import main
from tests.recipes._dataset import chest_slabs

CONFIG = Path(__file__).parents[2] / "configs" / "ldct_denoise.yaml"


@pytest.mark.slow
def test_recommended_denoiser_beats_the_low_dose_input_on_a_held_out_slab(tmp_path):
    # the validation slab's pair comes from medgan-prepare, calibrated to the scan's own noise as the
    # on-the-fly training pairs are, so the net is scored on the kind of noise it was trained for
    dataset = tmp_path / "ds"
    assert prepare(["ldct", "--input", str(chest_slabs(tmp_path)), "--output", str(dataset), "--dose", "0.25",
                    "--split", "0.34,0.33,0.33", "--views", "180", "--no-progress"]) == 0
    run = tmp_path / "run"
    code = main([
        "--config", str(CONFIG), f"data.root={dataset}", f"run.dir={run}", "seed=0",
        "data.patch_size=[32,32]", "data.batch_size=4", "data.samples_per_epoch=1200", "data.val_max_slices=3",
        "data.dose_pairs.pixel_range=[2.5,3.5]", "data.dose_pairs.size_multiple=128", "data.dose_pairs.max_size=128",
        "data.dose_pairs.simulator={views: 180}", "data.dose_pairs.dose_range=[0.2,0.3]",
        "nets.generator.channels=[8,16,32]", "trainer.max_steps=300", "trainer.accelerator=cpu",
        "trainer.devices=1", "trainer.enable_progress_bar=false", "validation.panels=0", "validation.window=chest",
    ])
    assert code == 0
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("val/rmse")]
    last = {k: float(v) for k, v in rows[-1].items() if k.startswith("val/")}
    assert last["val/input_rmse"] > 10.0  # the noise is really there
    assert last["val/rmse"] < last["val/input_rmse"]
    assert last["val/ssim"] > last["val/input_ssim"]
    assert last["val/psnr"] > last["val/input_psnr"]
    assert (run / "model" / "model.safetensors").is_file()
