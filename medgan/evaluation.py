"""Scan-level evaluation of outputs against targets, by the ldct-benchmark protocol.

``evaluate_cases`` pairs prediction, target (and optionally the un-processed input) scans by case name,
checks that each pair shares one voxel grid, and scores every axial slice with
:func:`medgan.metrics.windowed_metrics` (SSIM/PSNR in the exam window scaled to [0, 1], RMSE in HU on
[-1024, 1900]). A case's value is the mean over its slices; the summary is the mean over cases, so every
patient counts equally, as in Eulig et al. 2024.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from medgan.errors import InputError
from medgan.io.scans import is_single_scan

METRICS = ("psnr", "ssim", "rmse")
#: voxel grids must agree to this many mm (origin and axes) to be compared voxel by voxel
GRID_TOLERANCE_MM = 1e-3


@dataclass
class CaseResult:
    """Per-case means over slices; ``input`` holds the same metrics for the un-processed input, if given."""

    case: str
    slices: int
    output: dict[str, float]
    input: dict[str, float] = field(default_factory=dict)


def collect_scans(path: str | os.PathLike) -> dict[str, Path]:
    """``{case name: scan path}`` for a single scan (file or DICOM folder) or a folder of scans."""
    from medgan.io.scans import find_scans

    return find_scans(path, "input")


def match_cases(pred: Mapping[str, Path], target: Mapping[str, Path],
                inputs: Mapping[str, Path] | None = None, pred_role: str = "prediction") -> list[str]:
    """Case names present in every mapping; raises when a prediction or input has no target (or vice versa).
    ``pred_role`` names the first mapping in the message (``"input"`` when no prediction was given)."""
    names = set(pred)
    problems = []
    if names - set(target):
        problems.append(f"no target for {sorted(names - set(target))}")
    if set(target) - names:
        problems.append(f"no {pred_role} for {sorted(set(target) - names)}")
    if inputs is not None and names - set(inputs):
        problems.append(f"no input for {sorted(names - set(inputs))}")
    if problems:
        raise InputError("cases do not match by name: " + "; ".join(problems))
    return sorted(names)


def _same_grid(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise InputError(f"{what}: shapes differ {tuple(a.shape[1:])} vs {tuple(b.shape[1:])}; resample one first")
    diff = np.abs(np.asarray(a.affine, dtype=float) - np.asarray(b.affine, dtype=float)).max()
    if diff > GRID_TOLERANCE_MM:
        raise InputError(f"{what}: voxel grids differ by up to {diff:.3g} mm (origin/spacing/direction)")


def axial_slices(volume: torch.Tensor) -> np.ndarray:
    """``(1, X, Y, Z)`` -> ``(Z, X, Y)`` float32: every axial slice is one image, as in the benchmark."""
    return np.moveaxis(np.asarray(torch.as_tensor(volume).detach().float().cpu())[0], -1, 0)


def pick_slices(depth: int, max_slices: int | None) -> list[int]:
    """All slice indices, or at most ``max_slices`` evenly spaced ones (first and last included)."""
    if max_slices is None or depth <= max_slices:
        return list(range(depth))
    return sorted({int(round(z)) for z in np.linspace(0, depth - 1, max_slices)})


@dataclass
class SliceScore:
    """The metrics of one axial slice of one case for one method."""

    case: str
    slice: int
    method: str
    psnr: float
    ssim: float
    rmse: float


@dataclass
class Evaluation:
    """Every method scored on every case, slice by slice.

    ``seconds[method][case]`` is the wall time the method took on the case's scored slices (absent for
    scans read from disk); ``views[case]`` holds one 2D HU slice per method and ``"target"`` for figures.
    """

    window: tuple[float, float]
    methods: list[str]
    scores: list[SliceScore] = field(default_factory=list)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    slices_timed: dict[str, int] = field(default_factory=dict)
    noise_hu: dict[str, float] = field(default_factory=dict)
    views: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(s.case for s in self.scores))

    def case_means(self) -> list[dict[str, object]]:
        """One row per case and method: ``case, method, slices, psnr, ssim, rmse, seconds_per_slice``."""
        groups: dict[tuple[str, str], list[SliceScore]] = {}
        for s in self.scores:
            groups.setdefault((s.case, s.method), []).append(s)
        rows = []
        for case in self.cases:
            for method in self.methods:
                mine = groups.get((case, method), [])
                row: dict[str, object] = {"case": case, "method": method, "slices": len(mine)}
                row.update({k: float(np.mean([getattr(s, k) for s in mine])) for k in METRICS})
                secs = self.seconds.get(method, {}).get(case)
                row["seconds_per_slice"] = secs / len(mine) if secs is not None else float("nan")
                rows.append(row)
        return rows

    def summary(self) -> dict[str, dict[str, float]]:
        """Per method: the mean over cases of each metric, the slices scored and the seconds per slice."""
        rows = self.case_means()
        out = {}
        for method in self.methods:
            mine = [r for r in rows if r["method"] == method]
            entry = {k: float(np.mean([r[k] for r in mine])) for k in METRICS}
            entry["slices"] = float(sum(r["slices"] for r in mine))
            total = sum(self.seconds.get(method, {}).values())
            entry["seconds_per_slice"] = total / entry["slices"] if method in self.seconds else float("nan")
            out[method] = entry
        return out


def _score(ev: Evaluation, case: str, method: str, slices: np.ndarray, target: np.ndarray, index: Sequence[int]) -> None:
    from medgan.metrics import slice_metrics

    for z, pred_slice, target_slice in zip(index, slices, target):
        m = slice_metrics(pred_slice, target_slice, ev.window)
        ev.scores.append(SliceScore(case, int(z), method, m["psnr"], m["ssim"], m["rmse"]))


def _pair_scans(target: str | os.PathLike, **others: str | os.PathLike | None) -> tuple[list[str], dict[str, dict[str, Path]]]:
    """Case names and ``{role: {case: path}}``; scans named one by one pair whatever their names."""
    scans = {role: collect_scans(p) for role, p in {"target": target, **others}.items() if p is not None}
    paths = [Path(p) for p in (target, *others.values()) if p is not None]
    if all(is_single_scan(p) for p in paths):
        name = next(iter(scans["target"]))
        scans = {role: {name: next(iter(found.values()))} for role, found in scans.items()}
    first = "pred" if "pred" in scans else "inputs"
    names = match_cases(scans[first], scans["target"], scans.get("inputs") if first == "pred" else None,
                        pred_role="prediction" if first == "pred" else "input")
    return names, scans


def evaluate_methods(
    target: str | os.PathLike,
    window: tuple[float, float],
    *,
    pred: str | os.PathLike | None = None,
    inputs: str | os.PathLike | None = None,
    baselines: Sequence[str] = (),
    model: str | os.PathLike | None = None,
    noise_hu: float | None = None,
    max_slices: int | None = None,
    progress: bool = True,
    predictor_kwargs: Mapping[str, object] | None = None,
) -> Evaluation:
    """Score the input, a prediction, a model and classical baselines against the targets, slice by slice.

    Args:
        target: reference scan(s), e.g. full dose.
        window: ``(low, high)`` HU of the exam window for SSIM/PSNR.
        pred: output scan(s) made elsewhere (method ``"pred"``).
        inputs: un-processed scan(s) (method ``"input"``); the baselines and the model run on them.
        baselines: names from :data:`medgan.baselines.BASELINES`.
        model: a model package run through :class:`medgan.inference.Predictor` (method ``"model"``).
        noise_hu: the noise sigma the baselines use; default estimated per case from the input.
        max_slices: score at most this many evenly spaced slices per case (baselines run on those only).
        progress: tqdm bars over cases and methods.
        predictor_kwargs: passed to :class:`~medgan.inference.Predictor` (device, batch_size ...).

    Raises:
        InputError: unmatched cases, different voxel grids, or baselines/model without ``inputs``.
    """
    from tqdm.auto import tqdm

    from medgan.io import read_volume

    if (baselines or model is not None) and inputs is None:
        raise InputError("--baselines and --model run on the --input scans; give --input")
    if pred is None and inputs is None:
        raise InputError("nothing to score: give --pred, or --input (with --baselines / --model)")
    names, scans = _pair_scans(target, pred=pred, inputs=inputs)
    predictor = None
    if model is not None:
        from medgan.inference import Predictor

        predictor = Predictor(model, **dict(predictor_kwargs or {}))
    methods = (["input"] if inputs is not None else []) + (["pred"] if pred is not None else []) \
        + (["model"] if model is not None else []) + list(baselines)
    ev = Evaluation(window, methods)
    for name in tqdm(names, desc="cases", unit="case", disable=not progress):
        tgt_vol = read_volume(scans["target"][name])
        index = pick_slices(int(tgt_vol.shape[-1]), max_slices)
        target_slices = axial_slices(tgt_vol)[index]
        centre = len(index) // 2
        views = ev.views.setdefault(name, {"target": target_slices[centre]})
        outputs: dict[str, np.ndarray] = {}
        in_vol = None
        if inputs is not None:
            in_vol = read_volume(scans["inputs"][name])
            _same_grid(in_vol, tgt_vol, f"case '{name}' input vs target")
            outputs["input"] = axial_slices(in_vol)[index]
        if pred is not None:
            out_vol = read_volume(scans["pred"][name])
            _same_grid(out_vol, tgt_vol, f"case '{name}' prediction vs target")
            outputs["pred"] = axial_slices(out_vol)[index]
        for method in tqdm(methods, desc=f"methods ({name})", unit="method", leave=False, disable=not progress):
            if method not in outputs:
                start = time.perf_counter()
                outputs[method] = _run_method(method, in_vol, predictor, index, ev, name, noise_hu, tgt_vol)
                ev.seconds.setdefault(method, {})[name] = time.perf_counter() - start
            _score(ev, name, method, outputs[method], target_slices, index)
            views[method] = outputs[method][centre]
    return ev


def _run_method(method: str, in_vol: torch.Tensor, predictor, index: Sequence[int], ev: Evaluation, case: str,
                noise_hu: float | None, tgt_vol: torch.Tensor) -> np.ndarray:
    if method == "model":
        out_vol = predictor.predict(in_vol)
        _same_grid(out_vol, tgt_vol, f"case '{case}' model output vs target")
        return axial_slices(out_vol)[list(index)]
    from medgan.baselines import DenoiseContext, estimate_noise_hu, run_baseline

    slices = axial_slices(in_vol)[list(index)]
    if case not in ev.noise_hu:
        ev.noise_hu[case] = float(noise_hu) if noise_hu is not None else estimate_noise_hu(slices)
    return run_baseline(method, slices, DenoiseContext(ev.noise_hu[case]))


def evaluate_cases(pred: str | os.PathLike, target: str | os.PathLike, window: tuple[float, float],
                   inputs: str | os.PathLike | None = None, progress: bool = True) -> list[CaseResult]:
    """Score every prediction against its target (and the input against the target, when given).

    Args:
        pred, target, inputs: a scan or a folder of scans each; folders are matched by case name.
        window: ``(low, high)`` HU of the exam window for SSIM/PSNR.

    Raises:
        InputError: unmatched cases or different voxel grids; MissingFileError: a path does not exist.
    """
    ev = evaluate_methods(target, window, pred=pred, inputs=inputs, progress=progress)
    return case_results(ev)


def case_results(ev: Evaluation) -> list[CaseResult]:
    """The ``pred`` method per case, with the ``input`` method beside it when scored (today's CSV layout)."""
    rows = {(r["case"], r["method"]): r for r in ev.case_means()}
    results = []
    for case in ev.cases:
        out = rows[(case, "pred")]
        result = CaseResult(case, int(out["slices"]), {k: float(out[k]) for k in METRICS})
        if (case, "input") in rows:
            result.input = {k: float(rows[(case, "input")][k]) for k in METRICS}
        results.append(result)
    return results


def summarize(results: list[CaseResult]) -> dict[str, float]:
    """Mean over cases of each metric (``psnr``, ..., and ``input_psnr``, ... when inputs were scored)."""
    summary = {k: float(np.mean([r.output[k] for r in results])) for k in METRICS}
    if results and results[0].input:
        summary.update({f"input_{k}": float(np.mean([r.input[k] for r in results])) for k in METRICS})
    return summary


def results_csv(results: list[CaseResult]) -> str:
    """CSV text: one row per case and a final ``mean`` row."""
    with_input = bool(results and results[0].input)
    header = ["case", "slices", *METRICS] + ([f"input_{k}" for k in METRICS] if with_input else [])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in results:
        row = [r.case, r.slices, *(f"{r.output[k]:.4f}" for k in METRICS)]
        if with_input:
            row += [f"{r.input[k]:.4f}" for k in METRICS]
        writer.writerow(row)
    summary = summarize(results)
    writer.writerow(["mean", sum(r.slices for r in results), *(f"{summary[k]:.4f}" for k in header[2:])])
    return buf.getvalue()
