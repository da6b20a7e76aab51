"""Benchmark: medgan's low-dose simulator against the scikit-image radon/iradon pipeline.

Both simulate the same slice (the real chest CT from slicerio, up-sampled to ``--size``) at the same dose,
photons, electronic noise and number of views, in absolute mode (noise drawn from the projections of the
given slice), and both reconstruct with the ramp filter and linear interpolation. Printed: seconds per
slice (medgan amortised over a batch, its one-off operator build separately), the noise sigma in a
central ROI, and the speed ratio. Nothing is gated on time.

    .venv/bin/python scripts/bench_simulate.py                  # 512x512, 720 views
    .venv/bin/python scripts/bench_simulate.py --size 256 --views 360 --slices 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import psutil
import SimpleITK as sitk
import torch
from skimage.transform import iradon, radon

from medgan.transforms.lowdose import MU_WATER_PER_MM, simulate_low_dose
from medgan.transforms.projector_cache import get_projector


def chest_slice(size: int) -> tuple[np.ndarray, float]:
    """A real chest CT slice in HU, resampled to ``size x size``, and its pixel size in mm."""
    import slicerio

    image = sitk.ReadImage(str(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"))
    array = sitk.GetArrayFromImage(image).astype(np.float32)  # (Z, Y, X)
    slice_ = torch.from_numpy(array[array.shape[0] // 2])[None, None]
    resized = torch.nn.functional.interpolate(slice_, size=(size, size), mode="bilinear", align_corners=False)
    pixel_mm = image.GetSpacing()[0] * array.shape[2] / size
    return resized[0, 0].numpy(), pixel_mm


def skimage_pipeline(hu: np.ndarray, dose: float, photons: float, noise_var: float, views: int, pixel_mm: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The textbook recipe with scikit-image: radon -> Poisson + Gaussian -> log -> iradon. Returns (HU, s)."""
    theta = np.arange(views) * 180.0 / views
    start = time.perf_counter()
    mu_px = np.clip(MU_WATER_PER_MM * pixel_mm * (1 + hu / 1000.0), 0, None)
    p = radon(mu_px, theta, circle=False)
    counts = rng.poisson(dose * photons * np.exp(-p)) + np.sqrt(noise_var) * rng.standard_normal(p.shape)
    p_low = -np.log(np.maximum(counts, 1.0) / (dose * photons))
    rec = iradon(p_low, theta, output_size=hu.shape[0], circle=False, filter_name="ramp")
    seconds = time.perf_counter() - start
    reference = iradon(p, theta, output_size=hu.shape[0], circle=False, filter_name="ramp")  # untimed
    return (rec - reference) * 1000.0 / (MU_WATER_PER_MM * pixel_mm), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--views", type=int, default=720)
    parser.add_argument("--slices", type=int, default=32, help="slices simulated by medgan (copies of the slice)")
    parser.add_argument("--batch-size", type=int, default=16, help="medgan slices per sparse product")
    parser.add_argument("--skimage-runs", type=int, default=2)
    parser.add_argument("--dose", type=float, default=0.25)
    parser.add_argument("--photons", type=float, default=1e5)
    parser.add_argument("--electronic-noise", type=float, default=10.0)
    args = parser.parse_args()

    hu, pixel_mm = chest_slice(args.size)
    c, r = args.size // 2, args.size // 8
    roi = (slice(c - r, c + r), slice(c - r, c + r))  # central soft-tissue/lung region
    print(f"slice {args.size}x{args.size} ({pixel_mm:.2f} mm pixels), {args.views} views, dose {args.dose}, "
          f"I0 {args.photons:g}, sigma_e^2 {args.electronic_noise}, torch threads {torch.get_num_threads()}")

    rss0 = psutil.Process().memory_info().rss
    start = time.perf_counter()
    projector = get_projector(args.size, args.views)
    build = time.perf_counter() - start
    rss = psutil.Process().memory_info().rss - rss0

    batch = torch.from_numpy(hu)[None].repeat(args.slices, 1, 1)
    kwargs = dict(photons=args.photons, electronic_noise=args.electronic_noise, views=args.views, mode="absolute",
                  pixel_size_mm=pixel_mm, batch_size=args.batch_size)
    simulate_low_dose(batch[:2], args.dose, seed=0, **kwargs)  # warm-up (allocations, FFT plans)
    start = time.perf_counter()
    low = simulate_low_dose(batch, args.dose, seed=1, **kwargs)
    ours_s = (time.perf_counter() - start) / args.slices
    ours_sigma = float((low - batch)[(slice(None), *roi)].std())

    rng = np.random.default_rng(0)
    sk_times, sk_sigmas = [], []
    for _ in range(args.skimage_runs):
        noise, seconds = skimage_pipeline(hu, args.dose, args.photons, args.electronic_noise, args.views, pixel_mm, rng)
        sk_times.append(seconds)
        sk_sigmas.append(float(noise[roi].std()))
    sk_s, sk_sigma = float(np.mean(sk_times)), float(np.mean(sk_sigmas))

    print()
    print(f"| {'pipeline':<28} | {'s / slice':>9} | {'sigma ROI (HU)':>14} |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 16}|")
    print(f"| {'scikit-image radon/iradon':<28} | {sk_s:9.3f} | {sk_sigma:14.2f} |")
    label = f"medgan ({args.slices} slices, batch {args.batch_size})"
    print(f"| {label:<28} | {ours_s:9.3f} | {ours_sigma:14.2f} |")
    print()
    print(f"speed-up: {sk_s / ours_s:.1f}x; sigma ratio medgan/skimage: {ours_sigma / sk_sigma:.3f}")
    print(f"medgan operator build (once per geometry, cached): {build:.1f} s, "
          f"{projector.nbytes / 1e9:.2f} GB of sparse matrices (process RSS +{rss / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
