"""``medgan-demo``: the README's main command, end to end on the real chest CT that ships in slicerio.

1. cut the scan (128 x 128 x 34 voxels, HU) into four slabs that stand in for four patients;
2. ``medgan-prepare ldct``: simulate 10%-dose scans in the projection domain, split by "patient" (two for
   training, one for validation, one held out for the test);
3. ``medgan-prepare unpaired``: the low-dose scan of one training patient and the full-dose scan of the
   other become the two piles - the CycleGAN never sees both doses of one patient;
4. ``medgan-train`` the unpaired CycleGAN (CPU-sized residual nets), and the supervised denoiser on the
   paired training patients for comparison;
5. ``medgan-infer`` both on the held-out slab (NRRD, and the CycleGAN also as a derived DICOM series of the
   same study after ``medgan-convert`` turned the low-dose slab into DICOM);
6. ``medgan-eval`` in the chest window against full dose, a table input / CycleGAN / supervised, a figure.

One real scan is all a dependency ships, so this shows the machinery, not a clinical result: the four
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
SLABS = ("A", "B", "C", "D")
#: CPU-sized CycleGAN: the config file keeps the reference (GPU) settings, the demo overrides them
TRAIN_OVERRIDES = (
    "data.patch_size=[48,48]",
    "data.num_workers=0",
    "trainer.val_check_interval=100",
    "nets.generator.channels=[16,32,64]",  # the config's residual U-Net, narrower
    "nets.discriminator.feature_size=32",
    "nets.discriminator.num_layers=1",  # a 16x16 receptive field: num_layers=2 drifted in CPU-length runs
    "optim.lr=2e-4",
    "validation.panels=2",
)
#: the supervised comparison: configs/ldct_denoise.yaml when present, else RED-CNN's recipe with a light net
SUPERVISED_CONFIGS = ("ldct_denoise.yaml", "ldct_redcnn.yaml")
SUPERVISED_OVERRIDES = {
    # the demo's pairs are prepared once (10% dose): on-the-fly simulation per sample (the config's default,
    # for generalisation across scanners) costs seconds per iteration on a CPU
    "ldct_denoise.yaml": ("data.dose_pairs=null", "data.patch_size=[64,64]", "data.batch_size=4",
                          "data.num_workers=0", "validation.panels=0"),
    "ldct_redcnn.yaml": (
        "data.patch_size=[64,64]",
        "data.batch_size=4",
        "data.num_workers=0",
        "nets.generator={type: rescnn_lite, feature_size: 32, num_layers: 8, norm: none}",
        "optim.lr=5e-4",
        "validation.panels=0",
    ),
}


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
    # 300: the length measured in docs/training.md ("paired or unpaired?"); the first sixth trains D alone
    p.add_argument("--steps", type=int, default=300, help="CycleGAN training iterations (default 300)")
    p.add_argument("--supervised-steps", type=int, default=400,
                   help="training iterations of the supervised denoiser shown beside it (default 400)")
    # 10% is the chest dose of the TCIA LDCT data (ldct-benchmark); 25% there is for abdomen and head
    p.add_argument("--dose", type=float, default=0.1, help="simulated dose fraction (default 0.1, as TCIA chest)")
    # medgan-prepare fits the full-dose photon budget to the scan's own noise; a fixed number per mm^2 of
    # detector would give this 3 mm x 10 mm scan almost no added noise
    p.add_argument("--photons", type=float, default=None,
                   help="full-dose photons per mm^2 per view (default: fitted to the scan's own noise)")
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
    n = len(SLABS)
    if depth < 3 * n:
        raise InputError(f"{src}: the demo needs at least {3 * n} slices to cut {n} slabs, got {depth}")
    folder.mkdir(parents=True)
    paths = []
    for i, name in enumerate(SLABS):
        start, stop = i * depth // n, (i + 1) * depth // n
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


def _figure(low: Path, outputs: dict[str, Path], full: Path, path: Path, window: tuple[float, float]) -> Path:
    from medgan.data.orientation import reorient
    from medgan.figures import save_panel
    from medgan.io import read_volume

    def centre(p: Path):
        v = read_volume(p)
        image, _ = reorient(v.as_tensor(), v.affine)  # L-P-S: image.T is the radiological view
        return image[0, :, :, image.shape[-1] // 2].numpy()

    rows = [{"input": centre(low), "output": centre(out), "target": centre(full)} for out in outputs.values()]
    title = "test slab, centre slice: low dose / output / full dose; rows: " + ", ".join(outputs)
    return save_panel(path, rows, window, title=title)


def _supervised_config(configs: Path) -> Path:
    """The supervised denoiser's config: the first of :data:`SUPERVISED_CONFIGS` that exists."""
    for name in SUPERVISED_CONFIGS:
        if (configs / name).is_file():
            return configs / name
    raise InputError(f"config not found: {configs / SUPERVISED_CONFIGS[-1]} (run the demo from a source checkout)")


