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
from collections.abc import Mapping
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
                inputs: Mapping[str, Path] | None = None) -> list[str]:
    """Case names present in every mapping; raises when a prediction or input has no target (or vice versa)."""
    names = set(pred)
    problems = []
    if names - set(target):
        problems.append(f"no target for {sorted(names - set(target))}")
    if set(target) - names:
        problems.append(f"no prediction for {sorted(set(target) - names)}")
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


def _slice_metrics(volume: torch.Tensor, target: torch.Tensor, window: tuple[float, float]) -> dict[str, float]:
    from medgan.metrics import windowed_metrics

    def slices(v: torch.Tensor) -> torch.Tensor:
        # (1, X, Y, Z) -> (Z, 1, X, Y): every axial slice is one image, as in the benchmark
        return torch.as_tensor(v).float().permute(3, 0, 1, 2)

    values = windowed_metrics(slices(volume), slices(target), window)
    return {k: float(values[k].mean()) for k in METRICS}


def evaluate_cases(pred: str | os.PathLike, target: str | os.PathLike, window: tuple[float, float],
                   inputs: str | os.PathLike | None = None, progress: bool = True) -> list[CaseResult]:
    """Score every prediction against its target (and the input against the target, when given).

    Args:
        pred, target, inputs: a scan or a folder of scans each; folders are matched by case name.
        window: ``(low, high)`` HU of the exam window for SSIM/PSNR.

    Raises:
        InputError: unmatched cases or different voxel grids; MissingFileError: a path does not exist.
    """
    from tqdm.auto import tqdm

    from medgan.io import read_volume

    pred_scans, target_scans = collect_scans(pred), collect_scans(target)
    input_scans = collect_scans(inputs) if inputs is not None else None
    paths = [Path(p) for p in (pred, target, inputs) if p is not None]
    if all(is_single_scan(p) for p in paths):
        # scans named one by one are compared whatever their names; folders are matched by case name
        name = next(iter(pred_scans))
        pred_scans, target_scans = {name: next(iter(pred_scans.values()))}, {name: next(iter(target_scans.values()))}
        if input_scans is not None:
            input_scans = {name: next(iter(input_scans.values()))}
    names = match_cases(pred_scans, target_scans, input_scans)
    results = []
    for name in tqdm(names, desc="cases", unit="case", disable=not progress):
        out_vol = read_volume(pred_scans[name])
        tgt_vol = read_volume(target_scans[name])
        _same_grid(out_vol, tgt_vol, f"case '{name}' prediction vs target")
        result = CaseResult(name, int(tgt_vol.shape[-1]), _slice_metrics(out_vol, tgt_vol, window))
        if input_scans is not None:
            in_vol = read_volume(input_scans[name])
            _same_grid(in_vol, tgt_vol, f"case '{name}' input vs target")
            result.input = _slice_metrics(in_vol, tgt_vol, window)
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
