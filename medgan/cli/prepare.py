"""medgan-prepare: turn scans into a training dataset (DATASET/{train,val,test}/{source,target}).

Subcommands:
  ldct       full-dose scans -> simulated low-dose / full-dose pairs (projection-domain noise)
  tcia-ldct  the TCIA "LDCT-and-Projection-data" image series -> real low-dose / full-dose pairs
  sr         scans -> low-resolution / original pairs for super-resolution
  unpaired   a pile of low-dose scans + a pile of full-dose scans of other patients (CycleGAN)
  check      validate an existing dataset folder (matching pairs, no patient in two splits)

Every subcommand splits by patient (no patient in two splits), writes dataset.json, and prints the
override that trains on the result (data.root=DATASET). See docs/data_layout.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from medgan.cli._common import ArgumentParser as _Parser
from medgan.cli._common import run_command
from medgan.io.formats import FORMATS as IO_FORMATS

PROG = "medgan-prepare"
FORMATS = ("same", *(f for f in IO_FORMATS if f != "dicom"))  # a dataset is written as files


def _common(p: argparse.ArgumentParser, default_split: str) -> None:
    p.add_argument("--input", required=True, help="input folder")
    p.add_argument("--output", required=True, help="dataset folder to create")
    p.add_argument(
        "--split",
        default=default_split,
        help=f"train,val,test fractions of patients, summing to 1 (default {default_split})",
    )
    p.add_argument("--seed", type=int, default=0, help="split (and noise) seed (default 0)")
    p.add_argument(
        "--format",
        default="same",
        choices=FORMATS,
        help="output format: same as the input, or nifti/nrrd/mha (default same)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _patient(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--patient-regex",
        default=None,
        help="regex whose first group is the patient id in a case name (default: TCIA ids like L067, "
        "else the name up to the first '_')",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{ldct,tcia-ldct,sr,unpaired,check}")

    ldct = sub.add_parser("ldct", help="simulate low-dose scans from full-dose ones", description=_LDCT)
    _common(ldct, "0.7,0.15,0.15")
    _patient(ldct)
    ldct.add_argument(
        "--dose", type=float, required=True, help="dose fraction in (0, 1], e.g. 0.25 for quarter dose"
    )
    ldct.add_argument("--photons", type=float, default=None,
                      help="full-dose photons per mm^2 per view (default: fitted to each scan's own noise)")
    ldct.add_argument("--noise-hu", type=float, default=None, help="known full-dose noise sigma in HU")
    ldct.add_argument(
        "--electronic-noise", type=float, default=10.0, help="electronic noise variance (default 10)"
    )
    ldct.add_argument(
        "--views", type=int, default=720, help="projection views over 180 degrees (default 720)"
    )
    ldct.add_argument(
        "--mode",
        default="relative",
        choices=("relative", "absolute"),
        help="relative: the input is a real full-dose scan, add only the extra noise (default); "
        "absolute: the input is noise-free (phantoms)",
    )

    tcia = sub.add_parser("tcia-ldct", help="TCIA LDCT-and-Projection-data image series", description=_TCIA)
    _common(tcia, "0.7,0.2,0.1")

    check = sub.add_parser("check", help="validate an existing dataset folder", description=_CHECK)
    check.add_argument("--input", required=True, help="dataset folder")
    check.add_argument(
        "--pairing",
        default="paired",
        choices=("paired", "unpaired", "single"),
        help="how it will be trained (default paired)",
    )
    _patient(check)

    sr = sub.add_parser("sr", help="low-resolution / high-resolution pairs", description=_SR)
    _common(sr, "0.7,0.15,0.15")
    _patient(sr)
    sr.add_argument("--scale", type=int, required=True,
                    help="in-plane down-sampling factor (integer >= 2; 1 with --slice-scale for thick -> thin only)")
    sr.add_argument(
        "--slice-scale", type=int, default=1, metavar="T",
        help="through-plane factor: every source slice is the mean of T contiguous slices, one T-times thicker "
        "slice (rectangular profile, no gap; default 1 keeps the slices)",
    )
    sr.add_argument(
        "--slice-thickness", type=float, default=None, metavar="MM", help="simulate thicker slices (mm)"
    )
    sr.add_argument(
        "--noise", type=float, default=0.0, metavar="HU", help="add white noise of this std (HU; default 0)"
    )
    unpaired = sub.add_parser("unpaired", help="two piles of scans, different patients", description=_UNPAIRED)
    unpaired.add_argument("--low", required=True, help="folder of low-dose scans")
    unpaired.add_argument("--full", required=True, help="folder of full-dose scans of other patients")
    unpaired.add_argument(
        "--pairs", default=None, help="a prepared paired dataset whose val/test pairs become val/test (optional)"
    )
    unpaired.add_argument("--output", required=True, help="dataset folder to create")
    unpaired.add_argument(
        "--split", default="0.8,0.1,0.1", help="train,val,test fractions of each pile's patients (default 0.8,0.1,0.1)"
    )
    unpaired.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    unpaired.add_argument("--format", default="same", choices=FORMATS, help="output format (default same)")
    unpaired.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    unpaired.add_argument("--no-progress", action="store_true", help="no progress bar")
    _patient(unpaired)
    return parser


_UNPAIRED = (
    "Build an unpaired dataset: low-dose scans (--low) and full-dose scans of other patients (--full), each pile "
    "split by patient into source / target. A patient in both piles is refused. --pairs adds the val/test pairs "
    "of a prepared paired dataset, so training also reports paired metrics."
)
_LDCT = (
    "Simulate low-dose CT from full-dose scans in the projection domain (Poisson + electronic noise, FBP) and "
    "write paired source (low dose) / target (full dose) cases, split by patient."
)
_TCIA = (
    "Read the TCIA LDCT-and-Projection-data image-domain download (ROOT/<patient>/<study>/<series>, series "
    "described 'Full Dose Images' / 'Low Dose Images') into the dataset layout, split by patient and balanced "
    "by exam type (C chest, L abdomen, N head)."
)
_CHECK = (
    "Validate a dataset folder (prepared or hand-made): paired case names must match in every split, and no "
    "patient may have cases in two splits. Exit 2 with the offending names otherwise."
)
_SR = (
    "Degrade scans to low resolution and pair them with the originals: each source voxel is the mean of its "
    "scale x scale (x slice-scale) block of original voxels, at the block's centre (docs/super_resolution.md). "
    "--slice-scale 4 turns 1.25 mm slices into 5 mm ones (thick -> thin SR); --scale 1 --slice-scale T keeps the "
    "in-plane grid."
)


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _check(Path(args.input), args.pairing, args.patient_regex)
    from medgan.data import prepare

    common = {
        "split": args.split,
        "seed": args.seed,
        "fmt": args.format,
        "overwrite": args.overwrite,
        "progress": not args.no_progress,
    }
    if args.command == "ldct":
        # Checked before the heavy imports so a bad dose fails at once.
        prepare._check_dose(args.dose)
        out = prepare.prepare_ldct(
            args.input,
            args.output,
            args.dose,
            photons=args.photons,
            noise_hu=args.noise_hu,
            electronic_noise=args.electronic_noise,
            views=args.views,
            mode=args.mode,
            patient_regex=args.patient_regex,
            **common,
        )
    elif args.command == "unpaired":
        from medgan.data.unpaired import prepare_unpaired

        out = prepare_unpaired(args.low, args.full, args.output, pairs=args.pairs,
                               patient_regex=args.patient_regex, **common)
    elif args.command == "tcia-ldct":
        out = prepare.prepare_tcia(args.input, args.output, **common)
    else:
        out = prepare.prepare_sr(
            args.input,
            args.output,
            args.scale,
            slice_thickness_mm=args.slice_thickness,
            noise_std_hu=args.noise,
            slice_scale=args.slice_scale,
            patient_regex=args.patient_regex,
            **common,
        )
    _report(out)
    return 0


def _check(root: Path, pairing: str, patient_regex: str | None) -> int:
    from medgan.errors import InputError
    from medgan.io.layout import SPLITS, load_layout, patients_in_two_splits

    layout = load_layout(root, patient_regex)
    if pairing == "paired":
        for split in SPLITS:
            layout.check_paired(split)
    leaks = patients_in_two_splits(layout)
    if leaks:
        listed = "; ".join(f"{p} in {', '.join(s)}" for p, s in sorted(leaks.items()))
        raise InputError(f"{root}: patients in more than one split: {listed}")
    counts = ", ".join(f"{s} {len(layout.splits[s])}" for s in SPLITS)
    print(f"{root}: ok ({counts} cases, {pairing})")
    return 0


def _report(root: Path) -> None:
    from medgan.io.layout import read_manifest

    cases = read_manifest(root).get("cases", {})
    counts = ", ".join(f"{split} {len(cases.get(split, []))}" for split in ("train", "val", "test"))
    print(f"wrote {root} ({counts} cases)")
    print(f"train on it with: medgan-train --config CONFIG data.root={root}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
