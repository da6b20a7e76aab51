"""Thresholds calibrated on normal scans: a voxel threshold at a chosen false-positive rate and a scan threshold.

Calibration streams maps into a fixed histogram (65 536 bins over 0–4096 HU, i.e. 1/16 HU per bin), so any
number of full-size scans fits in constant memory (values beyond 4096 HU, possible only without a HU window,
are kept as they are and ranked exactly); the voxel threshold is the upper edge of the bin in which
the fraction of normal body voxels above it drops to the requested rate, so the realised rate on the
calibration scans is at most ``fpr`` and differs from it by at most one bin's share of voxels.

The scan threshold is the ``1 - scan_fpr`` quantile of the normal scans' scores (with the ``"higher"``
rule): with fewer than ``1 / scan_fpr`` scans it is their maximum, i.e. no calibration scan is called
anomalous. The JSON file also stores the map and score settings, which ``detect`` reuses so a scan is
mapped exactly as the calibration scans were, and the SHA-256 of the model's weights, so thresholds are not
applied to another model by mistake.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan import __version__
from medgan.anomaly.calibrated import MapConfig
from medgan.anomaly.scores import ScoreConfig
from medgan.errors import ConfigError, InputError, MissingFileError
from medgan.io.atomic import check_output, staged_output

THRESHOLDS_FILE = "anomaly_thresholds.json"
HIST_MAX_HU = 4096.0
HIST_BINS = 1 << 16
REQUIRED_KEYS = ("voxel_hu", "scan", "fpr", "achieved_fpr", "scan_fpr", "sigma_mm", "body_hu")


def _parse_rate(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"{name}: got {value!r}; allowed a rate in (0, 1), e.g. 0.01")
    return float(value)


@dataclass
class Thresholds:
    """A calibration result (what ``medgan-anomaly calibrate`` writes and ``detect`` reads).

    Attributes:
        voxel_hu: map values above it are anomalous voxels (HU).
        scan: scan scores above it are anomalous scans (HU).
        fpr: the requested voxel false-positive rate; ``achieved_fpr`` the rate on the calibration voxels.
        scan_fpr: the requested scan false-positive rate.
        sigma_mm, body_hu, score: the map and score settings used (and to be reused).
        map: the rest of the map settings (:class:`~medgan.anomaly.calibrated.MapConfig`: method, median
            disc, polarity); ``map_state``: what the method learnt from the calibration scans.
        min_size_mm3: mask regions smaller than this are dropped (:func:`~medgan.anomaly.masks.anomaly_mask`).
        grow: the mask's regions above the voxel threshold grow to this fraction of their peak residual (0:
            they do not; files from before it load as 0).
        model_sha256, model: the model the thresholds belong to.
        scans, scan_scores, voxels: what the calibration saw.
    """

    voxel_hu: float
    scan: float
    fpr: float
    achieved_fpr: float
    scan_fpr: float
    sigma_mm: float
    body_hu: float | None
    score: dict[str, Any] = field(default_factory=lambda: ScoreConfig().to_config())
    map: dict[str, Any] = field(default_factory=lambda: {"method": "residual"})  # files before map methods
    map_state: dict[str, Any] = field(default_factory=dict)
    min_size_mm3: float = 0.0
    grow: float = 0.0
    model_sha256: str = ""
    model: str = ""
    scans: list[str] = field(default_factory=list)
    scan_scores: list[float] = field(default_factory=list)
    voxels: int = 0
    medgan_version: str = __version__

    @property
    def score_config(self) -> ScoreConfig:
        return ScoreConfig.from_config(self.score)

    @property
    def map_config(self) -> MapConfig:
        # files from before the search region mapped every body voxel alike
        return MapConfig.from_config({"region": "body", **self.map, "sigma_mm": self.sigma_mm, "body_hu": self.body_hu})

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write JSON atomically (temporary sibling, re-read, rename).

        Raises:
            OutputExistsError: ``path`` exists without ``overwrite``.
        """
        path = Path(path)
        check_output(path, overwrite)
        with staged_output(path) as staged:
            staged.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
            if Thresholds.load(staged) != self:
                raise RuntimeError(f"'{path}' read back differently; it was not written")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Thresholds:
        """Read a thresholds JSON.

        Raises:
            MissingFileError: no such file. InputError: not JSON, or missing / unknown keys.
        """
        path = Path(path)
        if path.is_dir():
            path = path / THRESHOLDS_FILE
        if not path.is_file():
            raise MissingFileError(f"thresholds file '{path}' does not exist; run 'medgan-anomaly calibrate' first")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"thresholds file '{path}' is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise InputError(f"thresholds file '{path}' must hold a JSON object")
        names = set(cls.__dataclass_fields__)
        missing, unknown = sorted(set(REQUIRED_KEYS) - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise InputError(f"thresholds file '{path}': missing key(s) {missing}, unknown key(s) {unknown}; "
                             f"expected {sorted(names)}")
        return cls(**data)


class ThresholdCalibrator:
    """Accumulates normal scans' maps and scan scores, then gives :class:`Thresholds`.

    Args:
        fpr: voxel false-positive rate to calibrate for, in (0, 1).
        scan_fpr: scan false-positive rate (default: ``fpr``).
    """

    def __init__(self, fpr: float = 0.01, scan_fpr: float | None = None, hist_max: float = HIST_MAX_HU) -> None:
        self.fpr = _parse_rate(fpr, "--fpr")
        self.scan_fpr = _parse_rate(self.fpr if scan_fpr is None else scan_fpr, "--scan-fpr")
        self.hist_max = float(hist_max)  # unitless maps (normalised, -log10 rates) want finer bins than HU
        self.counts = np.zeros(HIST_BINS + 1, dtype=np.int64)  # last bin: values >= hist_max
        self.overflow: list[np.ndarray] = []  # those values themselves (rare: errors beyond the HU window)
        self.scan_names: list[str] = []
        self.scan_scores: list[float] = []

    def add(self, name: str, anomaly_map: torch.Tensor, region: torch.Tensor | np.ndarray | None,
            score: float) -> None:
        """Add one normal scan: its ``(1, X, Y, Z)`` map (HU), the region the map is defined in, its score."""
        data = anomaly_map.detach().cpu().numpy() if isinstance(anomaly_map, torch.Tensor) else np.asarray(anomaly_map)
        if region is not None:
            mask = region.detach().cpu().numpy() if isinstance(region, torch.Tensor) else np.asarray(region)
            data = data[mask.reshape(data.shape).astype(bool)]
        values = data.ravel()
        bins = np.clip((values * (HIST_BINS / self.hist_max)).astype(np.int64), 0, HIST_BINS)
        self.counts += np.bincount(bins, minlength=HIST_BINS + 1)
        self.overflow.append(values[bins == HIST_BINS].astype(np.float64))
        self.scan_names.append(name)
        self.scan_scores.append(float(score))

    def voxel_threshold(self) -> tuple[float, float]:
        """``(threshold_hu, achieved_fpr)``: the smallest bin edge with at most ``fpr`` of the voxels above it."""
        total = int(self.counts.sum())
        if total == 0:
            raise InputError("calibration saw no voxel (empty body region in every normal scan)")
        allowed = int(np.floor(self.fpr * total))
        if self.counts[-1] > allowed:  # the threshold lies among the kept overflow values: exact order statistic
            values = np.sort(np.concatenate(self.overflow))[::-1]
            threshold = float(values[allowed])
            return threshold, float((values > threshold).sum() / total)
        above = total - np.cumsum(self.counts)  # voxels in bins after bin i = values >= edge i+1
        index = int(np.argmax(above <= allowed))
        edge = (index + 1) * self.hist_max / HIST_BINS
        return float(edge), float(above[index] / total)

    def result(self, *, sigma_mm: float, body_hu: float | None, score: ScoreConfig, model_sha256: str = "",
               model: str = "", **extra: Any) -> Thresholds:
        """The calibrated :class:`Thresholds` (needs at least one scan)."""
        if not self.scan_scores:
            raise InputError("calibration needs at least one normal scan")
        voxel_hu, achieved = self.voxel_threshold()
        scores = np.asarray(self.scan_scores)
        # "higher": the threshold is an observed score; with few scans, the largest normal score
        scan = float(np.quantile(scores, 1.0 - self.scan_fpr, method="higher"))
        return Thresholds(
            voxel_hu=voxel_hu, scan=scan, fpr=self.fpr, achieved_fpr=achieved, scan_fpr=self.scan_fpr,
            sigma_mm=float(sigma_mm), body_hu=None if body_hu is None else float(body_hu), score=score.to_config(),
            model_sha256=model_sha256, model=model, scans=list(self.scan_names),
            scan_scores=[float(s) for s in scores], voxels=int(self.counts.sum()), **extra,
        )


def bin_width_hu() -> float:
    """Resolution of the voxel threshold (HU)."""
    return HIST_MAX_HU / HIST_BINS


