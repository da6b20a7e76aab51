"""``medgan-demo``: the README's main command, end to end on the real chest CT that ships in slicerio.

1. cut the scan (128 x 128 x 34 voxels, HU) into three slabs that stand in for three patients;
2. ``medgan-prepare ldct``: simulate quarter-dose scans in the projection domain and split by "patient";
3. ``medgan-train`` the unpaired CycleGAN (CPU-sized nets) on low-dose vs full-dose slices;
4. ``medgan-infer`` on the held-out test slab, written as NRRD and - after ``medgan-convert`` turned the
   low-dose slab into a DICOM series - as a derived DICOM series of the same study;
5. ``medgan-eval`` in the chest window against full dose, and a figure of the test slab.

One real scan is all a dependency ships, so this shows the machinery, not a clinical result: the three
slabs are neighbouring anatomy of one patient.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from medgan.cli._common import ArgumentParser, run_command
from medgan.errors import InputError, OutputExistsError

MARKER = ".medgan-demo"
#: CPU-sized CycleGAN: the config file keeps the reference (GPU) settings, the demo overrides them
TRAIN_OVERRIDES = (
    "data.patch_size=[64,64]",
    "data.num_workers=0",
    "trainer.val_check_interval=100",
    "nets.generator={type: rescnn_lite, channels: 32, num_layers: 8, norm: none}",
    "nets.discriminator.channels=32",
    "nets.discriminator.n_layers=1",  # a 16x16 receptive field: n_layers=2 drifted in CPU-length runs
    "optim.lr=1e-4",
    "validation.panels=2",
)


def embedded_ct_path() -> Path:
    """slicerio's chest CT (128x128x34 voxels, HU): the default input of the demo."""
    import slicerio

    return Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="medgan-demo",
        description="Prepare, train, infer and evaluate a low-dose -> full-dose CycleGAN on the chest CT that "
        "ships in slicerio (a few CPU minutes).",
    )
    p.add_argument("--output", default="demo_out", help="folder for everything the demo writes (default demo_out)")
    p.add_argument("--input", default=None, help="a full-dose CT scan to use instead of the embedded chest CT")
    # ~3.5 min on two free CPU cores; the CycleGAN only starts to clean the image in the lr-decay half
    p.add_argument("--steps", type=int, default=3000, help="training iterations (default 3000)")
    # 10% is the chest dose of the TCIA LDCT data (ldct-benchmark); 25% there is for abdomen and head
    p.add_argument("--dose", type=float, default=0.1, help="simulated dose fraction (default 0.1, as TCIA chest)")
    # The embedded scan has 3 mm pixels and 10 mm slices: at the usual 1e5 photons per ray its simulated
    # noise is far below that of the thin-slice scans denoisers are used on; fewer photons stand in for that.
    p.add_argument("--photons", type=float, default=2e4, help="full-dose photons per ray (default 2e4)")
    return p


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


