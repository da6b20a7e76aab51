"""Self-contained HTML reports: one file, every image inlined as a base64 PNG, no scripts, no network.

- :func:`eval_report_html`: the page of ``medgan-eval --output DIR`` (summary table with seconds per slice,
  per-case table, box plots, one comparison panel per case).
- :func:`run_report_html`: the page of ``medgan-report RUN_DIR`` for a training run (loss and validation
  curves from ``metrics.csv``, the latest validation panels, the last and best validation metrics, the
  resolved ``config.yaml``).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from medgan.errors import InputError

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: 6px 0; }
pre { background: #f6f6f6; padding: 10px; font-size: 12px; overflow-x: auto; }
.note { color: #555; font-size: 13px; }
"""


def png_data_uri(source: bytes | str | os.PathLike) -> str:
    """``data:image/png;base64,...`` of PNG bytes or a PNG file."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def image_tag(source: bytes | str | os.PathLike, alt: str) -> str:
    return f'<figure><img src="{png_data_uri(source)}" alt="{html.escape(alt)}"><figcaption class="note">' \
           f"{html.escape(alt)}</figcaption></figure>"


def _cell(value: object, digits: int) -> str:
    if value is None:  # JSON null: not measured (e.g. the seconds of a scan read from disk)
        return "n/a"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return html.escape(str(value))


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]], digits: Sequence[int] | None = None) -> str:
    """An HTML table; floats printed with ``digits[i]`` decimals (NaN as ``n/a``)."""
    digits = list(digits) if digits is not None else [4] * len(header)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v, d)}</td>" for v, d in zip(row, digits)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> str:
    """A whole HTML document: ``sections`` are ``(heading, inner HTML)``."""
    parts = [f"<h2>{html.escape(h)}</h2>\n{body}" for h, body in sections]
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"<p class=\"note\">{intro}</p>\n" + "\n".join(parts) + "\n</body></html>\n")


# -- medgan-eval -------------------------------------------------------------------------------------------
def eval_report_html(summary: Mapping[str, object], case_rows: Sequence[Mapping[str, object]],
                     boxplot: str | os.PathLike | None, panels: Mapping[str, str | os.PathLike],
                     max_panels: int = 12) -> str:
    """The ``medgan-eval`` page from its ``summary.json`` content, ``cases.csv`` rows and figure files (the
    first ``max_panels`` case panels inlined)."""
    methods: Mapping[str, Mapping[str, float]] = summary["methods"]  # type: ignore[assignment]
    low, high = summary["window"]  # type: ignore[misc]
    header = ["method", "SSIM", "PSNR (dB)", "RMSE (HU)", "s / slice", "slices"]
    rows = [[m, v["ssim"], v["psnr"], v["rmse"], v["seconds_per_slice"], int(v["slices"])] for m, v in methods.items()]
    sections = [("Summary (mean over cases)", html_table(header, rows, [0, 4, 2, 1, 2, 0]))]
    noise = summary.get("noise_sigma_hu") or {}
    if noise:
        sections[0] = (sections[0][0], sections[0][1] + "<p class=\"note\">noise sigma used by the baselines (HU): "
                       + ", ".join(f"{html.escape(str(c))} {s:.1f}" for c, s in noise.items()) + "</p>")
    case_header = ["case", "method", "slices", "SSIM", "PSNR (dB)", "RMSE (HU)", "s / slice"]
    case_table = [[r["case"], r["method"], r["slices"], r["ssim"], r["psnr"], r["rmse"], r["seconds_per_slice"]]
                  for r in case_rows]
    if boxplot is not None:
        sections.append(("Per-case metrics", image_tag(boxplot, "per-case means of each metric per method")))
    sections.append(("Cases", html_table(case_header, case_table, [0, 0, 0, 4, 2, 1, 2])))
    for case, path in list(panels.items())[:max_panels]:
        sections.append((f"Case {case}", image_tag(path, f"{case}: centre scored slice; top: each method and the "
                                                         f"target with a zoomed inset; bottom: method - target")))
    if len(panels) > max_panels:  # keep the page small enough to open; every panel is also a file
        sections.append(("More cases", f"<p class=\"note\">{len(panels) - max_panels} more case panels in "
                                       f"panels/ beside this file.</p>"))
    intro = (f"ldct-benchmark protocol (Eulig et al. 2024): SSIM (scikit-image, 7x7 uniform window) and PSNR per "
             f"slice in the window [{low:g}, {high:g}] HU scaled to [0, 1]; RMSE in HU on [-1024, 1900]; mean per "
             f"case, then over {summary.get('cases', len(panels))} case(s).")
    return page("medgan-eval report", sections, intro)


# -- medgan-report (training runs) -------------------------------------------------------------------------
def read_metrics_csv(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Lightning's ``metrics.csv`` as ``{column: [(step, value), ...]}`` (empty cells skipped)."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key in ("epoch", "step") or value in ("", None):
                    continue
                series.setdefault(key, []).append((step, float(value)))
    return series


def _curves_png(series: Mapping[str, list[tuple[int, float]]], keys: Sequence[str], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_axis_off()
    for ax, key in zip(axes.flat, keys):
        steps, values = zip(*series[key])
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, ms=3, label=key)
        base = key.replace("val/", "val/input_")
        if key.startswith("val/") and base in series:
            b_steps, b_values = zip(*series[base])
            ax.plot(b_steps, b_values, "--", color="0.5", label="input (no processing)")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def run_report_html(run_dir: str | os.PathLike, panels: int = 2) -> str:
    """The page of a training run folder (``config.yaml``, ``metrics.csv``, ``samples/*.png``).

    Raises:
        InputError: the folder has neither ``metrics.csv`` nor ``config.yaml`` (not a medgan run).
    """
    run = Path(run_dir)
    metrics_path, config_path = run / "metrics.csv", run / "config.yaml"
    if not metrics_path.is_file() and not config_path.is_file():
        raise InputError(f"{run} is not a medgan run folder: it has neither metrics.csv nor config.yaml")
    sections = []
    series = read_metrics_csv(metrics_path) if metrics_path.is_file() else {}
    train_keys = sorted(k for k in series if k.startswith("train/") and k != "train/lr")
    val_keys = [k for k in ("val/ssim", "val/psnr", "val/rmse") if k in series]
    if val_keys:
        last = {k: series[k][-1] for k in val_keys}
        best_step, best = max(series["val/ssim"], key=lambda sv: sv[1]) if "val/ssim" in series else (None, None)
        rows = [[k.removeprefix("val/"), last[k][1], series.get(k.replace("val/", "val/input_"), [(0, math.nan)])[-1][1]]
                for k in val_keys]
        table = html_table(["metric", f"last validation (step {next(iter(last.values()))[0]})", "input"], rows,
                           [0, 4, 4])
        if best_step is not None:
            table += f"<p class=\"note\">best validation SSIM {best:.4f} at step {best_step}</p>"
        sections.append(("Validation metrics (ldct-benchmark protocol)", table))
        sections.append(("Validation curves", image_tag(_curves_png(series, val_keys, "validation"),
                                                        "validation metrics; dashed: the unprocessed input")))
    if train_keys:
        sections.append(("Training losses", image_tag(_curves_png(series, train_keys, "training losses"),
                                                      "training losses per logged step")))
    samples = sorted((run / "samples").glob("val_step*.png")) if (run / "samples").is_dir() else []
    if samples:
        sections.append(("Latest validation panels", "".join(image_tag(p, p.name) for p in samples[-panels:])))
    extra = [p for p in sorted((run / "samples").glob("*.png")) if not p.name.startswith("val_step")] \
        if (run / "samples").is_dir() else []
    if extra:
        sections.append(("Other figures", "".join(image_tag(p, p.name) for p in extra)))
    if config_path.is_file():
        sections.append(("Resolved configuration (config.yaml)", f"<pre>{html.escape(config_path.read_text())}</pre>"))
    return page(f"medgan run report: {run.name}", sections, html.escape(str(run.resolve())))
