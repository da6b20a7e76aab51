"""Benchmark of medgan's low-dose simulator: speed against astra-toolbox and scikit-image, truth on real scans.

``--part speed`` (default): the whole ``medgan-simulate`` command on a 64-slice 512x512 volume (the real
chest CT from slicerio resampled to 0.76 mm pixels, 5 mm slices), run as a subprocess under
``/usr/bin/time -v`` twice: cold (an empty operator cache, as on a new machine) and warm (the cache the
cold run filled). Beside it, in the same run: forward projection + FBP of one slice with astra-toolbox's
CPU algorithms (parallel geometry, ``linear`` projector, ``FP`` + ``FBP``) and with scikit-image
(``radon`` + ``iradon``), same 720 views; and the noise sigma of medgan (absolute mode) against the
scikit-image Poisson pipeline at the same photons per ray. Printed: seconds per slice, ratios, peak RSS.

``--part real``: on the real scans shipped in wheels (pydicom's 693_J2KI, J2K_pixelrep_mismatch,
CT_small; slicerio's chest CT), the calibrated relative simulation at doses 0.5 / 0.25 / 0.1 with each
texture fit (``auto``: pixel-scale texture, ``auto-nps``: NPS peak): added noise sigma over full-dose sigma
against sqrt(1/a - 1) (same estimator, windows in mm, on both), mean HU shift in soft tissue, the noise
texture (difference ratio) and the NPS peak of scan and inserted noise, measured in the same homogeneous
ROIs of 16 and 24 pixels with a quadratic removed (a peak that moves with the ROI size is not noise).

    .venv/bin/python scripts/bench_simulate.py                      # speed, 64 x 512 x 512, 720 views
    .venv/bin/python scripts/bench_simulate.py --part real          # truth on real scans
    .venv/bin/python scripts/bench_simulate.py --size 256 --slices 16 --views 360   # a quick look
Nothing is gated on time; the machine's load is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from medgan.transforms.lowdose import MU_WATER_PER_MM, SimulateLowDosed, simulate_low_dose


def chest(size: int, slices: int) -> tuple[np.ndarray, float]:
    """The real chest CT resampled to ``slices x size x size`` (HU, (Z, Y, X)) and its pixel size in mm."""
    import slicerio

    image = sitk.ReadImage(str(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"))
    array = torch.from_numpy(sitk.GetArrayFromImage(image).astype(np.float32))[:, None]
    resized = torch.nn.functional.interpolate(array, size=(size, size), mode="bilinear", align_corners=False)
    # whole slices repeated along z (no blending: every slice keeps the scan's own noise level)
    z = torch.linspace(0, len(array) - 1, slices).round().long()
    return resized[z, 0].numpy(), image.GetSpacing()[0] * image.GetSize()[0] / size


def run_command(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GB) and the last stdout line of a command run under ``/usr/bin/time -v``."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
    rss_kb = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return seconds, rss_kb / 1e6, done.stdout.strip().splitlines()[-1]


def astra_slice(hu: np.ndarray, views: int, pixel_mm: float) -> float:
    """Seconds for forward projection + FBP of one slice with astra-toolbox's CPU algorithms."""
    import astra

    n = hu.shape[0]
    mu = np.clip(MU_WATER_PER_MM * pixel_mm * (1 + hu / 1000.0), 0, None).astype(np.float32)
    vol_geom = astra.create_vol_geom(n, n)
    proj_geom = astra.create_proj_geom("parallel", 1.0, int(np.ceil(n * np.sqrt(2))) + 2,
                                       np.arange(views) * np.pi / views)
    projector = astra.create_projector("linear", proj_geom, vol_geom)
    start = time.perf_counter()
    sino_id, sino = astra.create_sino(mu, projector)
    rec_id = astra.data2d.create("-vol", vol_geom)
    cfg = astra.astra_dict("FBP")
    cfg.update(ReconstructionDataId=rec_id, ProjectionDataId=sino_id, ProjectorId=projector)
    cfg["option"] = {"FilterType": "Ram-Lak"}
    alg = astra.algorithm.create(cfg)
    astra.algorithm.run(alg)
    astra.data2d.get(rec_id)
    seconds = time.perf_counter() - start
    astra.algorithm.delete(alg)
    astra.data2d.delete([sino_id, rec_id])
    astra.projector.delete(projector)
    return seconds


