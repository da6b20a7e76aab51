"""``medgan-eval``: score output scans against targets in an HU window (ldct-benchmark protocol), with the
unprocessed input, a model package and classical denoisers in the same table.

Examples:
    medgan-eval --pred OUT --target DS/test/target --input DS/test/source --window chest --output eval.csv
    medgan-eval --target full/ --input low/ --model runs/x/model --baselines bm3d,nlm,bilateral,tv,gaussian \\
        --window chest --output eval_dir/
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from medgan.cli._common import ArgumentParser, run_command
from medgan.errors import ConfigError

PROG = "medgan-eval"


def parse_window(text: str) -> tuple[float, float]:
    """``--window`` as ``(low, high)`` HU (names and ``CENTER,WIDTH`` as :func:`medgan.config.parse_window`)."""
    from medgan.config import parse_window as parse

    try:
        return parse(text)
    except ConfigError as err:
        raise ConfigError(f"--window: {err}") from None


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got '{text}'") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got '{text}'")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Score scans against target scans by the ldct-benchmark protocol: per slice, SSIM "
        "(scikit-image, 7x7 uniform window) and PSNR in the exam window scaled to [0, 1], RMSE in HU on "
        "[-1024, 1900]; mean per case, then over cases. The unprocessed --input, a --model package and classical "
        "--baselines run on the input are scored beside --pred, with seconds per slice.",
        epilog="PRED/TARGET/INPUT are a scan each (file or DICOM series folder) or folders of scans matched by case "
        "name. docs/evaluation.md gives the baselines' parameter rules. Exit codes: 0 done, 2 bad input (one line "
        "on stderr), 1 unexpected failure.",
    )
    p.add_argument("--target", required=True, help="reference scan(s), e.g. full dose")
    p.add_argument("--pred", default=None, help="output scan(s) to score (method 'pred')")
    p.add_argument("--input", default=None,
                   help="unprocessed scan(s), e.g. low dose: scored as 'input'; --baselines and --model run on them")
    p.add_argument("--baselines", default=None,
                   help="comma list of classical denoisers run on --input: bm3d, nlm, bilateral, tv, gaussian "
                        "(bm3d needs pip install \"medgan[baselines]\")")
    p.add_argument("--bm3d-sigma", type=_positive(float), default=None, metavar="HU",
                   help="noise sigma in HU for the baselines (BM3D's sigma and the other filters' rules); default: "
                        "estimated per case from the input (wavelet MAD over soft tissue)")
    p.add_argument("--model", default=None,
                   help="model package (folder, .ckpt) run on --input through medgan-infer's Predictor (method 'model')")
    p.add_argument("--device", default="auto", help="--model device: auto | cpu | cuda[:N] (default: auto)")
    p.add_argument("--window", default="chest", help="chest (C-600/W1500), abdomen (C50/W400), head (C40/W80) or C,W")
    p.add_argument("--max-slices", type=_positive(int), default=None,
                   help="score at most this many evenly spaced slices per case (the baselines run on those only)")
    p.add_argument("--output", default=None,
                   help="a folder (metrics.csv per slice, cases.csv, summary.json, panels/, boxplots.png, "
                        "report.html) or a .csv file (one row per case and a mean row)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _table(summary: dict[str, dict[str, float]]) -> str:
    lines = [f"{'method':<10} {'SSIM':>7} {'PSNR dB':>8} {'RMSE HU':>8} {'s/slice':>8} {'slices':>6}"]
    for method, v in summary.items():
        secs = "-" if math.isnan(v["seconds_per_slice"]) else f"{v['seconds_per_slice']:.3f}"
        lines.append(f"{method:<10} {v['ssim']:7.4f} {v['psnr']:8.2f} {v['rmse']:8.1f} {secs:>8} {int(v['slices']):>6}")
    return "\n".join(lines) + "\n"


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    window = parse_window(args.window)
    baselines: list[str] = []
    if args.baselines:
        from medgan.baselines import parse_baselines

        baselines = parse_baselines(args.baselines)
    out = Path(args.output) if args.output else None
    if out is not None:
        from medgan.io.atomic import check_output

        check_output(out, args.overwrite, inputs=[args.pred, args.target, args.input, args.model])

    from medgan.evaluation import evaluate_methods

    ev = evaluate_methods(args.target, window, pred=args.pred, inputs=args.input, baselines=baselines,
                          model=args.model, noise_hu=args.bm3d_sigma, max_slices=args.max_slices,
                          progress=not args.no_progress, predictor_kwargs={"device": args.device})
    summary = ev.summary()
    if out is not None:
        from medgan.eval_outputs import write_outputs

        write_outputs(ev, out)
    sys.stdout.write(_table(summary))
    print(f"window [{window[0]:g}, {window[1]:g}] HU over {len(ev.cases)} case(s)"
          + (f"; baselines' noise sigma {', '.join(f'{s:.1f}' for s in ev.noise_hu.values())} HU" if ev.noise_hu else ""))
    if out is not None:
        print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
