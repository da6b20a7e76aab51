"""``medgan-report``: one self-contained HTML page for a training run folder.

Reads what the run folder already holds (``metrics.csv``, ``config.yaml``, ``samples/*.png``) and writes
``RUN_DIR/report.html``: validation metrics (last and best), validation and loss curves, the latest validation
panels and the resolved configuration, every image inlined, so the file can be mailed or archived alone.

Example:
    medgan-report runs/cyclegan
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from medgan.cli._common import ArgumentParser, run_command
from medgan.errors import MissingFileError

PROG = "medgan-report"


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Write one self-contained HTML page (RUN_DIR/report.html) for a training run folder.",
                       epilog="Exit codes: 0 ok, 2 not a run folder (one line on stderr), 1 unexpected failure.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a medgan-train run folder (run.dir of the config)")
    p.add_argument("--output", default=None, help="HTML file to write (default: RUN_DIR/report.html)")
    p.add_argument("--panels", type=int, default=2, help="latest validation panels to show (default: 2)")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    run = Path(args.run_dir)
    if not run.is_dir():
        raise MissingFileError(f"RUN_DIR {run} is not a folder")
    from medgan.io.atomic import atomic_write
    from medgan.report import run_report_html

    out = Path(args.output) if args.output else run / "report.html"
    atomic_write(out, run_report_html(run, panels=max(0, args.panels)))
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
