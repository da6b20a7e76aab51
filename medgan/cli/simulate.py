"""``medgan-simulate``: a simulated low-dose acquisition of a CT scan (projection-domain noise).

Reads a DICOM series folder / file or a NIfTI, NRRD or MHA file, simulates each axial slice at the
dose fraction ``--dose`` (forward projection, quantum + electronic noise, filtered back-projection;
see docs/simulation.md) and writes the result in the output path's format: a DICOM input written to a
folder becomes a *derived* series of the same study.

In relative mode (default) the scan is calibrated to itself: its full-dose noise is measured in soft
tissue, the photon budget is fitted so that the added noise is sigma_FD * sqrt(1/dose - 1), and the
noise texture follows the scan's kernel. --noise-hu (the known full-dose noise) or --photons override the
measurement. The command prints what it used.

Examples:
  medgan-simulate --input chest.nrrd --output chest_q.nrrd --dose 0.25
  medgan-simulate --input CT_SERIES/ --output CT_SERIES_10pct/ --dose 0.1 --seed 3
  medgan-simulate --input head.nii.gz --output head_q.nii.gz --dose 0.25 --noise-hu 4.5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from medgan.cli._common import ArgumentParser, run_command
from medgan.errors import ConfigError, MissingFileError, OutputExistsError

PROG = "medgan-simulate"


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--input", required=True, help="full-dose scan: DICOM series folder/file, .nii(.gz), .nrrd, .mha")
    p.add_argument(
        "--output", required=True, help="where to write; the extension picks the format, none = DICOM series folder"
    )
    p.add_argument("--dose", required=True, type=float, help="dose fraction in (0, 1], e.g. 0.25 for quarter dose")
    p.add_argument(
        "--photons",
        type=float,
        default=None,
        help="full-dose photons per mm^2 of detector per view (default: fitted to the scan in relative mode, "
        "1e5 in absolute mode)",
    )
    p.add_argument("--noise-hu", type=float, default=None, help="the scan's known full-dose noise sigma in HU")
    p.add_argument(
        "--slice-thickness", type=float, default=None, help="mm (default: DICOM SliceThickness, else the z spacing)"
    )
    p.add_argument(
        "--electronic-noise",
        type=float,
        default=10.0,
        help="electronic noise variance sigma_e^2 in counts^2 (default 10)",
    )
    p.add_argument("--views", type=int, default=720, help="projection angles over 180 degrees (default 720)")
    p.add_argument(
        "--mode",
        default="relative",
        help="relative (default: the input is a real full-dose scan, add only the extra noise) or "
        "absolute (the input is noise-free, e.g. a phantom)",
    )
    p.add_argument(
        "--filter",
        default="auto",
        help="FBP filter of the noise: auto (default: fitted to the scan's pixel-scale texture; ramp in absolute "
        "mode), auto-nps (fitted to the scan's NPS peak), ramp, shepp-logan, cosine, hamming, hann, gaussian",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0); same seed, same output")
    p.add_argument("--batch-size", type=int, default=16, help="slices per projector call (memory vs speed)")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not keep the projection operators on disk (default: kept in MEDGAN_CACHE_DIR or the user cache "
        "folder, at most MEDGAN_CACHE_MAX_GB, default 8; 512x512 slices at 720 views take 0.15 GB and a few "
        "seconds to build)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return p


def _check(args: argparse.Namespace) -> tuple[Path, Path]:
    # validated here, before any reading, so a typo costs no time and gives one line
    from medgan.io.atomic import check_writable
    from medgan.transforms.fbp_filter import FILTERS
    from medgan.transforms.lowdose import MODES, _parse_dose, _parse_positive

    _parse_dose(args.dose, "--dose")
    if args.mode not in MODES:
        raise ConfigError(f"--mode: got '{args.mode}', allowed: relative, absolute")
    for flag in ("photons", "noise_hu", "slice_thickness"):
        if getattr(args, flag) is not None:
            _parse_positive(getattr(args, flag), "--" + flag.replace("_", "-"))
    _parse_positive(args.electronic_noise, "--electronic-noise", allow_zero=True)
    if args.filter not in (*FILTERS, "auto", "auto-nps"):
        raise ConfigError(f"--filter: got '{args.filter}', allowed: auto, auto-nps, {', '.join(FILTERS)}")
    if args.views < 2:
        raise ConfigError(f"--views: got {args.views}, allowed: an integer >= 2")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: got {args.batch_size}, allowed: >= 1")
    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise MissingFileError(f"--input: '{src}' does not exist")
    if src.resolve() == dst.resolve():
        raise ConfigError(f"--output: '{dst}' is the input; inputs are never modified, choose another path")
    if dst.exists() and not args.overwrite:
        raise OutputExistsError(f"--output: '{dst}' exists; pass --overwrite to replace it")
    check_writable(dst)  # a read-only folder is refused before the simulation, not after it
    return src, dst


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    src, dst = _check(args)
    from medgan.data.prepare import describe_simulation, simulate_volume
    from medgan.io import read_volume, write_volume
    from medgan.transforms.lowdose import pixel_size
    from medgan.transforms.noise_level import estimate_noise_hu

    if args.no_cache:
        import os

        from medgan.transforms.projector_cache import CACHE_ENV

        os.environ[CACHE_ENV] = "off"
    volume = read_volume(src)
    start = time.perf_counter()
    low = simulate_volume(
        volume,
        args.dose,
        args.seed,
        photons=args.photons,
        noise_hu=args.noise_hu,
        slice_thickness_mm=args.slice_thickness,
        electronic_noise=args.electronic_noise,
        views=args.views,
        mode=args.mode,
        filter_name=args.filter,
        batch_size=args.batch_size,
        progress=True,
    )
    seconds = time.perf_counter() - start
    description = f"Simulated {args.dose:g} dose (medgan {args.mode}, seed {args.seed})"
    out = write_volume(
        low, dst, overwrite=args.overwrite, kind="ct", description=description, reference=volume
    )
    import torch

    z = torch.linspace(0, volume.shape[-1] - 1, min(8, volume.shape[-1])).round().long().unique()
    full = volume[0].as_tensor()[..., z].float().permute(2, 1, 0)  # a few spread slices say enough
    noise = low[0].as_tensor()[..., z].float().permute(2, 1, 0) - full
    try:
        added = f"{estimate_noise_hu(noise, full, pixel_size_mm=pixel_size(volume)):.1f} HU"
    except ValueError:  # no soft tissue: the plain std says something still
        added = f"std {float(noise.std()):.1f} HU"
    print(
        f"wrote {out}: {volume.shape[-1]} slices at dose {args.dose:g}, seed {args.seed}, {args.views} views; "
        f"{describe_simulation(low)}; added noise {added}; {seconds:.1f} s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``medgan-simulate``; returns the exit code (0 ok, 2 user error, 1 failure)."""
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
