"""Speed of a trained denoiser against BM3D, alone: the whole ``medgan-infer`` command per 512² slice.

``scripts/bench_quality.py`` trains, scores and times in one long run; its BM3D timing is one call, made
while the rest of the run may share the CPU. This script times only the two sides, interleaved over
``--rounds`` rounds (BM3D with the oracle sigma on the 693_J2KI slice, then ``medgan-infer`` on a one-slice
file and on volumes of ``--slices`` 512² slices), and prints the minimum and median of each with the ratio
of the minima. The model is any package, e.g. the one ``bench_quality.py --workdir DIR`` trained:

    .venv/bin/python scripts/bench_denoise_speed.py --model DIR/runs/ldct_denoise/model
    .venv/bin/python scripts/bench_denoise_speed.py --model M --slices 16 64 --rounds 3 --backend onnx
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import BIN, classical, read_hu, run, scans, simulate, speed_volume  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a medgan model package (folder with medgan.yaml)")
    p.add_argument("--slices", nargs="*", type=int, default=[16, 64], help="slices of the 512² speed volumes")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dose", type=float, default=0.25)
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    p.add_argument("--workdir", default=None, help="keep the inputs and outputs here (default: a temporary folder)")
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_speed_"))
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    full_path = scans()["693_J2KI"]
    low_path = simulate(full_path, work / "test" / f"693_J2KI_d{args.dose:g}.nrrd", args.dose, 1, logs)
    low, full = read_hu(low_path)[..., 0], read_hu(full_path)[..., 0]
    inputs = {1: low_path} | {n: speed_volume(low_path, work / "test" / f"speed_{n}.nrrd", n) for n in args.slices}
    load = os.getloadavg()[0]
    bm3d: list[float] = []
    infer: dict[int, list[float]] = {n: [] for n in inputs}
    for r in range(args.rounds):
        bm3d.append(classical(low, full, only="BM3D (oracle sigma)")["BM3D (oracle sigma)"][1])
        for n, src in inputs.items():
            out = work / "pred" / f"speed_{n}.nrrd"
            out.parent.mkdir(parents=True, exist_ok=True)
            seconds = run([str(BIN / "medgan-infer"), "--model", args.model, "--input", str(src), "--output", str(out),
                           "--overwrite", "--no-progress", "--backend", args.backend], logs / f"infer_{n}_{r}.log")
            infer[n].append(seconds / n)
        print(f"round {r + 1}/{args.rounds}: BM3D {bm3d[-1]:.2f} s, medgan-infer "
              + ", ".join(f"{infer[n][-1]:.3f} s/slice ({n})" for n in inputs), flush=True)
    print(f"\n### Seconds per 512² slice, {args.rounds} interleaved rounds (load average at start {load:.1f}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print("| method | min s / slice | median s / slice | BM3D-oracle min / this min |")
    print("|---|---|---|---|")
    print(f"| BM3D (oracle sigma), one slice | {min(bm3d):.3f} | {statistics.median(bm3d):.3f} | 1.0x |")
    for n, times in infer.items():
        what = "one-slice file" if n == 1 else f"{n}-slice volume"
        print(f"| medgan-infer ({args.backend}), whole command, {what} | {min(times):.3f} | "
              f"{statistics.median(times):.3f} | {min(bm3d) / min(times):.1f}x |")


if __name__ == "__main__":
    main()
