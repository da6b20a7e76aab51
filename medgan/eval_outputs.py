"""What ``medgan-eval --output`` writes: a folder of tables, figures and a report, or one CSV file.

Folder layout:

- ``metrics.csv``: one row per case, slice and method (``case, slice, method, psnr, ssim, rmse``);
- ``cases.csv``: one row per case and method (means over the case's slices, seconds per slice), then a
  ``mean`` row per method (mean over cases);
- ``summary.json``: the protocol, window, per-method means and seconds per slice, the baselines' noise sigma;
- ``panels/<case>.png``: each method beside the target and its difference map (see
  :func:`medgan.eval_figures.save_comparison_panel`); ``boxplots.png``: per-case metrics per method;
- ``report.html``: all of it in one self-contained page (:func:`medgan.report.eval_report_html`).

The folder is assembled in a temporary sibling and renamed into place, so it appears whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from medgan.evaluation import METRICS, Evaluation, case_results, results_csv

PROTOCOL = ("ldct-benchmark (Eulig et al. 2024): per slice, SSIM = skimage structural_similarity(data_range=1) "
            "and PSNR = 10 log10(1/MSE) on the exam window scaled to [0, 1] (DICOM linear VOI), RMSE in HU on "
            "[-1024, 1900]; mean per case, then over cases")


def _csv(header: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if isinstance(v, float) and math.isnan(v) else (f"{v:.4f}" if isinstance(v, float) else v)
                         for v in row])
    return buf.getvalue()


def slices_csv(ev: Evaluation) -> str:
    """``metrics.csv``: one row per case, slice and method."""
    return _csv(["case", "slice", "method", *METRICS],
                [[s.case, s.slice, s.method, *(getattr(s, k) for k in METRICS)] for s in ev.scores])


def cases_csv(ev: Evaluation) -> str:
    """``cases.csv``: one row per case and method, then a ``mean`` row per method (mean over cases)."""
    header = ["case", "method", "slices", *METRICS, "seconds_per_slice"]
    rows = [[r[k] for k in header] for r in ev.case_means()]
    rows += [["mean", m, int(v["slices"]), *(v[k] for k in METRICS), v["seconds_per_slice"]]
             for m, v in ev.summary().items()]
    return _csv(header, rows)


def summary_dict(ev: Evaluation) -> dict[str, object]:
    """``summary.json``'s content (NaN seconds, for scans read from disk, as null)."""
    methods = {m: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in entry.items()}
               for m, entry in ev.summary().items()}
    return {"protocol": PROTOCOL, "window": list(ev.window), "cases": len(ev.cases), "methods": methods,
            "noise_sigma_hu": ev.noise_hu}


def single_csv(ev: Evaluation) -> str:
    """The one-file output: today's layout (``pred`` and ``input_*`` columns) when only a prediction (and the
    input) was scored, else ``cases.csv``."""
    return results_csv(case_results(ev)) if set(ev.methods) <= {"input", "pred"} and "pred" in ev.methods \
        else cases_csv(ev)


def write_outputs(ev: Evaluation, out: Path) -> Path:
    """Write ``out``: a ``.csv`` file (:func:`single_csv`) or the folder described in the module docstring."""
    from medgan.io.atomic import atomic_write, staged_output

    if out.suffix.lower() == ".csv":
        return atomic_write(out, single_csv(ev))
    from medgan.anomaly.segmentation_io import safe_name
    from medgan.eval_figures import save_comparison_panel, save_metric_boxplots
    from medgan.report import eval_report_html

    rows = ev.case_means()
    scores = {(r["case"], r["method"]): r for r in rows}
    with staged_output(out) as folder:
        folder.mkdir()
        (folder / "metrics.csv").write_text(slices_csv(ev))
        (folder / "cases.csv").write_text(cases_csv(ev))
        summary = summary_dict(ev)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        boxplot = save_metric_boxplots(folder / "boxplots.png", rows, ev.methods)
        panels = {}
        for case, views in ev.views.items():
            case_scores = {m: scores[(case, m)] for m in ev.methods if (case, m) in scores}
            panels[case] = save_comparison_panel(folder / "panels" / f"{safe_name(case)}.png", views, ev.window,
                                                 scores=case_scores, title=f"{case}: centre scored slice (scores: means over the case's slices)")
        (folder / "report.html").write_text(eval_report_html(summary, rows, boxplot, panels), encoding="utf-8")
    return out
