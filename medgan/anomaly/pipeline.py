"""What ``medgan-anomaly`` does, from Python: calibrate thresholds on normal scans, detect anomalies in scans.

>>> from medgan.anomaly import calibrate, detect
>>> thresholds = calibrate("runs/anomaly_ae/model", "datasets/normal/val/target", fpr=0.01)
>>> thresholds.save("runs/anomaly_ae/model/anomaly_thresholds.json")
>>> results = detect("runs/anomaly_ae/model", "new_scans/", "anomaly_out/")
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medgan.anomaly.calibrated import HU_METHODS, CalibratedMapper, MapConfig
from medgan.anomaly.maps import AnomalyResult, signed_residual
from medgan.anomaly.masks import anomaly_mask
from medgan.anomaly.scores import ScoreConfig, scan_score, slice_scores
from medgan.anomaly.segmentation_io import safe_name, write_dicom_seg, write_seg_nrrd
from medgan.anomaly.thresholds import HIST_MAX_HU, THRESHOLDS_FILE, ThresholdCalibrator, Thresholds
from medgan.errors import ConfigError, InputError, MissingFileError, OutputExistsError
from medgan.io.atomic import staged_output
from medgan.io.formats import DEFAULT_SUFFIX
from medgan.io.scans import find_scans as io_find_scans

log = logging.getLogger(__name__)

MAP_FORMATS = ("same", "nifti", "nrrd")
_MAP_SUFFIX = {fmt: DEFAULT_SUFFIX[fmt] for fmt in ("nifti", "nrrd")}  # float maps: formats that hold float32
SCORES_FILE = "scores.csv"
UNITLESS_HIST_MAX = 256.0  # threshold histogram range of normalised maps and -log10 rates (1/256 bins)
SCORE_COLUMNS = ("case", "score", "threshold", "anomalous", "anomalous_voxels", "anomalous_volume_ml",
                 "max_slice")


def find_scans(path: str | os.PathLike, flag: str = "--input") -> dict[str, Path]:
    """``{file-name-safe case name: path}`` of one scan or of every scan in a folder (:func:`medgan.io.scans.find_scans`)."""
    return io_find_scans(path, flag, rename=safe_name)


def calibrate(model: Any, normal: str | os.PathLike, *, fpr: float = 0.01, scan_fpr: float | None = None,
              map_config: MapConfig | None = None, score: ScoreConfig | None = None, min_size_mm3: float = 0.0,
              grow: float = 0.0,
              progress: bool = True, **predictor_kw: Any) -> Thresholds:
    """Fit the map method on normal scans, then calibrate the voxel and scan thresholds on the same scans.

    Args:
        model: model package (folder, ``.ckpt`` or ``(manifest, state)``); ``None`` for the ``median`` map.
        normal: one normal scan or a folder of them (e.g. ``DATASET/val/target``), not used in training.
        fpr: voxel false-positive rate; scan_fpr: scan false-positive rate (default ``fpr``).
        map_config: the map (:class:`~medgan.anomaly.calibrated.MapConfig`, default: its defaults).
        score: scan score (:class:`~medgan.anomaly.scores.ScoreConfig`).
        min_size_mm3: mask regions below this volume are dropped by ``detect`` (stored with the thresholds).
        grow: ``detect`` grows the regions above the voxel threshold to this fraction of their peak residual
            (:func:`~medgan.anomaly.masks.anomaly_mask`; 0: no growth). ``fpr`` is the rate before growing.
        progress: tqdm bars.
        **predictor_kw: passed to :class:`medgan.inference.Predictor`.
    """
    from medgan.io import read_volume

    map_config = map_config or MapConfig()
    score = score or ScoreConfig()
    calibrator = ThresholdCalibrator(fpr, scan_fpr, hist_max=HIST_MAX_HU if map_config.method in HU_METHODS
                                     else UNITLESS_HIST_MAX)  # checks the rates before any model is loaded
    anomaly_mask(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1, dtype=torch.bool), 0.0, min_size_mm3,
                 grow=grow)  # checks them
    scans = find_scans(normal, "--normal")
    mapper = CalibratedMapper(model, map_config, progress=progress, **predictor_kw)
    bar = {"unit": "scan", "disable": not progress or len(scans) < 2}
    if mapper.needs_fit:  # pass 1: the per-tissue residuals (and exceedance tables) of the normal scans
        mapper.fit(read_volume(path) for path in tqdm(scans.values(), desc="fit map", **bar))
    for name, path in tqdm(scans.items(), desc="calibrate", **bar):
        result = mapper(read_volume(path))
        calibrator.add(name, result.map, result.body, scan_score(result.map, score, result.body))
    return calibrator.result(sigma_mm=map_config.sigma_mm, body_hu=map_config.body_hu, score=score,
                             model_sha256=mapper.fingerprint, model=mapper.description,
                             map={k: v for k, v in map_config.to_config().items() if k not in ("sigma_mm", "body_hu")},
                             map_state=mapper.state(), min_size_mm3=float(min_size_mm3), grow=float(grow))


def voxel_residual(volume: torch.Tensor, found: AnomalyResult, config: MapConfig) -> torch.Tensor:
    """``(1, X, Y, Z)`` residual of the scan against the map's restoration, as ``config.polarity`` counts it: what
    a mask grows on (:func:`~medgan.anomaly.masks.anomaly_mask`)."""
    difference = torch.as_tensor(volume).float() - found.reconstruction.as_tensor().float()
    return signed_residual(difference, config.polarity)


@dataclass
class CaseResult:
    """One detected case: its score against the scan threshold and the files written."""

    case: str
    score: float
    threshold: float
    anomalous: bool
    anomalous_voxels: int
    anomalous_volume_ml: float
    max_slice: int
    outputs: list[Path] = field(default_factory=list)

    def row(self) -> list[str]:
        return [self.case, f"{self.score:.3f}", f"{self.threshold:.3f}", "yes" if self.anomalous else "no",
                str(self.anomalous_voxels), f"{self.anomalous_volume_ml:.3f}", str(self.max_slice)]


@dataclass(frozen=True)
class _Plan:
    case: str
    input: Path
    map: Path
    seg_nrrd: Path
    figure: Path
    dicom_seg: Path | None


def default_thresholds_path(model: Any) -> Path | None:
    """``<package folder>/anomaly_thresholds.json`` (``None`` for in-memory models and no model)."""
    if model is None or isinstance(model, tuple):
        return None
    path = Path(model)
    return (path if path.is_dir() else path.parent) / THRESHOLDS_FILE


def plan_detect(input: str | os.PathLike, output: str | os.PathLike, format: str = "same",
                overwrite: bool = False) -> list[_Plan]:
    """Every output path of a ``detect`` run, checked before any model runs.

    Raises:
        ConfigError: bad ``format``. InputError: ``output`` inside the input folder.
        OutputExistsError: an output exists without ``overwrite``.
    """
    if format not in MAP_FORMATS:
        raise ConfigError(f"--format: got '{format}', allowed: {', '.join(MAP_FORMATS)}")
    scans = find_scans(input)
    src, out = Path(input).resolve(), Path(output).resolve()
    if src.is_dir() and (out == src or src in out.parents):
        raise InputError(f"--output {output} is inside the input folder {input}; choose a path outside it")
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {output} is a file; detect writes into a folder")
    from medgan.io import detect_format

    plans = []
    for name, path in scans.items():
        fmt = detect_format(path)
        map_fmt = format if format != "same" else (fmt if fmt in _MAP_SUFFIX else "nifti")
        folder = Path(output)
        plans.append(_Plan(name, path, folder / f"{name}_map{_MAP_SUFFIX[map_fmt]}", folder / f"{name}_mask.seg.nrrd",
                           folder / f"{name}_anomaly.png", folder / f"{name}_seg.dcm" if fmt == "dicom" else None))
    if not overwrite:
        existing = [p for plan in plans for p in (plan.map, plan.seg_nrrd, plan.figure, plan.dicom_seg)
                    if p is not None and p.exists()]
        if (Path(output) / SCORES_FILE).exists():
            existing.append(Path(output) / SCORES_FILE)
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise OutputExistsError(f"{existing[0]} exists{more}; pass --overwrite to replace it")
    return plans


def detect(model: Any, input: str | os.PathLike, output: str | os.PathLike,
           thresholds: Thresholds | str | os.PathLike | None = None, *, format: str = "same",
           window: tuple[float, float] = (-1350.0, 150.0), overwrite: bool = False, progress: bool = True,
           **predictor_kw: Any) -> list[CaseResult]:
    """Map, score and threshold every scan; write per case the heat map, the masks and a figure, plus ``scores.csv``.

    Args:
        model: the model package calibrated (``None`` for thresholds of the net-free ``median`` map).
        input: one scan or a folder of scans.
        output: output folder (created; never inside the input folder).
        thresholds: a :class:`Thresholds`, its JSON path, or ``None`` for ``<model>/anomaly_thresholds.json``.
            Its map and score settings are reused, so scans are mapped as the calibration scans were.
        format: heat-map format: ``"same"`` (NIfTI for NIfTI/DICOM/MHA input, NRRD for NRRD), ``"nifti"``,
            ``"nrrd"``.
        window: HU display window of the figures.
        overwrite: replace existing outputs.
        progress: tqdm bars.

    Returns:
        One :class:`CaseResult` per case, in case order.

    Raises:
        MissingFileError: no thresholds file. InputError: thresholds of another model.
        OutputExistsError, ConfigError: see :func:`plan_detect`.
    """
    from medgan.anomaly.figure import save_anomaly_figure
    from medgan.io import read_volume, write_volume

    if not isinstance(thresholds, Thresholds):
        path = thresholds if thresholds is not None else default_thresholds_path(model)
        if path is None:
            raise MissingFileError("no thresholds given (no model folder to look in); pass --thresholds")
        thresholds = Thresholds.load(path)
    plans = plan_detect(input, output, format, overwrite)
    mapper = CalibratedMapper(model, thresholds.map_config, thresholds.map_state, progress=progress, **predictor_kw)
    if thresholds.model_sha256 and mapper.fingerprint and thresholds.model_sha256 != mapper.fingerprint:
        raise InputError(f"--thresholds were calibrated for another model ('{thresholds.model}', weights sha256 "
                         f"{thresholds.model_sha256[:12]}...); calibrate this --model first")
    score_cfg = thresholds.score_config
    unit = " HU" if thresholds.map_config.method in HU_METHODS else ""  # the other maps are unitless
    results = []
    for plan in tqdm(plans, unit="case", desc="detect", disable=not progress or len(plans) < 2):
        volume = read_volume(plan.input)
        found = mapper(volume)
        mask = anomaly_mask(found.map.as_tensor(), found.body, thresholds.voxel_hu, thresholds.min_size_mm3,
                            found.map.affine, thresholds.grow,
                            voxel_residual(volume, found, thresholds.map_config) if thresholds.grow > 0 else None)
        score = scan_score(found.map, score_cfg, found.body)
        per_slice = slice_scores(found.map, score_cfg, found.body)
        k = int(np.argmax(per_slice))
        voxel_ml = float(abs(np.linalg.det(np.asarray(found.map.affine, dtype=np.float64)[:3, :3]))) / 1000.0
        result = CaseResult(plan.case, score, thresholds.scan, score > thresholds.scan, int(mask.sum()),
                            int(mask.sum()) * voxel_ml, k)
        result.outputs.append(write_volume(found.map, plan.map, overwrite=overwrite, kind="map"))
        result.outputs.append(write_seg_nrrd(mask, plan.seg_nrrd, found.map.affine, overwrite=overwrite))
        headers = volume.meta.get("dicom_headers")
        if plan.dicom_seg is not None and headers is not None:
            if headers.frame_numbers is not None and any(f is not None for f in headers.frame_numbers):
                log.warning("%s: multi-frame DICOM source; no DICOM SEG written (seg.nrrd only)", plan.case)
            else:
                result.outputs.append(write_dicom_seg(mask, headers, plan.dicom_seg, algorithm=mapper.description,
                                                      overwrite=overwrite))
        result.outputs.append(save_anomaly_figure(
            plan.figure, volume.as_tensor()[0, :, :, k].numpy(), found.map.as_tensor()[0, :, :, k].numpy(),
            mask[0, :, :, k].numpy(),
            window=window, map_max_hu=2.0 * thresholds.voxel_hu, affine_ras=found.map.affine.numpy(),
            map_label="|error| (HU)" if unit else f"{thresholds.map_config.method} map (unitless)",
            title=f"{plan.case}  slice {k}  score {score:.1f}{unit} (threshold {thresholds.scan:.1f})"
                  f"{'  ANOMALOUS' if result.anomalous else ''}"))
        results.append(result)
    write_scores_csv(Path(output) / SCORES_FILE, results, overwrite=overwrite)
    return results


def write_scores_csv(path: Path, results: list[CaseResult], overwrite: bool = False) -> Path:
    """``scores.csv``: one row per case (:data:`SCORE_COLUMNS`), written atomically."""
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SCORE_COLUMNS)
    writer.writerows(r.row() for r in results)
    with staged_output(path) as staged:
        staged.write_text(buffer.getvalue(), encoding="utf-8")
    return path
