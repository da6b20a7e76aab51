"""Denoiser architectures by measurement: quality per multiply-add on the CPU, in one process.

Every candidate predicts the noise (output = input - predicted noise) in normalised units and is trained
for the same number of steps on the same simulated pairs: slicerio's chest CT (3 mm pixels) and pydicom's
``J2K_pixelrep_mismatch.dcm`` head slice (0.43 mm), doses 0.1 / 0.25 / 0.5. Quality is measured on a slice
from another scanner (pydicom's ``693_J2KI.dcm``, 0.48 mm) at dose 0.25, in the head and abdomen windows.
Forward time is the median of a few whole-512² forwards with ``torch.inference_mode`` on 2 threads.

    .venv/bin/python scripts/bench_nets.py --steps 300
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medgan.config import NAMED_WINDOWS
from medgan.metrics import slice_metrics
from medgan.nets import build_net
from medgan.transforms.intensity import HUNormalizer
from medgan.transforms.lowdose import simulate_low_dose

CANDIDATES = {
    "resunet 16-32-64": {"type": "resunet", "channels": [16, 32, 64]},
    "resunet 24-48-96": {"type": "resunet", "channels": [24, 48, 96]},
    "nafnet 16-32-64": {"type": "nafnet", "channels": [16, 32, 64]},
    "nafnet 32-64-128": {"type": "nafnet", "channels": [32, 64, 128]},
    "dncnn 32ch x 12": {"type": "rescnn_lite", "feature_size": 32, "num_layers": 12, "norm": "none"},
    "rescnn_lite 32ch x 8": {"type": "rescnn_lite", "feature_size": 32, "num_layers": 8, "norm": "none"},
    "redcnn (reference)": {"type": "redcnn"},
}


def load_slices() -> dict[str, tuple[torch.Tensor, float]]:
    """``name -> ((N, H, W) HU, pixel mm)`` of the training and test scans."""
    import slicerio
    from pydicom.data import get_testdata_file

    from medgan.io import read_volume

    out = {}
    for name, path in {
        "chest": Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd",
        "head_train": get_testdata_file("J2K_pixelrep_mismatch.dcm"),
        "head_test": get_testdata_file("693_J2KI.dcm"),
    }.items():
        vol = read_volume(str(path))
        pixel = float(torch.linalg.norm(vol.affine[:3, 0]))
        out[name] = (vol.as_tensor()[0].permute(2, 1, 0).float().contiguous(), pixel)  # (Z, Y, X)
    return out


def make_pairs(slices, doses, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    pairs = []
    for name in ("chest", "head_train"):
        full, pixel = slices[name]
        for k, dose in enumerate(doses):
            low = simulate_low_dose(full, dose, pixel_size_mm=pixel, seed=seed + k)
            pairs += [(lo, fu) for lo, fu in zip(low, full)]
    return pairs


def sample_batch(pairs, norm: HUNormalizer, batch: int, patch: int, rng: np.random.Generator):
    xs, ys = [], []
    for _ in range(batch):
        low, full = pairs[rng.integers(len(pairs))]
        i, j = (rng.integers(s - patch + 1) for s in low.shape)
        x, y = low[i:i + patch, j:j + patch], full[i:i + patch, j:j + patch]
        k = int(rng.integers(4))
        x, y = torch.rot90(x, k), torch.rot90(y, k)
        xs.append(norm.forward(x)[None])
        ys.append(norm.forward(y)[None])
    return torch.stack(xs), torch.stack(ys)


@torch.inference_mode()
def denoise(net, low_hu: torch.Tensor, norm: HUNormalizer, multiple: int = 8) -> torch.Tensor:
    h, w = low_hu.shape
    x = norm.forward(low_hu)[None, None]
    ph, pw = -h % multiple, -w % multiple
    x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return norm.inverse(net(x)[0, 0, :h, :w])


def forward_ms(net, size: int = 512, repeats: int = 3) -> float:
    x = torch.zeros(1, 1, size, size)
    times = []
    with torch.inference_mode():
        net(x)
        for _ in range(repeats):
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def macs_per_pixel(net) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(torch.zeros(1, 1, 64, 64))
    return counter.get_total_flops() / 2 / 64**2


def scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    out = {}
    for win in ("head", "abdomen"):
        c, w = NAMED_WINDOWS[win]
        m = slice_metrics(pred.numpy(), target.numpy(), (c - w / 2, c + w / 2))
        out[f"{win}_psnr"], out[f"{win}_ssim"] = m["psnr"], m["ssim"]
    out["rmse"] = m["rmse"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--only", nargs="*", default=None, help="candidate names (substring match)")
    p.add_argument("--train-threads", type=int, default=1, help="torch threads while training (forward: 2)")
    p.add_argument("--pairs-cache", default=None, help="a .pt file keeping the simulated pairs between runs")
    args = p.parse_args()
    norm = HUNormalizer()
    slices = load_slices()
    t0 = time.perf_counter()
    test_full, test_pixel = slices["head_test"]
    if args.pairs_cache and Path(args.pairs_cache).exists():
        pairs, test_low = torch.load(args.pairs_cache, weights_only=True)
    else:
        pairs = make_pairs(slices, (0.1, 0.25, 0.5), seed=1)
        test_low = simulate_low_dose(test_full[0], 0.25, pixel_size_mm=test_pixel, seed=99)
        if args.pairs_cache:
            torch.save((pairs, test_low), args.pairs_cache)
    print(f"{len(pairs)} training pairs and the test slice ready in {time.perf_counter() - t0:.0f} s")
    base = scores(test_low, test_full[0])
    rows = [("low-dose input", "", "", "", base)]
    for name, cfg in CANDIDATES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        torch.manual_seed(0)
        net = build_net(cfg)
        params = sum(q.numel() for q in net.parameters())
        macs = macs_per_pixel(net.eval())
        torch.set_num_threads(2)
        ms = forward_ms(net)
        torch.set_num_threads(args.train_threads)
        opt = torch.optim.Adam(net.parameters(), lr=args.lr if cfg["type"] != "redcnn" else 1e-4)
        rng = np.random.default_rng(0)
        net.train()
        t = time.perf_counter()
        for _ in range(args.steps):
            x, y = sample_batch(pairs, norm, args.batch, args.patch, rng)
            loss = F.mse_loss(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        step_s = (time.perf_counter() - t) / args.steps
        net.eval()
        m = scores(denoise(net, test_low, norm), test_full[0])
        rows.append((name, f"{params:,}", f"{macs / 1e3:.1f}", f"{ms:.0f} | {step_s:.2f}", m))
        print(name, params, macs, ms, step_s, m, flush=True)
    print(f"\n{args.steps} steps x batch {args.batch} x {args.patch}² patches, lr {args.lr}; test: 693_J2KI.dcm dose 0.25")
    print("| net | params | k MAC/px | fwd ms/512² \\| train s/step | head PSNR / SSIM | abdomen PSNR / SSIM | RMSE HU |")
    print("|---|---|---|---|---|---|---|")
    for name, params, macs, ms, m in rows:
        print(f"| {name} | {params} | {macs} | {ms} | {m['head_psnr']:.2f} / {m['head_ssim']:.4f} | "
              f"{m['abdomen_psnr']:.2f} / {m['abdomen_ssim']:.4f} | {m['rmse']:.1f} |")


if __name__ == "__main__":
    main()
