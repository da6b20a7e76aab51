"""Benchmark of the evaluation: how much the protocol moves the numbers, and what the baselines cost.

``protocols``: one real slice pair (a full-dose slice and its simulated quarter-dose version) scored under
the ldct-benchmark protocol (medgan.metrics) and under the variants other papers use: an 11x11 Gaussian SSIM
window (Wang et al. 2004, MONAI, torchmetrics), the window scaled by its width instead of width - 1, and no
window at all (data range = the 12-bit HU range, or the target's own min..max).

``baselines``: seconds per slice of every classical denoiser of ``medgan-eval --baselines`` on one 512x512
real slice (pydicom's 693_J2KI.dcm, simulated quarter dose), with its PSNR/SSIM against the full-dose slice.
Timings on a shared machine are only comparable within one run. Nothing is gated on time.

    .venv/bin/python scripts/bench_eval.py protocols
    .venv/bin/python scripts/bench_eval.py baselines --repeats 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

from medgan.config import parse_window
from medgan.metrics import slice_metrics, window_to_unit


def real_slices() -> list[tuple[str, str, np.ndarray, float, float]]:
    """``(name, window name, HU slice (X, Y), pixel mm, photons)`` of the two real CT slices used here; the
    photons per mm^2 (medgan.transforms.lowdose) give 25-35 HU of added noise on each."""
    import slicerio
    from pydicom.data import get_testdata_file

    from medgan.io import read_volume

    head = read_volume(get_testdata_file("693_J2KI.dcm"))
    chest = read_volume(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd")
    return [
        ("693_J2KI.dcm (head, 512x512)", "head", head[0, :, :, 0].numpy(), float(abs(head.affine[0, 0])), 2e6),
        ("CTChest4.nrrd z=17 (chest, 128x128)", "chest", chest[0, :, :, 17].numpy(), float(abs(chest.affine[0, 0])),
         3e3),
    ]


def quarter_dose(hu: np.ndarray, pixel_mm: float, photons: float, seed: int = 0) -> np.ndarray:
    """The slice at a simulated quarter dose (medgan.transforms.lowdose: relative mode, the given photons per
    mm^2 at full dose, ramp filter, 720 views)."""
    from medgan.transforms.lowdose import simulate_low_dose

    return simulate_low_dose(torch.from_numpy(hu), 0.25, pixel_size_mm=pixel_mm, photons=photons, filter_name="ramp",
                             seed=seed).numpy()


def added_noise(low: np.ndarray, full: np.ndarray) -> float:
    """Standard deviation of the added noise over soft tissue (-100..200 HU in the full-dose slice)."""
    return float(np.std((low - full)[(full > -100) & (full < 200)]))


def protocols() -> None:
    print(f"| {'slice, added noise':<46} | {'protocol':<58} | {'SSIM':>7} | {'PSNR dB':>7} |")
    print(f"|{'-' * 48}|{'-' * 60}|{'-' * 9}|{'-' * 9}|")
    for name, window_name, target, pixel_mm, photons in real_slices():
        pred = quarter_dose(target, pixel_mm, photons)
        name = f"{name}, +{added_noise(pred, target):.0f} HU"
        window = parse_window(window_name)
        low, high = window
        m = slice_metrics(pred, target, window)
        t_u, p_u = window_to_unit(target, window), window_to_unit(pred, window)
        rows = [(f"ldct-benchmark ({window_name} window, w-1, 7x7 uniform)", m["ssim"], m["psnr"])]
        gauss = structural_similarity(t_u, p_u, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False)
        rows.append(("same window, 11x11 Gaussian SSIM (Wang 2004 / MONAI)", gauss, m["psnr"]))
        t_w = np.clip((target - low) / (high - low), 0, 1).astype(np.float32)
        p_w = np.clip((pred - low) / (high - low), 0, 1).astype(np.float32)
        rows.append(("window scaled by w, not w-1", structural_similarity(t_w, p_w, data_range=1.0),
                     10 * np.log10(1 / np.mean((t_w.astype(np.float64) - p_w) ** 2))))
        t_r, p_r = np.clip(target, -1024, 3071), np.clip(pred, -1024, 3071)
        mse_r = np.mean((t_r.astype(np.float64) - p_r) ** 2)
        rows.append(("no window, data range 4095 HU [-1024, 3071]", structural_similarity(t_r, p_r, data_range=4095.0),
                     10 * np.log10(4095.0**2 / mse_r)))
        span = float(target.max() - target.min())
        mse_h = np.mean((target.astype(np.float64) - pred) ** 2)
        rows.append((f"no window, data range = target max-min ({span:.0f} HU)",
                     structural_similarity(target, pred, data_range=span), 10 * np.log10(span**2 / mse_h)))
        for label, ssim, psnr in rows:
            print(f"| {name:<46} | {label:<58} | {ssim:7.4f} | {psnr:7.2f} |")


def baselines(repeats: int, methods: list[str]) -> None:
    from medgan.baselines import BASELINES, DenoiseContext, estimate_noise_hu, run_baseline

    _, window_name, target, pixel_mm, photons = real_slices()[0]
    low_dose = quarter_dose(target, pixel_mm, photons)
    window = parse_window(window_name)
    sigma = estimate_noise_hu(low_dose[None])
    context = DenoiseContext(sigma_hu=sigma)
    print(f"693_J2KI.dcm 512x512 at simulated quarter dose; estimated noise sigma {sigma:.1f} HU (std of the "
          f"added noise in soft tissue: {added_noise(low_dose, target):.1f} HU); torch threads {torch.get_num_threads()}")
    m = slice_metrics(low_dose, target, window)
    print(f"| {'method':<10} | {'s / slice':>9} | {'SSIM':>6} | {'PSNR dB':>7} | {'RMSE HU':>7} |")
    print(f"|{'-' * 12}|{'-' * 11}|{'-' * 8}|{'-' * 9}|{'-' * 9}|")
    print(f"| {'input':<10} | {0.0:9.2f} | {m['ssim']:6.4f} | {m['psnr']:7.2f} | {m['rmse']:7.1f} |")
    for name in methods:
        if name not in BASELINES:
            raise SystemExit(f"unknown baseline {name}; known: {sorted(BASELINES)}")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = run_baseline(name, low_dose[None], context)[0]
            times.append(time.perf_counter() - start)
        m = slice_metrics(out, target, window)
        print(f"| {name:<10} | {min(times):9.2f} | {m['ssim']:6.4f} | {m['psnr']:7.2f} | {m['rmse']:7.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("protocols", help="one slice pair under the benchmark's protocol and others'")
    b = sub.add_parser("baselines", help="seconds per 512x512 slice of each classical denoiser")
    b.add_argument("--repeats", type=int, default=1, help="runs per method; the fastest is printed")
    b.add_argument("--methods", default="gaussian,bilateral,tv,nlm,bm3d")
    args = parser.parse_args()
    if args.what == "protocols":
        protocols()
    else:
        baselines(args.repeats, args.methods.split(","))


if __name__ == "__main__":
    main()
