"""``medgan-anomaly``: find anomalies as what a restoration of normal anatomy takes away (calibrated maps).

Examples:
    medgan-anomaly calibrate --model runs/anomaly/model --normal datasets/normal/val/target --fpr 0.01 \\
        --output runs/anomaly/model/anomaly_thresholds.json
    medgan-anomaly detect --model runs/anomaly/model --input scans/ --output anomaly_out/
    medgan-anomaly calibrate --normal normal_scans/ --output median_thresholds.json  # the default map needs no net
    medgan-anomaly detect --input scans/ --output anomaly_out/ --thresholds median_thresholds.json
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from medgan.cli._common import ArgumentParser as _Parser
from medgan.cli._common import run_command

PROG = "medgan-anomaly"
#: kept in step with medgan.anomaly.calibrated (not imported: --help must not import torch); a test checks
MAP_METHODS = ("residual", "tissue", "median", "median_hu", "combined")
HU_METHODS = ("residual", "median_hu")
DEFAULT_MAP = "median_hu"


def _window(text: str) -> tuple[float, float]:
    """``chest`` / ``abdomen`` / ``head`` ... or ``CENTER,WIDTH`` -> ``(low, high)`` HU."""
    from medgan.config import parse_window
    from medgan.errors import ConfigError

    try:
        return parse_window(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model package folder (recipe dae or vae, e.g. from configs/anomaly.yaml) or .ckpt; "
                        "not needed for --map median")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (default: 4)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1]
        + "\nExit codes: 0 ok, 2 bad input/model/arguments (one line on stderr), 1 unexpected failure.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{calibrate,detect}")
    cal = sub.add_parser("calibrate", help="thresholds at a false-positive rate, from normal scans",
                         description="Map normal scans (not used in training) and calibrate a voxel threshold at "
                                     "--fpr and a scan-score threshold; writes them as JSON.")
    _add_runtime(cal)
    cal.add_argument("--normal", required=True, help="one normal scan or a folder of normal scans")
    cal.add_argument("--output", required=True,
                     help="thresholds JSON to write (detect looks for <model>/anomaly_thresholds.json by default)")
    cal.add_argument("--fpr", type=float, default=0.01,
                     help="voxel false-positive rate on the normal scans' body voxels (default: 0.01)")
    cal.add_argument("--scan-fpr", type=float, default=None, help="scan false-positive rate (default: --fpr)")
    cal.add_argument("--map", default=DEFAULT_MAP, choices=MAP_METHODS,
                     help="anomaly map: the net's |scan - restoration| (residual), divided by the error expected for "
                          "the tissue (tissue), the net-free median restoration's residual per tissue (median) or "
                          "in HU (median_hu), or tissue and median as added -log10 rarities (combined). "
                          f"Default: {DEFAULT_MAP} (docs/anomaly.md)")
    cal.add_argument("--median-mm", type=float, default=8.0,
                     help="radius of the median disc, mm; lesions up to about this radius are found (default: 8)")
    cal.add_argument("--polarity", default="both", choices=["both", "bright", "dark"],
                     help="deviations that count: both, brighter or darker than the restoration (default: both)")
    cal.add_argument("--open-mm", type=float, default=9.0,
                     help="prefer blobs: grey opening with an in-plane square this wide, mm; thinner structures "
                          "(vessels, edges) drop out (default: 9; 0 = off)")
    cal.add_argument("--voxel-weight", type=float, default=0.1,
                     help="weight of the unopened map added to the opened one (default: 0.1)")
    cal.add_argument("--region", default="soft", choices=["soft", "body"],
                     help="where the map counts in full: soft tissue (not gas, lung, bone or its rim) or the whole "
                          "body (default: soft)")
    cal.add_argument("--outside-weight", type=float, default=0.1,
                     help="factor of the map outside the soft-tissue region (default: 0.1)")
    cal.add_argument("--grow", type=float, default=0.0,
                     help="detect grows mask regions (in-plane, one voxel at most) over voxels whose residual is at "
                          "least this fraction of the region's peak (default: 0, off; 0.5: half maximum)")
    cal.add_argument("--min-size-mm3", type=float, default=0.0,
                     help="detect drops mask regions smaller than this, mm3 (default: 0, keep all)")
    cal.add_argument("--sigma-mm", type=float, default=1.0, help="Gaussian smoothing of the error map, mm (default: 1)")
    cal.add_argument("--body-hu", type=float, default=-500.0,
                     help="body/air threshold, HU: the map counts inside the body only (default: -500)")
    cal.add_argument("--no-body", action="store_true", help="use every voxel, not only the body")
    cal.add_argument("--score", default="topk", choices=["topk", "quantile", "max"],
                     help="scan score: mean of the top --topk-mm3 of the map, its --quantile, or its max (default: topk)")
    cal.add_argument("--topk-mm3", type=float, default=500.0, help="volume of the top-k voxels, mm3 (default: 500)")
    cal.add_argument("--quantile", type=float, default=0.999, help="quantile for --score quantile (default: 0.999)")

    det = sub.add_parser("detect", help="heat maps, masks, scores and figures for scans",
                         description="Per case: <case>_map.nii.gz|.nrrd (float32 HU error), <case>_mask.seg.nrrd, "
                                     "<case>_seg.dcm (DICOM SEG, DICOM input only), <case>_anomaly.png; and scores.csv.")
    _add_runtime(det)
    det.add_argument("--input", required=True, help="one scan (DICOM series folder/file, NIfTI, NRRD, MHA) or a folder")
    det.add_argument("--output", required=True, help="output folder (not inside the input folder)")
    det.add_argument("--thresholds", default=None,
                     help="thresholds JSON from 'calibrate' (default: <model>/anomaly_thresholds.json)")
    det.add_argument("--format", default="same", choices=["same", "nifti", "nrrd"],
                     help="heat-map format; 'same' = NRRD for NRRD input, NIfTI otherwise (default: same)")
    det.add_argument("--window", type=_window, default="chest",
                     help="figure window: chest (C-600/W1500), abdomen, head or CENTER,WIDTH (default: chest)")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from pathlib import Path

    from medgan.errors import OutputExistsError

    runtime = {"device": args.device, "batch_size": args.batch_size, "progress": not args.no_progress}
    if args.command == "calibrate":
        output = Path(args.output)
        if output.exists() and not args.overwrite:  # answer before minutes of mapping
            raise OutputExistsError(f"--output {output} exists; pass --overwrite to replace it")
        from medgan.anomaly import MapConfig, ScoreConfig, calibrate

        score = ScoreConfig(method=args.score, topk_mm3=args.topk_mm3, quantile=args.quantile)
        map_config = MapConfig(method=args.map, sigma_mm=args.sigma_mm, body_hu=None if args.no_body else args.body_hu,
                               median_mm=args.median_mm, polarity=args.polarity, open_mm=args.open_mm,
                               voxel_weight=args.voxel_weight, region=args.region, outside_weight=args.outside_weight)
        thresholds = calibrate(args.model, args.normal, fpr=args.fpr, scan_fpr=args.scan_fpr, map_config=map_config,
                               score=score, min_size_mm3=args.min_size_mm3, grow=args.grow, **runtime)
        thresholds.save(output, overwrite=args.overwrite)
        unit = " HU" if args.map in HU_METHODS else ""
        print(f"{args.map} map: voxel threshold {thresholds.voxel_hu:.3f}{unit} (fpr {thresholds.achieved_fpr:.4f} on "
              f"{thresholds.voxels} voxels), scan threshold {thresholds.scan:.3f}{unit} over {len(thresholds.scans)} "
              f"scan(s); wrote {output}")
        return 0
    from medgan.anomaly import detect

    results = detect(args.model, args.input, args.output, args.thresholds, format=args.format, window=args.window,
                     overwrite=args.overwrite, **runtime)
    for r in results:
        print(f"{r.case}: score {r.score:.2f} (threshold {r.threshold:.2f}) -> "
              f"{'ANOMALOUS' if r.anomalous else 'normal'}; {r.anomalous_voxels} voxels flagged")
    print(f"wrote {Path(args.output) / 'scores.csv'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