def _piles(dataset: Path, folder: Path) -> tuple[Path, Path]:
    """The low-dose scan of the first training patient and the full-dose scan of the second, as two piles."""
    train = sorted(p.name for p in (dataset / "train" / "source").iterdir())
    if len(train) < 2:
        raise InputError(f"{dataset}/train: the demo needs two training patients, got {len(train)}")
    low, full = folder / "low", folder / "full"
    for pile, role, name in ((low, "source", train[0]), (full, "target", train[1])):
        pile.mkdir(parents=True)
        shutil.copy2(dataset / "train" / role / name, pile / name)
    return low, full


def table(rows: dict[str, dict[str, float]]) -> str:
    """The demo's result table: one line per method, RMSE (HU), PSNR (dB) and SSIM in the chest window."""
    lines = [f"  {'':<25} {'RMSE HU':>8} {'PSNR dB':>8} {'SSIM':>7}"]
    lines += [f"  {name:<25} {m['rmse']:>8.1f} {m['psnr']:>8.2f} {m['ssim']:>7.3f}" for name, m in rows.items()]
    return "\n".join(lines)


def _scan_noise_hu(path: Path) -> float:
    """Full-dose noise sigma (HU) of a scan, measured on all its slices (:mod:`medgan.transforms.noise_level`)."""
    import numpy as np

    from medgan.io import read_volume
    from medgan.transforms.noise_level import estimate_noise_hu

    return estimate_noise_hu(np.moveaxis(np.asarray(read_volume(path)[0]), -1, 0))


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from medgan.cli import convert, infer, prepare, train
    from medgan.cli import eval as eval_cli
    from medgan.config import parse_window

    src = Path(args.input) if args.input else embedded_ct_path()
    out = Path(args.output)
    configs = Path(__file__).resolve().parents[2] / "configs"
    config = configs / "ldct_cyclegan.yaml"
    if not config.is_file():
        raise InputError(f"config not found: {config} (run the demo from a source checkout)")
    supervised = _supervised_config(configs)
    started = time.perf_counter()
    _prepare_output(out)

    t = _step(f"1/6 {len(SLABS)} slabs of {src.name} as {len(SLABS)} stand-in patients")
    _write_slabs(src, out / "scans")
    print(f"   wrote {out / 'scans'} ({time.perf_counter() - t:.0f} s)")

    t = _step(f"2/6 medgan-prepare ldct: simulated dose {args.dose:g} (projection-domain Poisson + electronic noise)")
    paired = out / "dataset_paired"
    if args.photons is not None:
        photons = ["--photons", str(args.photons)]
    else:
        # the slabs are one acquisition: measure its noise once on the whole scan. A slab through the
        # lungs alone holds too little homogeneous soft tissue to measure it on (its estimate read 2-10x high)
        photons = ["--noise-hu", f"{_scan_noise_hu(src):.2f}"]
        print(f"   full-dose noise of the whole scan: {photons[1]} HU (soft tissue), used for every slab")
    _call(prepare.main, ["ldct", "--input", str(out / "scans"), "--output", str(paired), "--dose", str(args.dose),
                         *photons, "--split", "0.5,0.25,0.25", "--seed", "0", "--no-progress"],
          "medgan-prepare ldct")
    print(f"   ({time.perf_counter() - t:.0f} s)")

    t = _step("3/6 medgan-prepare unpaired: low dose of one training patient, full dose of the other")
    low, full = _piles(paired, out / "piles")
    unpaired = out / "dataset_unpaired"
    _call(prepare.main, ["unpaired", "--low", str(low), "--full", str(full), "--pairs", str(paired),
                         "--split", "1,0,0", "--output", str(unpaired), "--no-progress"], "medgan-prepare unpaired")
    print(f"   low-dose pile {low.name}/{next(low.iterdir()).name}, full-dose pile {full.name}/"
          f"{next(full.iterdir()).name} ({time.perf_counter() - t:.0f} s)")

    t = _step(f"4/6 medgan-train {config.name} (unpaired, {args.steps} iterations) and {supervised.name} "
              f"(paired, {args.supervised_steps} iterations) on the CPU")
    run, run_sup = out / "run", out / "run_supervised"
    _call(train.main, ["--config", str(config), f"data.root={unpaired}", f"run.dir={run}",
                       f"trainer.max_steps={args.steps}", f"recipe.adversarial_warmup={max(1, args.steps // 6)}",
                       *TRAIN_OVERRIDES], "medgan-train (CycleGAN)")
    print(f"   CycleGAN ({time.perf_counter() - t:.0f} s)")
    t_sup = time.perf_counter()
    _call(train.main, ["--config", str(supervised), f"data.root={paired}", f"run.dir={run_sup}",
                       f"trainer.max_steps={args.supervised_steps}", "trainer.val_check_interval=null",
                       *SUPERVISED_OVERRIDES[supervised.name]], "medgan-train (supervised)")
    print(f"   supervised ({time.perf_counter() - t_sup:.0f} s)")

    t = _step("5/6 medgan-infer on the test slab: NRRD in -> NRRD out, DICOM series in -> derived DICOM series out")
    (test_low,) = sorted((paired / "test" / "source").iterdir())
    test_full = paired / "test" / "target" / test_low.name
    denoised = out / "denoised" / test_low.name
    denoised_sup = out / "denoised_supervised" / test_low.name
    # model_best: the step with the best label-free gain (validation.monitor: unpaired_gain_db), a choice
    # that needs no full-dose target; the untrained residual generator is the identity, so at worst it
    # returns the input
    model = run / "model_best"
    _call(infer.main, ["--model", str(model), "--input", str(test_low), "--output", str(denoised)],
          "medgan-infer")
    _call(infer.main, ["--model", str(run_sup / "model"), "--input", str(test_low), "--output", str(denoised_sup)],
          "medgan-infer")
    dicom_low, dicom_out = out / "dicom" / "low_dose", out / "dicom" / "denoised"
    _call(convert.main, [str(test_low), str(dicom_low), "--format", "dicom", "--description", "simulated low dose"],
          "medgan-convert")
    _call(infer.main, ["--model", str(model), "--input", str(dicom_low), "--output", str(dicom_out)],
          "medgan-infer")
    print(f"   ({time.perf_counter() - t:.0f} s)")

    t = _step("6/6 medgan-eval in the chest window (ldct-benchmark protocol)")
    window = parse_window("chest")
    scores = {}
    for name, pred in (("eval.csv", denoised), ("eval_supervised.csv", denoised_sup)):
        _call(eval_cli.main, ["--pred", str(pred), "--target", str(test_full), "--input", str(test_low),
                              "--window", "chest", "--output", str(out / name)], "medgan-eval")
        scores[name] = _mean_row(out / name)
    figure = _figure(test_low, {"CycleGAN": denoised, "supervised": denoised_sup}, test_full,
                     out / "test_slab.png", window)
    print(f"   ({time.perf_counter() - t:.0f} s)")

    print(f"\nmedgan-demo done in {time.perf_counter() - started:.0f} s. What it wrote under {out}/:")
    rows = [
        ("dataset_paired/", "simulated low/full-dose pairs, split by patient (dataset.json)"),
        ("dataset_unpaired/", "the CycleGAN's data: low dose of one patient, full dose of another"),
        ("run/checkpoints/last.ckpt", "training state (medgan-train --resume continues it)"),
        ("run/model_best/", "CycleGAN package of the best label-free gain (run/model/: final weights)"),
        ("run/samples/", "validation panels and diversity plot (PNG)"),
        ("run/tb/", f"TensorBoard logs: tensorboard --logdir {run / 'tb'}"),
        ("run/metrics.csv", "losses and validation metrics per step"),
        ("run_supervised/", f"the supervised denoiser ({supervised.name}) trained on the pairs"),
        (f"denoised/{test_low.name}", "CycleGAN output of the test slab (NRRD, HU, same geometry)"),
        ("denoised_supervised/", "supervised output of the test slab"),
        ("dicom/denoised/", "derived DICOM series of the same study (for PACS / 3D Slicer)"),
        ("eval.csv, eval_supervised.csv", "SSIM / PSNR / RMSE per case, output and input vs full dose"),
        ("test_slab.png", "low dose / output / full dose / difference, chest window"),
    ]
    for name, what in rows:
        print(f"  {name:<30} {what}")
    cyc, sup = scores["eval.csv"], scores["eval_supervised.csv"]
    low_dose = {k: cyc[f"input_{k}"] for k in ("rmse", "psnr", "ssim")}
    print(f"\nheld-out test slab vs full dose (chest window, {test_low.name}):")
    print(table({f"low dose ({args.dose:g})": low_dose, "CycleGAN (unpaired)": cyc,
                 f"supervised ({supervised.stem})": sup}))
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
