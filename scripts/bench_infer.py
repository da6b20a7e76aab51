"""Benchmark ``medgan-infer``: end-to-end DICOM→DICOM time vs the bare forward pass, torch vs onnxruntime,
and peak memory. Prints a table.

    .venv/bin/python scripts/bench_infer.py                  # 512×512×64, pix2pix U-Net (a few minutes)
    .venv/bin/python scripts/bench_infer.py --slices 256     # the long-volume memory check
    .venv/bin/python scripts/bench_infer.py --backends       # torch vs onnxruntime per net, alternating runs

The volume is a synthetic body phantom (ellipses in HU + noise) written as a DICOM series first (not
timed). End-to-end = ``medgan.cli.infer.main`` in a fresh process: read the series, normalise, run the
net slab by slab, write the derived series and re-read it for verification. Bare forward = the same
net on the same normalised slices, same batch size, nothing else. Peak RSS is the child's
``ru_maxrss``; its baseline is the RSS after imports (torch, MONAI, medgan), before the model and data.
Weights are random: speed and memory do not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NETS = {
    "unet_generator": {"type": "unet_generator", "spatial_dims": 2, "in_channels": 1, "out_channels": 1},
    "rescnn_lite": {"type": "rescnn_lite", "spatial_dims": 2, "in_channels": 1, "out_channels": 1},
    "resnet_generator": {"type": "resnet_generator", "spatial_dims": 2, "in_channels": 1, "out_channels": 1},
    # a tiny net for quick memory runs: the end-to-end time is then mostly I/O, not a realistic ratio
    "rescnn_tiny": {"type": "rescnn_lite", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "feature_size": 8,
                    "num_layers": 3},
}
WINDOW = {"type": "window", "hu_min": -1024.0, "hu_max": 3071.0, "out_min": -1.0, "out_max": 1.0}


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _child(args: argparse.Namespace) -> None:
    """Runs in a fresh process: the CLI end to end, then its wall time, the time spent in each part and the
    peak RSS as JSON on stdout. The parts are timed by wrapping the reader, the writer and the backend, so
    the in-run ratio wall / forward does not depend on how busy the machine was between two runs."""
    import medgan.inference.backends as backends
    import medgan.io as io
    from medgan.cli.infer import main

    spent = {"read": 0.0, "forward": 0.0, "write": 0.0}

    def timed(key, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[key] += time.perf_counter() - t0
        return wrapper

    io.read_volume = timed("read", io.read_volume)
    io.write_volume = timed("write", io.write_volume)
    for cls in (backends.TorchBackend, backends.OnnxBackend):
        cls.__call__ = timed("forward", cls.__call__)
    base = _rss_mb()
    t0 = time.perf_counter()
    code = main(["--model", args.model, "--input", args.input, "--output", args.output, "--no-progress",
                 "--batch-size", str(args.batch_size), "--backend", args.backend])
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    bare = float("nan")
    if code == 0 and not args.e2e_only:
        # Right after the end-to-end run, in the same process: other jobs' load on a shared machine
        # changes between runs, so a bare forward timed elsewhere is not comparable.
        from medgan.inference.loading import load_generator
        from medgan.package import load_model_package
        from medgan.transforms.intensity import build_normalizer

        volume = io.read_volume(args.input)
        _, net = load_generator(args.model)
        bare = _bare_forward_s(net, volume, args.batch_size,
                               build_normalizer(load_model_package(args.model)[0]["normalization"]))
    print(json.dumps({"code": code, "wall_s": wall, "peak_mb": peak, "base_mb": base, "bare_s": bare, **spent}))


def _phantom(n_slices: int, size: int):
    import numpy as np
    import torch
    from monai.data import MetaTensor

    rng = np.random.default_rng(0)
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    body = ((x / 0.85) ** 2 + (y / 0.65) ** 2 <= 1).astype(np.float32)
    lungs = (((x + 0.38) / 0.25) ** 2 + (y / 0.4) ** 2 <= 1) | (((x - 0.38) / 0.25) ** 2 + (y / 0.4) ** 2 <= 1)
    slice_hu = -1000 + body * 1040 - lungs * 850
    vol = np.repeat(slice_hu[..., None], n_slices, axis=2) + rng.normal(0, 20, (size, size, n_slices))
    affine = np.diag([-0.7, -0.7, 1.25, 1.0])
    affine[:3, 3] = [180.0, 180.0, -40.0]
    return MetaTensor(torch.from_numpy(vol.astype(np.float32))[None], affine=torch.as_tensor(affine))


def _bare_forward_s(net, volume, batch_size: int, normalizer) -> float:
    import torch

    hu = volume[0].as_tensor()
    x_all = normalizer.forward(hu).permute(2, 0, 1)[:, None].contiguous()  # (Z, 1, X, Y)
    with torch.no_grad():
        net(x_all[:1])  # warm-up (allocator, kernels)
        t0 = time.perf_counter()
        for i in range(0, x_all.shape[0], batch_size):
            net(x_all[i:i + batch_size])
    return time.perf_counter() - t0


def _predict_ms_per_slice(pkg: Path, volume, backend: str, batch_size: int) -> float:
    from medgan.inference import Predictor

    pred = Predictor(pkg, backend=backend, batch_size=batch_size)
    pred.predict(volume[..., :1])  # warm-up
    t0 = time.perf_counter()
    pred.predict(volume)
    return (time.perf_counter() - t0) * 1000 / volume.shape[-1]


def _backends_table(slices: int, size: int, batch_size: int, rounds: int) -> None:
    """torch vs onnxruntime ``Predictor`` on each net, rounds alternating A B A B in this one process; the
    best of each side counts (other jobs on a shared machine only ever slow a run down)."""
    import torch
    import yaml

    from medgan.nets import build_net
    from medgan.package import make_manifest, save_model_package

    recommended = yaml.safe_load((Path(__file__).parents[1] / "configs" / "ldct_denoise.yaml").read_text())
    nets = {"ldct_denoise (resunet)": {**recommended["nets"]["generator"], "spatial_dims": 2},
            "rescnn_lite (batch norm)": NETS["rescnn_lite"], "unet_generator": NETS["unet_generator"]}
    volume = _phantom(slices, size)
    print(f"{size}x{size}, {slices} slices, batch {batch_size}, torch threads {torch.get_num_threads()}, "
          f"best of {rounds} alternating rounds")
    print(f"{'net':<26} {'torch ms/slice':>15} {'onnxruntime ms/slice':>21} {'torch / onnx':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, cfg in nets.items():
            torch.manual_seed(0)
            net = build_net(dict(cfg)).eval()
            pkg = Path(tmp) / label.split()[0]
            manifest = make_manifest("bench", {"generator": cfg}, "generator", 2, WINDOW, description="bench")
            save_model_package(pkg, {f"generator.{k}": v for k, v in net.state_dict().items()}, manifest)
            best = {"torch": float("inf"), "onnx": float("inf")}
            for _ in range(rounds):
                for backend in best:
                    best[backend] = min(best[backend], _predict_ms_per_slice(pkg, volume, backend, batch_size))
            print(f"{label:<26} {best['torch']:>15.0f} {best['onnx']:>21.0f} {best['torch'] / best['onnx']:>13.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slices", type=int, default=64)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--net", default="unet_generator", choices=sorted(NETS))
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--backend-slices", type=int, default=8, help="slices for the torch vs onnxruntime timing")
    p.add_argument("--e2e-only", action="store_true",
                   help="only the end-to-end run (time and peak RSS), e.g. for --slices 256")
    p.add_argument("--backends", action="store_true",
                   help="only the torch vs onnxruntime table over the recommended denoiser, rescnn_lite and "
                        "the U-Net (--slices 4 is plenty)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds for --backends")
    p.add_argument("--workdir", default=None, help="keep the files here (default: a temporary folder)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args)
    if args.backends:
        return _backends_table(args.slices, args.size, args.batch_size, args.rounds)

    import torch

    from medgan.io import write_volume
    from medgan.nets import build_net
    from medgan.package import make_manifest, save_model_package

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_infer_"))
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = NETS[args.net]
    net = build_net(cfg).eval()
    pkg = work / f"model_{args.net}"
    if not pkg.exists():
        manifest = make_manifest("bench", {"generator": cfg}, "generator", 2, WINDOW, description="bench")
        save_model_package(pkg, {f"generator.{k}": v for k, v in net.state_dict().items()}, manifest)
    model_mb = sum(t.numel() * t.element_size() for t in net.state_dict().values()) / 2**20

    volume = _phantom(args.slices, args.size)
    series = work / f"ct_{args.size}x{args.size}x{args.slices}"
    if not series.exists():
        write_volume(volume, series, "dicom", description="bench phantom")
    out = work / f"out_{args.slices}"
    cmd = [sys.executable, __file__, "--child", "--model", str(pkg), "--input", str(series), "--output", str(out),
           "--batch-size", str(args.batch_size)] + (["--e2e-only"] if args.e2e_only else [])
    if out.exists():
        import shutil

        shutil.rmtree(out)
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MEDGAN_DEBUG": "1"})
    if res.returncode != 0:
        sys.exit(f"end-to-end run failed:\n{res.stderr}")
    e2e = json.loads(res.stdout.strip().splitlines()[-1])
    if e2e["code"] != 0:
        sys.exit(f"medgan-infer exited with {e2e['code']}:\n{res.stderr}")

    nan = float("nan")
    bare, ms_torch, ms_onnx = e2e["bare_s"], nan, nan
    if not args.e2e_only:
        sub = volume[..., : args.backend_slices]
        ms_torch = _predict_ms_per_slice(pkg, sub, "torch", args.batch_size)
        ms_onnx = _predict_ms_per_slice(pkg, sub, "onnx", args.batch_size)

    vol_mb = volume.numel() * 4 / 2**20
    grown = e2e["peak_mb"] - e2e["base_mb"]
    rows = [
        ("volume", f"{args.size}x{args.size}x{args.slices}, net {args.net} ({model_mb:.0f} MB weights), "
                   f"batch {args.batch_size}, torch threads {torch.get_num_threads()}"),
        ("end-to-end DICOM->DICOM", f"{e2e['wall_s']:.1f} s"),
        ("bare forward, same slices", f"{bare:.1f} s  (same process, right after)"),
        ("ratio end-to-end / forward", f"{e2e['wall_s'] / bare:.3f}   (goal <= 1.15)"),
        ("  in the same run: forward", f"{e2e['forward']:.1f} s, read {e2e['read']:.1f} s, write+verify "
                                       f"{e2e['write']:.1f} s, rest {e2e['wall_s'] - e2e['forward'] - e2e['read'] - e2e['write']:.1f} s"),
        ("  in-run ratio wall / forward", f"{e2e['wall_s'] / e2e['forward']:.3f}"),
        ("torch Predictor", f"{ms_torch:.0f} ms/slice  ({args.backend_slices} slices)"),
        ("onnxruntime Predictor", f"{ms_onnx:.0f} ms/slice  ({args.backend_slices} slices)"),
        ("peak RSS", f"{e2e['peak_mb']:.0f} MB (after imports {e2e['base_mb']:.0f} MB)"),
        ("growth / (volume float32 + model)",
         f"{grown:.0f} MB / ({vol_mb:.0f} + {model_mb:.0f}) MB = {grown / (vol_mb + model_mb):.2f}x of volume+model;"
         f" {(grown - model_mb) / vol_mb:.2f}x volume + model  (goal <= 2.5x volume + model)"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
