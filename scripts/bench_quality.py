"""Held-out real-CT denoising benchmark: trained medgan configs against classical filters, one run.

Leaves scanners out. Training: slicerio's chest CT (``CTChest4.nrrd``, 3.05 mm pixels, 10 mm slices) and
pydicom's ``J2K_pixelrep_mismatch.dcm`` head slice (0.43 mm). Test: pydicom's ``693_J2KI.dcm`` (512², 0.48 mm,
another head scan) and ``CT_small.dcm`` (128², 0.66 mm, GE). Low-dose test inputs come from the whole
``medgan-simulate`` command (calibrated relative mode) at each dose. For every candidate config the whole
``medgan-train`` command runs with ``trainer.max_time`` as its budget, then the whole ``medgan-infer``
command denoises each test input (a subprocess each, timed). Beside them: the low-dose input, BM3D with
the oracle sigma (std of the added noise in the body) and with an estimated sigma (scikit-image's wavelet
estimate), non-local means and TV (scikit-image, estimated sigma). Metrics: :mod:`medgan.metrics`
(ldct-benchmark protocol) in the head and abdomen windows, RMSE in HU.

Speed: seconds per 512² slice of the whole ``medgan-infer`` command on a one-slice file and on a
``--slices``-slice 512² volume (torch and ``--backend onnx``), against BM3D's seconds on one slice.

    .venv/bin/python scripts/bench_quality.py                 # 14 training minutes per candidate
    .venv/bin/python scripts/bench_quality.py --quick         # a smoke run: 1 minute, one candidate, dose 0.25

Nets with a noise-level guard are also run with the guard off (``--guards 0``, the default; other factors
re-infer the same trained weights with that ``noise_guard``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CANDIDATES = {
    "ldct_denoise": ("configs/ldct_denoise.yaml", []),
    "ldct_denoise 24-48-96": ("configs/ldct_denoise.yaml", ["nets.generator.channels=[24,48,96]"]),  # shipped before
    "ldct_denoise, doses 0.1-1": ("configs/ldct_denoise.yaml", ["data.dose_pairs.dose_range=[0.1,1.0]"]),
    # scans never resampled finer than their own pixel: the 3 mm chest stays at 3 mm instead of 0.8-1.5 mm
    "ldct_denoise, no upsampling": ("configs/ldct_denoise.yaml", ["data.dose_pairs.upsample=false"]),
    # the input's measured noise sigma as an extra channel (FFDNet-style, measured not given)
    "ldct_denoise, noise level input": ("configs/ldct_denoise.yaml", ["nets.generator.noise_level_input=true"]),
    # ... and nearly clean inputs in training, which the level channel lets the net tell from noisy ones
    "ldct_denoise, noise level input, doses 0.1-1": (
        "configs/ldct_denoise.yaml", ["nets.generator.noise_level_input=true", "data.dose_pairs.dose_range=[0.1,1.0]"]),
    # unpaired: low-dose sources and full-dose targets drawn independently; CPU-sized as medgan-demo's
    "ldct_cyclegan": (
        "configs/ldct_cyclegan.yaml",
        ["data.patch_size=[64,64]", "data.num_workers=0", "nets.generator.channels=[16,32,64]",
         "nets.discriminator.feature_size=32", "nets.discriminator.num_layers=1", "recipe.adversarial_warmup=100",
         "trainer.val_check_interval=200", "validation.panels=0", "validation.window=abdomen"],
    ),
    "ldct_redcnn + rescnn_lite": (
        "configs/ldct_redcnn.yaml",
        ["nets.generator={type: rescnn_lite, feature_size: 32, num_layers: 8, norm: none}", "data.batch_size=8",
         "data.samples_per_epoch=1600", "trainer.val_check_interval=null", "trainer.max_steps=3000",
         "data.num_workers=0", "optim.lr=1e-3", "validation.window=abdomen"],
    ),
}
WINDOWS = ("head", "abdomen")


def run(cmd: list[str], log: Path) -> float:
    """Run a whole command, its output to ``log``; returns wall seconds; exits on failure."""
    t = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{log.read_text()[-2000:]}")
    return time.perf_counter() - t


def read_hu(path: Path) -> np.ndarray:
    from medgan.io import read_volume

    return read_volume(str(path)).as_tensor()[0].numpy().astype(np.float32)  # (X, Y, Z)


def scans() -> dict[str, Path]:
    import slicerio
    from pydicom.data import get_testdata_file

    return {
        "chest": Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd",
        "head_train": Path(get_testdata_file("J2K_pixelrep_mismatch.dcm")),
        "693_J2KI": Path(get_testdata_file("693_J2KI.dcm")),
        "CT_small": Path(get_testdata_file("CT_small.dcm")),
    }


def simulate(src: Path, out: Path, dose: float, seed: int, logs: Path) -> Path:
    if out.exists():  # a kept --workdir: the same seed gives the same file
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    run([str(BIN / "medgan-simulate"), "--input", str(src), "--output", str(out), "--dose", str(dose),
         "--seed", str(seed), "--overwrite"], logs / f"simulate_{out.stem}.log")
    return out


def make_dataset(root: Path, paths: dict[str, Path], logs: Path) -> Path:
    """``root/{train,val}/{source,target}``: targets are the full-dose scans (the net trains on pairs made
    on the fly from them, ``data.dose_pairs``); sources are one quarter-dose simulation (validation uses
    them, and the layout needs them)."""
    from medgan.io import read_volume, write_volume

    cases: dict[str, list[dict]] = {"train": [], "val": []}
    for split, name in (("train", "chest"), ("train", "head_train"), ("val", "head_train")):
        target = root / split / "target" / f"{name}.nrrd"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_volume(read_volume(str(paths[name])), target)
        simulate(target, root / split / "source" / f"{name}.nrrd", 0.25, 7, logs)
        cases[split].append({"name": name, "patient": f"{split}_{name}", "label": 0})
    (root / "dataset.json").write_text(json.dumps({"task": "ldct", "cases": cases}))
    return root


def max_time(minutes: float) -> str:
    s = int(round(minutes * 60))
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def classical(low: np.ndarray, full: np.ndarray, only: str | None = None) -> dict[str, tuple[np.ndarray, float]]:
    """Baseline outputs (HU) and seconds for one slice, or for the baseline named ``only``; filters work on
    HU / 1000."""
    import bm3d
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, estimate_sigma

    x = low / 1000.0
    body = full > -900.0
    oracle = float(np.std((low - full)[body])) / 1000.0
    est = float(estimate_sigma(x))
    out = {}
    for name, fn in (
        ("BM3D (oracle sigma)", lambda: bm3d.bm3d(x, sigma_psd=oracle)),
        ("BM3D (estimated sigma)", lambda: bm3d.bm3d(x, sigma_psd=est)),
        ("NLM (estimated sigma)", lambda: denoise_nl_means(x, h=0.8 * est, sigma=est, fast_mode=True,
                                                           patch_size=5, patch_distance=6)),
        ("TV Chambolle (weight = estimated sigma)", lambda: denoise_tv_chambolle(x, weight=est)),
    ):
        if only is not None and name != only:
            continue
        t = time.perf_counter()
        y = fn()
        out[name] = (np.asarray(y, dtype=np.float32) * 1000.0, time.perf_counter() - t)
    return out


def scores(pred: np.ndarray, full: np.ndarray) -> dict[str, float]:
    from medgan.config import NAMED_WINDOWS
    from medgan.metrics import slice_metrics

    m: dict[str, float] = {}
    for win in WINDOWS:
        c, w = NAMED_WINDOWS[win]
        r = slice_metrics(pred, full, (c - w / 2, c + w / 2))
        m[f"{win}_psnr"], m[f"{win}_ssim"], m["rmse"] = r["psnr"], r["ssim"], r["rmse"]
    return m


def speed_volume(low_path: Path, out: Path, slices: int) -> Path:
    """A ``slices``-slice 512² volume of the low-dose test slice (shifted copies, so slices differ)."""
    from medgan.io import read_volume, write_volume

    vol = read_volume(str(low_path))
    data = torch.cat([torch.roll(vol.as_tensor(), shifts=k, dims=1) for k in range(slices)], dim=-1)
    affine = vol.affine.clone()
    affine[2, 2] = 1.0
    from monai.data import MetaTensor

    write_volume(MetaTensor(data, affine=affine), out, overwrite=True)
    return out


def with_guard(model: Path, factor: float) -> Path | None:
    """A copy of the package ``model`` with the noise-level guard's factor set to ``factor`` (0: off), or
    ``None`` if its net has no guard: one training run shows what the guard changes."""
    import shutil

    import yaml

    manifest = yaml.safe_load((model / "medgan.yaml").read_text())
    net = manifest["nets"][manifest["infer_net"]]
    if "noise_guard" not in net:
        return None
    out = model.parent / f"model_guard_{factor:g}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model, out)
    net["noise_guard"] = float(factor)
    (out / "medgan.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=14.0, help="training wall time per candidate (trainer.max_time)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 minute, the first candidate, dose 0.25")
    p.add_argument("--candidates", nargs="*", default=None, help=f"subset of: {', '.join(CANDIDATES)}")
    p.add_argument("--doses", nargs="*", type=float, default=[0.25, 0.1])
    p.add_argument("--slices", type=int, default=32, help="slices of the 512² speed volume")
    p.add_argument("--guards", nargs="*", type=float, default=[0.0],
                   help="also infer with these noise_guard factors (0: off) from the same trained weights")
    p.add_argument("--workdir", default=None, help="keep everything here (default: a temporary folder)")
    args = p.parse_args()
    names = args.candidates or list(CANDIDATES)
    minutes, doses, slices, guards = args.minutes, args.doses, args.slices, args.guards
    if args.quick:
        names, minutes, doses, slices = names[:1], min(minutes, 1.0), [0.25], min(slices, 8)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        sys.exit(f"--candidates: unknown {unknown}; allowed: {list(CANDIDATES)}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_quality_"))
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MEDGAN_CACHE_DIR", str(work / "cache"))  # projectors built once for all commands
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    load = os.getloadavg()[0]
    print(f"workdir {work}; load average {load:.1f} on {os.cpu_count()} CPUs; training {minutes:g} min per candidate")

    paths = scans()
    dataset = make_dataset(work / "dataset", paths, logs)
    tests = ("693_J2KI", "CT_small")
    full = {t: read_hu(paths[t])[..., 0] for t in tests}
    low_paths = {(t, d): simulate(paths[t], work / "test" / f"{t}_d{d}.nrrd", d, 11, logs) for t in tests for d in doses}
    low = {k: read_hu(v)[..., 0] for k, v in low_paths.items()}

    rows: dict[tuple[str, float], dict[str, dict[str, float]]] = {}
    seconds: dict[str, float] = {}  # baselines: one call on the 512² slice
    one_slice: dict[str, float] = {}  # medgan-infer on the one-slice file
    per_slice: dict[str, dict[str, float]] = {}  # medgan-infer per slice of the speed volume, per backend
    for (t, d), x in low.items():
        rows.setdefault((t, d), {})["low-dose input"] = scores(x, full[t])
        for name, (y, s) in classical(x, full[t]).items():
            rows[(t, d)][name] = scores(y, full[t])
            if t == "693_J2KI" and d == doses[0]:
                seconds[name] = s

    for name in names:
        config, overrides = CANDIDATES[name]
        run_dir = work / "runs" / name.replace(" ", "_").replace("+", "")
        t_train = run([str(BIN / "medgan-train"), "--config", config, "--overwrite", f"data.root={dataset}",
                       f"run.dir={run_dir}",
                       f"trainer.max_time={max_time(minutes)}", "trainer.enable_progress_bar=false",
                       "trainer.accelerator=cpu", "trainer.devices=1", *overrides], logs / f"train_{run_dir.name}.log")
        print(f"trained {name} in {t_train:.0f} s", flush=True)
        model = run_dir / "model"
        variants = {k: with_guard(model, k) for k in guards}
        for (t, d), src in low_paths.items():
            out = work / "pred" / run_dir.name / f"{t}_d{d}.nrrd"
            out.parent.mkdir(parents=True, exist_ok=True)
            s = run([str(BIN / "medgan-infer"), "--model", str(model), "--input", str(src), "--output", str(out),
                     "--overwrite", "--no-progress"], logs / f"infer_{run_dir.name}_{t}_{d}.log")
            rows[(t, d)][f"medgan-infer {name}"] = scores(read_hu(out)[..., 0], full[t])
            if t == "693_J2KI" and d == doses[0]:
                one_slice[name] = s
            for k, variant in variants.items():
                if variant is None:
                    continue
                out = out.with_name(f"{t}_d{d}_guard_{k:g}.nrrd")
                run([str(BIN / "medgan-infer"), "--model", str(variant), "--input", str(src), "--output",
                     str(out), "--overwrite", "--no-progress"], logs / f"infer_{run_dir.name}_{t}_{d}_{k:g}.log")
                label = "guard off" if k == 0 else f"noise_guard={k:g}"
                rows[(t, d)][f"medgan-infer {name}, {label}"] = scores(read_hu(out)[..., 0], full[t])
        vol = speed_volume(low_paths[("693_J2KI", doses[0])], work / "test" / f"speed_{slices}.nrrd", slices)
        per = per_slice[name] = {}
        for backend in ("torch", "onnx"):
            out = work / "pred" / run_dir.name / f"speed_{backend}.nrrd"
            per[backend] = run([str(BIN / "medgan-infer"), "--model", str(model), "--input", str(vol), "--output",
                                str(out), "--overwrite", "--no-progress", "--backend", backend],
                               logs / f"speed_{run_dir.name}_{backend}.log") / slices

    for (t, d), methods in rows.items():
        print(f"\n### {t}, dose {d} (held out; PSNR dB / SSIM in the window, RMSE HU)\n")
        print("| method | head PSNR | head SSIM | abdomen PSNR | abdomen SSIM | RMSE HU |")
        print("|---|---|---|---|---|---|")
        for name, m in methods.items():
            print(f"| {name} | {m['head_psnr']:.2f} | {m['head_ssim']:.4f} | {m['abdomen_psnr']:.2f} | "
                  f"{m['abdomen_ssim']:.4f} | {m['rmse']:.1f} |")
    print(f"\n### Seconds per 512² slice (693_J2KI, dose {doses[0]}; load average at start {load:.1f})\n")
    print(f"| method | one slice | per slice of a {slices}-slice volume, torch / onnx backend |")
    print("|---|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {s:.2f} | |")
    for name in names:
        print(f"| medgan-infer {name} (whole command) | {one_slice[name]:.2f} | "
              f"{per_slice[name]['torch']:.3f} / {per_slice[name]['onnx']:.3f} |")
    bm3d_s = seconds["BM3D (oracle sigma)"]
    for name in names:
        best = min(per_slice[name].values())
        print(f"{name}: BM3D / medgan-infer = {bm3d_s / one_slice[name]:.1f}x on one slice (process start "
              f"included), {bm3d_s / best:.1f}x per slice of the {slices}-slice volume (faster backend)")


if __name__ == "__main__":
    main()