class _StepFailed(Exception):
    """A sub-command returned non-zero; it has already printed its one-line reason."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(f"{what} failed with exit code {code}")
        self.code = code


def _call(main, argv: list[str], what: str) -> None:
    code = main(argv)
    if code != 0:
        raise _StepFailed(what, code)


def _prepare_output(out: Path) -> None:
    if out.exists():
        if not (out / MARKER).exists():
            raise OutputExistsError(f"{out} exists and was not written by medgan-demo; choose another --output")
        shutil.rmtree(out)  # our own earlier run: start afresh
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by medgan-demo; the demo replaces this folder on its next run\n")


def _write_slabs(src: Path, folder: Path) -> list[Path]:

    from medgan.io import read_volume, write_volume

    volume = read_volume(src)
    depth = volume.shape[-1]
    if depth < 9:
        raise InputError(f"{src}: the demo needs at least 9 slices to cut three slabs, got {depth}")
    folder.mkdir(parents=True)
    paths = []
    for i, name in enumerate(("A", "B", "C")):
        start, stop = i * depth // 3, (i + 1) * depth // 3
        slab = volume[..., start:stop]
        slab.affine = volume.affine.clone()
        slab.affine[:3, 3] = (volume.affine @ volume.affine.new_tensor([0, 0, start, 1]))[:3]
        paths.append(write_volume(slab, folder / f"{name}_chest.nrrd"))
    return paths


def _mean_row(csv_path: Path) -> dict[str, float]:
    """The ``mean`` row of a ``medgan-eval`` CSV, by column name (read back rather than scored twice)."""
    import csv

    with open(csv_path, newline="") as fh:
        (mean,) = [row for row in csv.DictReader(fh) if row["case"] == "mean"]
    return {k: float(v) for k, v in mean.items() if k not in ("case", "slices")}


def _figure(low: Path, denoised: Path, full: Path, path: Path, window: tuple[float, float]) -> Path:
    from medgan.data.orientation import reorient
    from medgan.figures import save_panel
    from medgan.io import read_volume

    views = {}
    for key, p in (("input", low), ("output", denoised), ("target", full)):
        v = read_volume(p)
        image, _ = reorient(v.as_tensor(), v.affine)  # L-P-S: image.T is the radiological view
        views[key] = image[0, :, :, image.shape[-1] // 2].numpy()
    return save_panel(path, [views], window, title="test slab, centre slice: low dose / CycleGAN / full dose")


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from medgan.cli import convert, infer, prepare, train
    from medgan.cli import eval as eval_cli
    from medgan.config import parse_window

    src = Path(args.input) if args.input else embedded_ct_path()
    out = Path(args.output)
    config = Path(__file__).resolve().parents[2] / "configs" / "ldct_cyclegan.yaml"
    if not config.is_file():
        raise InputError(f"config not found: {config} (run the demo from a source checkout)")
    started = time.perf_counter()
    _prepare_output(out)

    t = _step(f"1/5 three slabs of {src.name} as three stand-in patients")
    _write_slabs(src, out / "scans")
    print(f"   wrote {out / 'scans'} ({time.perf_counter() - t:.0f} s)")

    t = _step(f"2/5 medgan-prepare ldct: simulated dose {args.dose:g} (projection-domain Poisson + electronic noise)")
    dataset = out / "dataset"
    _call(prepare.main, ["ldct", "--input", str(out / "scans"), "--output", str(dataset), "--dose", str(args.dose),
                         "--photons", str(args.photons), "--split", "0.34,0.33,0.33", "--seed", "0"], "medgan-prepare")
    print(f"   ({time.perf_counter() - t:.0f} s)")

    t = _step(f"3/5 medgan-train {config.name}: CycleGAN, {args.steps} iterations on the CPU")
    run = out / "run"
    _call(train.main, ["--config", str(config), f"data.root={dataset}", f"run.dir={run}",
                       f"trainer.max_steps={args.steps}", *TRAIN_OVERRIDES], "medgan-train")
    print(f"   ({time.perf_counter() - t:.0f} s)")

    t = _step("4/5 medgan-infer on the test slab: NRRD in -> NRRD out, DICOM series in -> derived DICOM series out")
    (test_low,) = sorted((dataset / "test" / "source").iterdir())
    test_full = dataset / "test" / "target" / test_low.name
    denoised = out / "denoised" / test_low.name
    # the final weights, after the lr decay, as the CycleGAN authors use them; run/model_best (best
    # validation SSIM on the one 11-slice val slab) picked an over-smoothed step in our runs
    model = run / "model"
    _call(infer.main, ["--model", str(model), "--input", str(test_low), "--output", str(denoised)],
          "medgan-infer")
    dicom_low, dicom_out = out / "dicom" / "low_dose", out / "dicom" / "denoised"
    _call(convert.main, [str(test_low), str(dicom_low), "--format", "dicom", "--description", "simulated low dose"],
          "medgan-convert")
    _call(infer.main, ["--model", str(model), "--input", str(dicom_low), "--output", str(dicom_out)],
          "medgan-infer")
    print(f"   ({time.perf_counter() - t:.0f} s)")

    t = _step("5/5 medgan-eval in the chest window (ldct-benchmark protocol)")
    window = parse_window("chest")
    _call(eval_cli.main, ["--pred", str(denoised), "--target", str(test_full), "--input", str(test_low),
                          "--window", "chest", "--output", str(out / "eval.csv")], "medgan-eval")
    summary = _mean_row(out / "eval.csv")
    figure = _figure(test_low, denoised, test_full, out / "test_slab.png", window)
    print(f"   ({time.perf_counter() - t:.0f} s)")

    print(f"\nmedgan-demo done in {time.perf_counter() - started:.0f} s. What it wrote under {out}/:")
    rows = [
        ("dataset/", "prepared low/full-dose pairs, split by patient (dataset.json)"),
        ("run/checkpoints/last.ckpt", "training state (medgan-train --resume continues it)"),
        ("run/model/", "model package for medgan-infer --model (run/model_best/: best val SSIM)"),
        ("run/samples/", "validation panels and diversity plot (PNG)"),
        ("run/tb/", f"TensorBoard logs: tensorboard --logdir {run / 'tb'}"),
        ("run/metrics.csv", "losses and validation metrics per step"),
        (f"denoised/{test_low.name}", "CycleGAN output of the test slab (NRRD, HU, same geometry)"),
        ("dicom/denoised/", "derived DICOM series of the same study (for PACS / 3D Slicer)"),
        ("eval.csv", "SSIM / PSNR / RMSE per case, output and low-dose input vs full dose"),
        ("test_slab.png", "low dose / output / full dose / difference, chest window"),
    ]
    for name, what in rows:
        print(f"  {name:<28} {what}")
    print(
        f"\ntest slab vs full dose (chest window): RMSE {summary['input_rmse']:.1f} HU (low dose) -> "
        f"{summary['rmse']:.1f} HU (CycleGAN); SSIM {summary['input_ssim']:.3f} -> {summary['ssim']:.3f}; "
        f"PSNR {summary['input_psnr']:.2f} -> {summary['psnr']:.2f} dB"
    )
    print(f"figure: {figure}")
    return 0


def _run(argv: Sequence[str] | None) -> int:
    try:
        return _body(argv)
    except _StepFailed as failed:  # keep the sub-command's exit code (2 user error, 1 failure)
        print(f"medgan-demo: {failed}", file=sys.stderr)
        return failed.code


def main(argv: Sequence[str] | None = None) -> int:
    return run_command("medgan-demo", _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
