"""Training speed per recipe at reference sizes, and the overhead of the Lightning loop.

For each recipe the same nets, losses and batches are trained twice:

- **bare**: a plain PyTorch loop calling the recipe's ``train_step`` with plain ``backward`` / ``step``;
- **lightning**: ``lightning.pytorch.Trainer.fit`` as ``medgan-train`` runs it (manual optimisation,
  logging every step, progress bar off, no validation, no checkpoint writes during the timed steps).

Both read the same in-memory batches (random HU-like tensors; data loading is not what is measured).
Each recipe runs in its own process so peak RSS is per recipe. Times exclude the first ``--warmup``
iterations. Prints a Markdown table.

    .venv/bin/python scripts/bench_train.py                      # reference sizes (several minutes on CPU)
    .venv/bin/python scripts/bench_train.py --quick              # small sizes, a smoke run
    .venv/bin/python scripts/bench_train.py --recipes cyclegan pix2pix --iters 6
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

D64 = {"type": "patchgan", "feature_size": 64, "num_layers": 3}
#: reference sizes: the published settings of the authors' nets, batch sizes of configs/
REFERENCE = {
    "cyclegan": dict(recipe={"name": "cyclegan"}, patch=[128, 128], batch=1, pairing="unpaired",
                     nets={"generator": {"type": "resnet_generator", "feature_size": 64, "num_res_blocks": 9},
                           "discriminator": {**D64, "norm": "instance"}}),
    "pix2pix": dict(recipe={"name": "pix2pix"}, patch=[256, 256], batch=1,
                    nets={"generator": {"type": "unet_generator", "feature_size": 64, "num_downs": 8},
                          "discriminator": {**D64, "norm": "batch"}}),
    "redcnn": dict(recipe={"name": "redcnn"}, patch=[64, 64], batch=4,
                   nets={"generator": {"type": "redcnn", "feature_size": 96}}),
    "dae": dict(recipe={"name": "dae", "noise_std": 0.01}, patch=[128, 128], batch=8,
                nets={"generator": {"type": "dae", "channels": [32, 64, 128], "strides": [2, 2, 2]}}),
    "vae": dict(recipe={"name": "vae"}, patch=[128, 128], batch=16,
                nets={"generator": {"type": "vae", "latent_size": 256, "channels": [32, 64, 128, 256],
                                    "strides": [2, 2, 2, 2]}}),
    "srgan": dict(recipe={"name": "srgan", "pretrain_steps": 0}, patch=[48, 48], batch=16, scale=2,
                  nets={"generator": {"type": "srresnet", "feature_size": 64, "num_res_blocks": 16},
                        "discriminator": {"type": "srgan_discriminator", "feature_size": 64}}),
    "cgan": dict(recipe={"name": "cgan", "num_classes": 2}, patch=[64, 64], batch=64, pairing="single",
                 nets={"generator": {"type": "dcgan_generator", "feature_size": 64},
                       "discriminator": {"type": "dcgan_discriminator", "feature_size": 64}}),
}


def _config(name: str, quick: bool, iters: int) -> dict:
    spec = json.loads(json.dumps(REFERENCE[name]))
    if quick:  # same topology, 8x narrower and half the size
        for net in spec["nets"].values():
            for key in ("channels",):
                if isinstance(net.get(key), int):
                    net[key] = max(net[key] // 8, 4)
                elif isinstance(net.get(key), list):
                    net[key] = [max(c // 8, 4) for c in net[key]]
        spec["patch"] = [max(s // 2, 16) if name not in ("pix2pix",) else s for s in spec["patch"]]
        spec["batch"] = min(spec["batch"], 4)
    return {
        "seed": 0, "recipe": spec["recipe"], "nets": spec["nets"],
        "data": {"root": "unused", "patch_size": spec["patch"], "batch_size": spec["batch"],
                 "pairing": spec.get("pairing", "paired"), "scale": spec.get("scale", 1)},
        "trainer": {"max_steps": iters, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                    "log_every_n_steps": 1, "limit_val_batches": 0},
        "logging": {"tensorboard": False, "csv": True},
        "validation": {"panels": 0},
    }


def _loader(cfg, n: int):
    import torch
    from torch.utils.data import DataLoader

    d = cfg.data
    g = torch.Generator().manual_seed(0)
    hi = [s * d.scale for s in d.patch_size]
    items = [{"source": torch.rand(1, *d.patch_size, generator=g) * 0.5 - 0.6,
              "target": torch.rand(1, *hi, generator=g) * 0.5 - 0.6,
              "case": "c", "label": torch.tensor(i % 2), "slice_frac": torch.tensor(0.5)} for i in range(n * d.batch_size)]
    return DataLoader(items, batch_size=d.batch_size, shuffle=False)


def _bare(cfg, iters: int, warmup: int) -> float:
    import torch

    from medgan.recipes import build_recipe

    recipe = build_recipe(cfg)
    recipe.train()
    groups = recipe.optimizer_groups()
    opts = [torch.optim.Adam(params, lr=lr, betas=tuple(cfg.optim.betas)) for params, lr in groups]

    def optimize(loss, index=0):
        loss.backward()
        opts[index].step()
        opts[index].zero_grad(set_to_none=True)

    recipe.optimize = optimize
    recipe._window_done = True
    times = []
    for batch in _loader(cfg, iters):
        start = time.perf_counter()
        recipe.train_step(batch)
        times.append(time.perf_counter() - start)
    return sum(times[warmup:]) / len(times[warmup:])


def _lightning(cfg, iters: int, warmup: int, run_dir: Path) -> float:
    import lightning.pytorch as pl

    from medgan.engine import build_loggers
    from medgan.recipes import build_recipe

    class Timer(pl.Callback):
        def __init__(self):
            self.times, self.start = [], None

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.times.append(time.perf_counter() - self.start)

    # the time between batches (fetch, loop bookkeeping) is Lightning's too: measure batch start to start
    class Gap(pl.Callback):
        def __init__(self):
            self.stamps = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.stamps.append(time.perf_counter())

        def on_train_epoch_end(self, trainer, module):
            self.stamps.append(time.perf_counter())

    cfg.run.dir = str(run_dir)
    recipe = build_recipe(cfg)
    gap = Gap()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=iters * recipe.steps_per_iteration,
                         limit_val_batches=0, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, logger=build_loggers(cfg), callbacks=[gap],
                         log_every_n_steps=1)
    trainer.fit(recipe, train_dataloaders=_loader(cfg, iters))
    stamps = gap.stamps[warmup:]
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def _one(name: str, quick: bool, iters: int, warmup: int, mode: str, threads: int) -> dict:
    import tempfile

    import torch

    from medgan.config import validate_config

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    cfg = validate_config(_config(name, quick, iters))
    if mode == "bare":
        seconds = _bare(cfg, iters, warmup)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            seconds = _lightning(cfg, iters, warmup, Path(tmp))
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"recipe": name, "mode": mode, "s_per_it": seconds, "peak_rss_gb": rss_gb,
            "patch": cfg.data.patch_size, "batch": cfg.data.batch_size, "threads": torch.get_num_threads()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="*", default=list(REFERENCE), choices=list(REFERENCE))
    parser.add_argument("--iters", type=int, default=6, help="timed + warm-up iterations per run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="8x narrower nets, half-size patches")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 gives stable numbers on a shared machine)")
    parser.add_argument("--one", nargs=2, metavar=("RECIPE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], args.quick, args.iters, args.warmup, args.one[1], args.threads)))
        return 0
    rows = []
    for name in args.recipes:
        result = {}
        for mode in ("bare", "lightning"):
            cmd = [sys.executable, __file__, "--one", name, mode, "--iters", str(args.iters), "--warmup", str(args.warmup),
                   "--threads", str(args.threads)]
            cmd += ["--quick"] if args.quick else []
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore",
                                                                             # Lightning sets torch's threads from it
                                                                             "OMP_NUM_THREADS": str(args.threads)})
            if proc.returncode != 0:
                print(f"{name} {mode} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                break
            result[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        if len(result) == 2:
            rows.append(result)
            b, lt = result["bare"], result["lightning"]
            print(f"{name}: bare {b['s_per_it']:.3f} s/it, lightning {lt['s_per_it']:.3f} s/it", file=sys.stderr)
    load = os.getloadavg()[0]
    print(f"\n{'quick' if args.quick else 'reference'} sizes; {args.iters - args.warmup} timed iterations after "
          f"{args.warmup} warm-up; torch threads {rows[0]['bare']['threads'] if rows else '?'}; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs\n")
    print("| recipe | patch x batch | bare s/it | Lightning s/it | it/s | Lightning overhead | peak RSS bare / Lightning (GB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        b, lt = r["bare"], r["lightning"]
        overhead = (lt["s_per_it"] / b["s_per_it"] - 1) * 100
        print(f"| {b['recipe']} | {'x'.join(map(str, b['patch']))} x {b['batch']} | {b['s_per_it']:.3f} | "
              f"{lt['s_per_it']:.3f} | {1 / lt['s_per_it']:.2f} | {overhead:+.1f}% | "
              f"{b['peak_rss_gb']:.2f} / {lt['peak_rss_gb']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
