"""Super-resolution x2 on real CT the model never saw, through the user's whole commands, against bicubic.

Data (all real CT shipped with the installed packages):

- train: slicerio's ``CTChest4.nrrd`` (slices 0-25) and pydicom's ``CT_small.dcm`` (one GE slice);
- val (model selection, the curve below): ``CTChest4.nrrd`` slices 26-33, a held-out slab;
- test: pydicom's ``693_J2KI.dcm`` and ``J2K_pixelrep_mismatch.dcm``, two 512² head slices of other scanners.

Each set goes through ``medgan-prepare sr --scale 2`` (2x2 block mean, docs/super_resolution.md), the model
is trained by ``medgan-train --config configs/sr.yaml trainer.max_time=...`` and applied by ``medgan-infer``
to the test sources; the written files are compared with the 512² originals. Baselines on the same
low-resolution files: bicubic as PyTorch (a = -0.75) and MATLAB/PIL (Keys, a = -0.5) do it, and cubic
B-spline interpolation (SciPy ``ndimage.zoom(order=3)``), which is also the net's fixed base, and that
B-spline projected onto the images whose 2x2 block means equal the input (what the untrained net of
``configs/sr.yaml`` outputs). Metrics: :func:`medgan.metrics.slice_metrics` (ldct-benchmark
protocol) in the head (C40/W80) and abdomen (C50/W400) windows. The validation curve compares every
validation step's PSNR with bicubic on the same validation slices.

    .venv/bin/python scripts/bench_sr.py                 # 14 training minutes (the goal's setting)
    .venv/bin/python scripts/bench_sr.py --minutes 3     # shorter
    .venv/bin/python scripts/bench_sr.py --quick         # 1 minute, a smoke run
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

WINDOWS = {"head": "head", "abdomen": "abdomen"}
TRAIN_SLICES, VAL_SLICES = (0, 26), (26, 34)
VAL_WINDOW = "abdomen"  # configs/sr.yaml validation.window


def _run(cmd: list[str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - start


def make_inputs(work: Path) -> dict[str, Path]:
    """Folders of scans for medgan-prepare: train, val, test."""
    import SimpleITK as sitk
    import slicerio
    from pydicom.data import get_testdata_file

    chest = sitk.ReadImage(str(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"))
    folders = {name: work / "scans" / name for name in ("train", "val", "test")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(chest[:, :, TRAIN_SLICES[0]:TRAIN_SLICES[1]], str(folders["train"] / "chest_a.nrrd"))
    sitk.WriteImage(chest[:, :, VAL_SLICES[0]:VAL_SLICES[1]], str(folders["val"] / "chest_b.nrrd"))
    for split, name in (("train", "CT_small.dcm"), ("test", "693_J2KI.dcm"), ("test", "J2K_pixelrep_mismatch.dcm")):
        case = folders[split] / Path(name).stem.replace("_", "-")  # one DICOM series folder per case
        case.mkdir()
        shutil.copy(get_testdata_file(name), case / name)
    return folders


def prepare(work: Path, folders: dict[str, Path], log: Path) -> Path:
    """One SR dataset: train from ``folders['train']``, val and test from theirs (prepared alone, moved in)."""
    fractions = {"train": "1,0,0", "val": "0,1,0", "test": "0,0,1"}
    parts = {}
    for split, folder in folders.items():
        parts[split] = work / f"prepared_{split}"
        _run([str(BIN / "medgan-prepare"), "sr", "--input", str(folder), "--output", str(parts[split]),
              "--scale", "2", "--split", fractions[split], "--format", "nifti", "--no-progress"], log)
    dataset = parts["train"]
    for split in ("val", "test"):
        for role in ("source", "target"):
            for item in (parts[split] / split / role).iterdir():
                shutil.move(str(item), dataset / split / role / item.name)
    return dataset


def _hu(path: Path) -> np.ndarray:
    from medgan.io import read_volume

    return read_volume(path)[0].numpy().astype(np.float32)  # (X, Y, Z), RAS


BICUBIC, SPLINE = "bicubic (PyTorch, a=-0.75)", "cubic B-spline (SciPy)"
CONSISTENT = "B-spline + block-mean projection (untrained net)"


def baselines(source: np.ndarray) -> dict[str, np.ndarray]:
    """Up-sampled ``source`` (X, Y, Z) HU by each fixed interpolator, clipped like the models' inputs."""
    import torch.nn.functional as F
    from scipy import ndimage

    from medgan.nets.upsample import interpolate_up

    clipped = np.clip(source, -1024.0, 3071.0)
    x = torch.from_numpy(clipped).permute(2, 0, 1)[:, None]  # (Z, 1, X, Y)
    torch_bicubic = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)[:, 0].permute(1, 2, 0)
    keys = interpolate_up(x, 2, "cubic")[:, 0].permute(1, 2, 0)
    spline = [ndimage.zoom(clipped[..., z], 2, order=3, mode="nearest", grid_mode=True) for z in range(x.shape[0])]
    spline_t = torch.from_numpy(np.stack(spline, -1).astype(np.float32)).permute(2, 0, 1)[:, None]
    # the untrained configs/sr.yaml net: B-spline projected so that its 2x2 block means equal the input
    consistent = spline_t - F.interpolate(F.avg_pool2d(spline_t, 2) - x, scale_factor=2, mode="nearest")
    return {BICUBIC: torch_bicubic.numpy(), "bicubic (Keys/MATLAB, a=-0.5)": keys.numpy(),
            SPLINE: spline_t[:, 0].permute(1, 2, 0).numpy(), CONSISTENT: consistent[:, 0].permute(1, 2, 0).numpy()}


def scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean over slices of PSNR/SSIM in each window."""
    from medgan.config import parse_window
    from medgan.metrics import slice_metrics

    out = {}
    for name, window in WINDOWS.items():
        per = [slice_metrics(pred[..., z], target[..., z], parse_window(window)) for z in range(target.shape[-1])]
        out[f"{name}_psnr"] = float(np.mean([m["psnr"] for m in per]))
        out[f"{name}_ssim"] = float(np.mean([m["ssim"] for m in per]))
    return out


def validation_curve(run: Path, dataset: Path, window: str) -> tuple[list[tuple[int, float]], dict[str, float]]:
    """``[(step, val PSNR)]`` of the run and the fixed interpolators' PSNR on the same slices and window."""
    from medgan.config import parse_window
    from medgan.metrics import slice_metrics

    fixed: dict[str, list[float]] = {}
    for src in sorted((dataset / "val" / "source").iterdir()):
        hr = _hu(dataset / "val" / "target" / src.name)
        for name, up in baselines(_hu(src)).items():
            fixed.setdefault(name, []).extend(
                slice_metrics(up[..., z], hr[..., z], parse_window(window))["psnr"] for z in range(hr.shape[-1]))
    rows = []
    with open(run / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if row.get("val/psnr"):
                rows.append((int(float(row["step"])) + 1, float(row["val/psnr"])))  # iterations done
    return rows, {k: float(np.mean(v)) for k, v in fixed.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=14.0, help="trainer.max_time (default 14)")
    ap.add_argument("--quick", action="store_true", help="1 training minute, a smoke run")
    ap.add_argument("--config", default=str(ROOT / "configs" / "sr.yaml"))
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one, removed)")
    ap.add_argument("overrides", nargs="*", help="extra medgan-train key=value overrides")
    args = ap.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_sr_"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    try:
        dataset = work / "prepared_train" if (work / "prepared_train" / "test").exists() else prepare(work, make_inputs(work), log)
        run = work / "run"
        seconds = int(round(minutes * 60))
        max_time = f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        t_train = _run([str(BIN / "medgan-train"), "--config", args.config, f"data.root={dataset}",
                        f"run.dir={run}", f"trainer.max_time={max_time}",
                        "trainer.enable_progress_bar=false", *args.overrides], log)
        results: dict[str, dict[str, float]] = {}
        test_src = sorted((dataset / "test" / "source").iterdir())
        per_case: dict[str, list[dict[str, float]]] = {}
        t_infer = {}
        for package in ("model", "model_best"):
            if not (run / package).exists():
                continue
            out = work / f"sr_{package}"
            t_infer[package] = _run([str(BIN / "medgan-infer"), "--model", str(run / package), "--input",
                                     str(dataset / "test" / "source"), "--output", str(out), "--no-progress"], log)
            for src in test_src:
                target = _hu(dataset / "test" / "target" / src.name)
                per_case.setdefault(f"medgan-infer {package}/", []).append(scores(_hu(out / src.name), target))
        for src in test_src:
            target = _hu(dataset / "test" / "target" / src.name)
            for name, up in baselines(_hu(src)).items():
                per_case.setdefault(name, []).append(scores(up, target))
        for name, cases in per_case.items():
            results[name] = {k: float(np.mean([c[k] for c in cases])) for k in cases[0]}
        curve, fixed_val = validation_curve(run, dataset, VAL_WINDOW)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nx2 SR on {len(test_src)} held-out real 512² head slices ({', '.join(s.name for s in test_src)}); "
          f"training {minutes:g} min (medgan-train {t_train:.0f} s wall), config {Path(args.config).name}\n")
    print("| method | head PSNR | head SSIM | abdomen PSNR | abdomen SSIM |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['head_psnr']:.2f} | {r['head_ssim']:.4f} | {r['abdomen_psnr']:.2f} | "
              f"{r['abdomen_ssim']:.4f} |")
    print()
    for name, r in results.items():
        if name.startswith("medgan"):
            for ref in (BICUBIC, SPLINE, CONSISTENT):
                gaps = ", ".join(f"{w} {r[f'{w}_psnr'] - results[ref][f'{w}_psnr']:+.2f} dB" for w in WINDOWS)
                print(f"{name} PSNR vs {ref}: {gaps}")
    if curve:
        for ref in (BICUBIC, SPLINE, CONSISTENT):
            below = [s for s, v in curve if v < fixed_val[ref]]
            print(f"validation ({VAL_WINDOW} window, held-out chest slab, {len(curve)} validations): {ref} "
                  f"{fixed_val[ref]:.2f} dB; model min {min(v for _, v in curve):.2f}, last {curve[-1][1]:.2f} dB; "
                  f"below it at {len(below)} step(s){': ' + str(below[:10]) if below else ''}")
    if curve:
        print("validation curve (iterations: val PSNR): " + ", ".join(f"{s}: {v:.2f}" for s, v in curve))
    print(f"medgan-infer wall seconds: {', '.join(f'{k} {v:.1f}' for k, v in t_infer.items())} "
          "(shared machine: absolute seconds vary)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
