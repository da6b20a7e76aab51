"""What training adds to the SR net's fixed base, per training-pair setting: a diagnostic, not the goal's bench.

The generator of ``configs/sr.yaml`` is trained in a plain loop (Adam, the config's loss and EMA decay, the
data module's on-the-fly pairs) under each variant of ``data.sr_pairs`` / ``optim.lr`` below, and every
``--every`` iterations its EMA is run on whole slices (normalise, net, de-normalise: what ``medgan-infer``
does, without the slab tiling) of the held-out sets of ``scripts/bench_sr.py``. Printed: PSNR gain over the
untrained net (= B-spline + block-mean projection) on the two 512² head slices (head and abdomen windows)
and on the validation chest slab (abdomen window, the window ``configs/sr.yaml`` validates in).

    .venv/bin/python scripts/bench_sr_training.py --work /tmp/bench_sr        # every variant, 600 iterations
    .venv/bin/python scripts/bench_sr_training.py --variants config previous --steps 300

``--work`` is a ``scripts/bench_sr.py --work`` folder (its prepared dataset is reused; made if missing).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

#: name -> (dotted overrides of configs/sr.yaml, what it tests)
VARIANTS: dict[str, tuple[dict, str]] = {
    "config": ({}, "configs/sr.yaml: every pair at 0.4-1.5 mm, bicubic when refining"),
    "previous": ({"data.sr_pairs.resample_prob": 0.75, "data.sr_pairs.refine_mode": "bilinear"},
                 "the earlier setting: 25 % on the scan's own grid, bilinear when refining"),
    "bicubic_0.75": ({"data.sr_pairs.resample_prob": 0.75}, "25 % own grid, bicubic when refining"),
    "native": ({"data.sr_pairs.resample_prob": 0.0}, "only the scans' own grids (3 mm chest, 0.66 mm slice)"),
    "up_to_3mm": ({"data.sr_pairs.pixel_range": [0.4, 3.0]}, "pixel sizes 0.4-3 mm"),
    "lr_5e-4": ({"optim.lr": 5e-4}, "learning rate x5"),
}


def _config(dataset: Path, overrides: dict) -> dict:
    raw = yaml.safe_load((ROOT / "configs" / "sr.yaml").read_text())
    raw["data"]["root"] = str(dataset)
    for key, value in overrides.items():
        node = raw
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def _scorer(dataset: Path, normalizer):
    from bench_sr import _hu

    from medgan.config import parse_window
    from medgan.metrics import slice_metrics

    def pairs(split: str) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(_hu(src), _hu(dataset / split / "target" / src.name))
                for src in sorted((dataset / split / "source").iterdir())]

    sets = {"test": (pairs("test"), ("head", "abdomen")), "val": (pairs("val"), ("abdomen",))}

    def score(net: torch.nn.Module) -> dict[str, float]:
        net.eval()
        out = {}
        for name, (cases, windows) in sets.items():
            for window in windows:
                psnr = []
                for source, target in cases:
                    x = torch.from_numpy(np.clip(source, -1024, 3071)).permute(2, 0, 1)[:, None]
                    with torch.no_grad():
                        pred = normalizer.inverse(net(normalizer.forward(x)))[:, 0].permute(1, 2, 0).numpy()
                    psnr += [slice_metrics(pred[..., z], target[..., z], parse_window(window))["psnr"]
                             for z in range(target.shape[-1])]
                out[f"{name} {window}"] = float(np.mean(psnr))
        net.train()
        return out

    return score


def run_variant(dataset: Path, overrides: dict, steps: int, every: int, seed: int) -> list[tuple[int, dict]]:
    from medgan.config import validate_config
    from medgan.data import CTDataModule
    from medgan.nets import build_net

    cfg = validate_config(_config(dataset, overrides))
    torch.manual_seed(seed)
    dm = CTDataModule(cfg.data, seed=cfg.seed)
    dm.setup("fit")
    net = build_net({**cfg.nets.generator, "scale": cfg.data.scale})
    ema = copy.deepcopy(net)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))
    loss_fn = torch.nn.L1Loss() if cfg.recipe.pixel_loss["type"] == "l1" else torch.nn.MSELoss()
    score = _scorer(dataset, dm.normalizer)
    base = score(net)
    rows, step = [], 0
    while step < steps:
        for batch in dm.train_dataloader():
            loss = loss_fn(net(batch["source"]), batch["target"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), net.parameters()):
                    p_ema.lerp_(p, 1 - cfg.recipe.ema_decay)
            if step % every == 0 or step == steps:
                rows.append((step, {k: v - base[k] for k, v in score(ema).items()}))
                print(f"  {step}: " + ", ".join(f"{k} {v:+.2f}" for k, v in rows[-1][1].items()), flush=True)
            if step >= steps:
                break
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="a scripts/bench_sr.py --work folder")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import bench_sr

    work = Path(args.work)
    dataset = work / "prepared_train"
    if not (dataset / "test").exists():
        work.mkdir(parents=True, exist_ok=True)
        bench_sr.prepare(work, bench_sr.make_inputs(work), work / "commands.log")
    results = {}
    for name in args.variants:
        print(f"{name}: {VARIANTS[name][1]}", flush=True)
        start = time.perf_counter()
        results[name] = run_variant(dataset, VARIANTS[name][0], args.steps, args.every, args.seed)
        print(f"  ({time.perf_counter() - start:.0f} s)")
    keys = list(results[args.variants[0]][0][1])
    print("\nPSNR gain (dB) of the EMA over the untrained net (B-spline + projection), by iterations\n")
    print("| variant | iterations | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, rows in results.items():
        for step, gains in rows:
            print(f"| {name} | {step} | " + " | ".join(f"{gains[k]:+.2f}" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