def skimage_slice(hu: np.ndarray, views: int, pixel_mm: float, dose: float, per_ray: float,
                  rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """Seconds for radon -> Poisson + Gaussian -> log -> iradon, and the noise it added (HU)."""
    from skimage.transform import iradon, radon

    theta = np.arange(views) * 180.0 / views
    start = time.perf_counter()
    mu_px = np.clip(MU_WATER_PER_MM * pixel_mm * (1 + hu / 1000.0), 0, None)
    p = radon(mu_px, theta, circle=False)
    counts = rng.poisson(dose * per_ray * np.exp(-p)) + np.sqrt(10.0) * rng.standard_normal(p.shape)
    rec = iradon(-np.log(np.maximum(counts, 1.0) / (dose * per_ray)), theta, output_size=hu.shape[0],
                 circle=False, filter_name="ramp")
    seconds = time.perf_counter() - start
    reference = iradon(p, theta, output_size=hu.shape[0], circle=False, filter_name="ramp")  # untimed
    return seconds, (rec - reference) * 1000.0 / (MU_WATER_PER_MM * pixel_mm)


def speed(args: argparse.Namespace) -> None:
    volume, pixel_mm = chest(args.size, args.slices)
    print(f"volume {args.slices} x {args.size} x {args.size} ({pixel_mm:.2f} mm pixels, 5 mm slices), "
          f"{args.views} views, dose {args.dose}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "chest.nrrd"
        image = sitk.GetImageFromArray(volume.round().astype(np.int16))
        image.SetSpacing((pixel_mm, pixel_mm, 5.0))
        sitk.WriteImage(image, str(src))
        env = dict(os.environ, MEDGAN_CACHE_DIR=str(Path(tmp) / "cache"))
        command = [str(Path(sys.executable).parent / "medgan-simulate"), "--input", str(src), "--dose",
                   str(args.dose), "--views", str(args.views), "--overwrite"]
        runs = {}
        for label in ("cold", "warm"):
            runs[label] = run_command([*command, "--output", str(Path(tmp) / f"{label}.nrrd")], env)
            print(f"  medgan-simulate {label}: {runs[label][0]:.1f} s, peak RSS {runs[label][1]:.2f} GB")
        print(f"  its line: {runs['warm'][2]}")

        mid = volume[args.slices // 2]
        astra_s = float(np.mean([astra_slice(mid, args.views, pixel_mm) for _ in range(args.astra_runs)]))
        print(f"  astra-toolbox CPU FP + FBP: {astra_s:.2f} s / slice; load {os.getloadavg()[0]:.1f}")

        per_ray = args.photons * pixel_mm * 5.0
        sk_s, sk_noise = skimage_slice(mid, args.views, pixel_mm, args.dose, per_ray, np.random.default_rng(0))
        print(f"  scikit-image radon + iradon: {sk_s:.2f} s / slice; load {os.getloadavg()[0]:.1f}")
        batch = torch.from_numpy(mid)[None].repeat(8, 1, 1)
        ours = simulate_low_dose(batch, args.dose, mode="absolute", photons=args.photons, pixel_size_mm=pixel_mm,
                                 slice_thickness_mm=5.0, views=args.views, seed=1) - batch
    c, r = args.size // 2, args.size // 8
    roi = (slice(c - r, c + r), slice(c - r, c + r))
    sigma_ours, sigma_sk = float(ours[(slice(None), *roi)].std()), float(sk_noise[roi].std())

    print()
    print("| pipeline | s / slice | vs astra | peak RSS |")
    print("|---|---|---|---|")
    for label in ("cold", "warm"):
        sec, rss, _ = runs[label]
        per = sec / args.slices
        print(f"| medgan-simulate, whole command, {label} | {per:.3f} | {astra_s / per:.1f}x faster | {rss:.2f} GB |")
    print(f"| astra-toolbox CPU (linear, FP + FBP) | {astra_s:.3f} | 1 | - |")
    print(f"| scikit-image radon + iradon | {sk_s:.3f} | {astra_s / sk_s:.2f}x | - |")
    print()
    print(f"noise sigma, central ROI, absolute mode, {per_ray:.3g} photons per ray: medgan {sigma_ours:.2f} HU, "
          f"scikit-image {sigma_sk:.2f} HU (ratio {sigma_ours / sigma_sk:.3f})")


def air_peaks(image: object, full: object) -> list[float | None]:
    """NPS peaks of ``image`` in air inside the field of view of the full-dose scan ``full`` (noise with no
    anatomy under it), ROI 16 / 24 / 32 pixels; None where fewer than 8 ROIs fit."""
    from medgan.transforms.noise_level import nps_peak_frequency, scan_nps

    out: list[float | None] = []
    for roi in (16, 24, 32):
        freq, power, count = scan_nps(image, full, roi=roi, region="air")
        out.append(nps_peak_frequency(freq, power) if count >= 8 else None)
    return out


def real(args: argparse.Namespace) -> None:
    from pydicom.data import get_testdata_file

    from medgan.io import read_volume
    from medgan.transforms.lowdose import CALIBRATION_META, pixel_size
    from medgan.transforms.noise_level import (
        difference_ratio,
        estimate_noise_hu,
        homogeneous_windows,
        nps_peak_frequency,
        scan_nps,
        window_pixels,
        window_stats,
    )

    print(f"load average {os.getloadavg()[0]:.1f}; NPS: homogeneous soft-tissue ROIs of 16 and 24 pixels, quadratic "
          "removed, the same ROIs for scan and added noise")
    print("| scan | filter fit | dose | sigma_FD HU | sigma_add / sigma_FD | sqrt(1/a-1) | ratio / expected | "
          "mean shift HU | texture scan / noise | NPS peak scan / noise, ROI 16 | ROI 24 | "
          "in air, ROI 16 / 24 / 32 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in ("693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm", "CT_small.dcm", "chest"):
        if name == "chest":
            import slicerio

            vol = read_volume(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd")
        else:
            vol = read_volume(get_testdata_file(name))
        px = pixel_size(vol)
        full = vol[0].as_tensor().permute(2, 1, 0).float()
        sigma_fd = estimate_noise_hu(full, pixel_size_mm=px)
        soft = homogeneous_windows(full, pixel_size_mm=px)
        texture_fd = difference_ratio(full, pixel_size_mm=px)
        scan_peaks = [nps_peak_frequency(*scan_nps(full, roi=roi, pixel_size_mm=px)[:2]) for roi in (16, 24)]

        scan_air = air_peaks(full, full)
        for fit in ("auto", "auto-nps"):
            for dose in (0.5, 0.25, 0.1):
                vol.meta.pop(CALIBRATION_META, None)  # each fit calibrates afresh
                sim = SimulateLowDosed("image", dose, views=args.views, filter_name=fit)
                added = sim.simulate(vol, dose, 11)[0].as_tensor().permute(2, 1, 0).float() - full
                ratio = estimate_noise_hu(added, full, pixel_size_mm=px) / sigma_fd
                shift = float(window_stats(added, window_pixels(px))[0][soft].mean())
                peaks = [nps_peak_frequency(*scan_nps(added, full, roi=roi, pixel_size_mm=px)[:2]) for roi in (16, 24)]
                expected = np.sqrt(1 / dose - 1)
                air = " / ".join("n/a" if a is None or b is None else f"{a:.3f}/{b:.3f} ({b / a:.2f})"
                                 for a, b in zip(scan_air, air_peaks(added, full)))
                print(f"| {name} | {fit} | {dose} | {sigma_fd:.2f} | {ratio:.3f} | {expected:.3f} | "
                      f"{ratio / expected:.3f} | {shift:+.2f} | {texture_fd:.2f} / "
                      f"{difference_ratio(added, full, pixel_size_mm=px):.2f} | {scan_peaks[0]:.3f} / {peaks[0]:.3f} "
                      f"({peaks[0] / scan_peaks[0]:.2f}) | {scan_peaks[1]:.3f} / {peaks[1]:.3f} "
                      f"({peaks[1] / scan_peaks[1]:.2f}) | {air} |")
            print(f"  {name} ({px:.2f} mm pixels), {fit}: {sim.last_calibration.describe()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("speed", "real"), default="speed")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--views", type=int, default=720)
    parser.add_argument("--dose", type=float, default=0.25)
    parser.add_argument("--photons", type=float, default=1e5, help="photons per mm^2 per view (absolute-mode check)")
    parser.add_argument("--astra-runs", type=int, default=2)
    args = parser.parse_args()
    speed(args) if args.part == "speed" else real(args)


if __name__ == "__main__":
    main()
