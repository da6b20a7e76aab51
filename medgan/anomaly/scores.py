"""Scan and slice scores: one number that says how anomalous a scan (or an axial slice) is, from its map.

The maximum of a map is the most sensitive score and the least stable one (one bad voxel decides);
the mean drowns a small lesion in a large body. The default here is the mean of the top-k voxels where
k covers a fixed *volume* (``topk_mm3``, default 500 mm³ ≈ a sphere of 10 mm diameter), so the score
means the same on 0.7 mm and 5 mm grids. A high quantile and the plain maximum are offered as well.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from medgan.errors import ConfigError

METHODS = ("topk", "quantile", "max")


@dataclass(frozen=True)
class ScoreConfig:
    """How a map becomes a score.

    Args:
        method: ``"topk"`` (mean of the largest values covering ``topk_mm3``), ``"quantile"`` (the
            ``quantile`` of the values) or ``"max"``.
        topk_mm3: volume of the top-k voxels, mm³ (at least one voxel).
        quantile: in ``(0, 1]`` for ``"quantile"``.
    """

    method: str = "topk"
    topk_mm3: float = 500.0
    quantile: float = 0.999

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"score.method: got '{self.method}', allowed: {', '.join(METHODS)}")
        if not self.topk_mm3 > 0:
            raise ConfigError(f"score.topk_mm3: got {self.topk_mm3}; must be > 0")
        if not 0 < self.quantile <= 1:
            raise ConfigError(f"score.quantile: got {self.quantile}; allowed (0, 1]")

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> ScoreConfig:
        if cfg is None:
            return cls()
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"score: unknown key(s) {unknown}; allowed: {sorted(cls.__dataclass_fields__)}")
        return cls(**dict(cfg))


def _values(anomaly_map: torch.Tensor | np.ndarray, region: torch.Tensor | np.ndarray | None) -> np.ndarray:
    data = anomaly_map.detach().cpu().numpy() if isinstance(anomaly_map, torch.Tensor) else np.asarray(anomaly_map)
    data = data.reshape(data.shape[-3:]) if data.ndim == 4 else data
    if region is None:
        return data.ravel()
    mask = region.detach().cpu().numpy() if isinstance(region, torch.Tensor) else np.asarray(region)
    return data[mask.reshape(data.shape).astype(bool)]


def voxel_volume_mm3(affine: torch.Tensor | np.ndarray | None) -> float:
    """|det| of the 3×3 part of a voxel → world affine (1 for ``None``)."""
    if affine is None:
        return 1.0
    return float(abs(np.linalg.det(np.asarray(torch.as_tensor(affine).cpu(), dtype=np.float64)[:3, :3])))


def score_values(values: np.ndarray, config: ScoreConfig, voxel_mm3: float = 1.0) -> float:
    """Score of a flat array of map values (0.0 when empty)."""
    if values.size == 0:
        return 0.0
    if config.method == "max":
        return float(values.max())
    if config.method == "quantile":
        return float(np.quantile(values, config.quantile))
    # the tolerance keeps float noise of the determinant (8 mm3 as 7.9999999) from adding a voxel
    k = min(values.size, max(1, math.ceil(config.topk_mm3 / voxel_mm3 - 1e-6)))
    return float(np.partition(values, values.size - k)[values.size - k:].mean(dtype=np.float64))


def scan_score(anomaly_map: torch.Tensor, config: ScoreConfig | None = None,
               region: torch.Tensor | np.ndarray | None = None) -> float:
    """Score of a whole scan.

    Args:
        anomaly_map: ``(1, X, Y, Z)`` or ``(X, Y, Z)`` HU error; a ``MetaTensor``'s affine gives the voxel
            volume for ``topk`` (else 1 mm³).
        config: :class:`ScoreConfig` (default top-k mean over 500 mm³).
        region: bool voxels to score (e.g. the body); default all.

    Returns:
        The score in HU.
    """
    config = config or ScoreConfig()
    return score_values(_values(anomaly_map, region), config, voxel_volume_mm3(getattr(anomaly_map, "affine", None)))


def slice_scores(anomaly_map: torch.Tensor, config: ScoreConfig | None = None,
                 region: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
    """One score per axial slice (the last axis), with the scan's method; ``topk`` covers ``topk_mm3``
    of the slice (capped at its size). Returns ``(Z,)`` float64 HU."""
    config = config or ScoreConfig()
    data = anomaly_map.detach().cpu().numpy() if isinstance(anomaly_map, torch.Tensor) else np.asarray(anomaly_map)
    data = data.reshape(data.shape[-3:])
    mask = None if region is None else (
        region.detach().cpu().numpy() if isinstance(region, torch.Tensor) else np.asarray(region)
    ).reshape(data.shape).astype(bool)
    voxel = voxel_volume_mm3(getattr(anomaly_map, "affine", None))
    out = np.zeros(data.shape[2])
    for k in range(data.shape[2]):
        values = data[:, :, k].ravel() if mask is None else data[:, :, k][mask[:, :, k]]
        out[k] = score_values(values, config, voxel)
    return out
