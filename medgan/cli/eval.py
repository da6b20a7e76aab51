"""``medgan-eval``: score output scans against targets in an HU window (ldct-benchmark protocol).

Example:
    medgan-eval --pred OUT --target DS/test/target --input DS/test/source --window chest --output eval.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from medgan.cli._common import ArgumentParser, run_command
from medgan.errors import ConfigError


def parse_window(text: str) -> tuple[float, float]:
    """``--window`` as ``(low, high)`` HU (names and ``CENTER,WIDTH`` as :func:`medgan.config.parse_window`)."""
    from medgan.config import parse_window as parse

    try:
        return parse(text)
    except ConfigError as err:
        raise ConfigError(f"--window: {err}") from None


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="medgan-eval",
        description="Score output scans against target scans: SSIM and PSNR in an HU window scaled to [0, 1], "
        "RMSE in HU on [-1024, 1900] (ldct-benchmark protocol); per slice, averaged per case, then over cases.",
        epilog="PRED/TARGET/INPUT are a scan each (file or DICOM series folder) or folders of scans matched by case "
        "name. Exit codes: 0 done, 2 bad input (one line on stderr), 1 unexpected failure.",
    )
    p.add_argument("--pred", required=True, help="output scan(s) to score")
    p.add_argument("--target", required=True, help="reference scan(s), e.g. full dose")
    p.add_argument("--input", default=None, help="un-processed input scan(s), e.g. low dose, scored for comparison")
    p.add_argument("--window", default="chest", help="chest (C-600/W1500), abdomen (C50/W400), head (C40/W80) or C,W")
    p.add_argument("--output", default=None, help="CSV file with one row per case and a mean row")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    window = parse_window(args.window)
    out = Path(args.output) if args.output else None
    if out is not None:
        from medgan.io.atomic import check_output

        check_output(out, args.overwrite, inputs=[args.pred, args.target, args.input])

    from medgan.evaluation import evaluate_cases, results_csv, summarize

    results = evaluate_cases(args.pred, args.target, window, inputs=args.input)
    text = results_csv(results)
    if out is not None:
        from medgan.io.atomic import staged_output

        with staged_output(out) as tmp:
            tmp.write_text(text)
    sys.stdout.write(text)
    summary = summarize(results)
    line = f"window [{window[0]:g}, {window[1]:g}] HU over {len(results)} case(s): " + ", ".join(
        f"{k} {summary[k]:.4g}" for k in ("ssim", "psnr", "rmse"))
    if "input_ssim" in summary:
        line += " (input: " + ", ".join(f"{k} {summary['input_' + k]:.4g}" for k in ("ssim", "psnr", "rmse")) + ")"
    print(line)
    if out is not None:
        print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command("medgan-eval", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
