"""Calibrated anomaly scores that need no net, and the normalisation that makes net residuals comparable.

- :class:`IntensityOutlier` is the baseline every reconstruction method must beat (Baur et al. 2021 found
  plain intensity thresholding ahead of every AE/VAE on brain MR): the negative log density of a voxel's
  HU (after a small local mean, which cuts noise) among the normal body voxels of the calibration scans.
  Soft tissue at 40 HU is common, tissue at 240 HU (between soft tissue and bone) is rare, so a +200 HU
  lesion in soft tissue scores high; the same lesion next to bone does not, which is this baseline's limit.
- :class:`TissueErrorNormaliser` divides a residual map by the residual expected for the voxel's tissue,
  learnt on the calibration scans as the mean residual per HU bin of the *restoration* (the restoration of
  a lesion shows the tissue it replaced). Edges of bone and air err more than fat or muscle; without this
  the map ranks every normal edge above a faint lesion.
- :class:`TailCalibrator` turns any map into ``-log10`` of its exceedance rate among the calibration
  scans' body voxels, so maps of different units add up (Fisher's method of combining p-values).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from medgan.anomaly.maps import parse_polarity, signed_residual, smooth_mm
from medgan.anomaly.regions import disc_footprint
from medgan.errors import InputError
from medgan.io.geometry import voxel_spacing


def _np3(x: torch.Tensor | np.ndarray) -> np.ndarray:
    data = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return data.reshape(data.shape[-3:])


class IntensityOutlier:
    """Negative log density of locally averaged HU among normal body voxels.

    Args:
        sigma_mm: Gaussian local mean before the look-up, in mm (0: raw voxels).
        bin_hu: histogram bin width, HU; ``hu_range``: histogram range (values outside are clipped to it).
        smooth_bins: Gaussian smoothing of the histogram, in bins (a density, not a jagged count).
    """

    def __init__(self, sigma_mm: float = 1.5, bin_hu: float = 2.0, hu_range: tuple[float, float] = (-1024.0, 3072.0),
                 smooth_bins: float = 3.0) -> None:
        self.sigma_mm, self.bin_hu, self.smooth_bins = float(sigma_mm), float(bin_hu), float(smooth_bins)
        self.low, self.high = (float(v) for v in hu_range)
        self.counts = np.zeros(int(np.ceil((self.high - self.low) / self.bin_hu)), dtype=np.float64)
        self._nll: np.ndarray | None = None

    def _smoothed(self, volume: torch.Tensor) -> np.ndarray:
        affine = getattr(volume, "affine", torch.eye(4))
        data = torch.as_tensor(volume).float().reshape(1, *volume.shape[-3:])
        return _np3(smooth_mm(data, affine, self.sigma_mm))

    def _bins(self, hu: np.ndarray) -> np.ndarray:
        return np.clip(((hu - self.low) / self.bin_hu).astype(np.int64), 0, self.counts.size - 1)

    def fit(self, volumes: Iterable[torch.Tensor], bodies: Iterable[torch.Tensor | np.ndarray]) -> IntensityOutlier:
        """Accumulate the HU histogram of the body voxels of normal ``(1, X, Y, Z)`` HU scans."""
        from scipy.ndimage import gaussian_filter1d

        for volume, body in zip(volumes, bodies):
            hu = self._smoothed(volume)[_np3(body).astype(bool)]
            self.counts += np.bincount(self._bins(hu), minlength=self.counts.size)
        if self.counts.sum() == 0:
            raise InputError("intensity outlier: the calibration scans have no body voxel")
        density = gaussian_filter1d(self.counts, self.smooth_bins) if self.smooth_bins > 0 else self.counts
        density = density / density.sum()
        self._nll = -np.log(density + 1e-12).astype(np.float32)
        return self

    def __call__(self, volume: torch.Tensor, body: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """``(1, X, Y, Z)`` float32 map (nats), 0 outside ``body``."""
        if self._nll is None:
            raise InputError("intensity outlier: fit() on normal scans first")
        out = self._nll[self._bins(self._smoothed(volume))]
        if body is not None:
            out = np.where(_np3(body).astype(bool), out, 0.0).astype(np.float32)
        return torch.from_numpy(out)[None]


class TissueErrorNormaliser:
    """Residual / (mean calibration residual of the voxel's tissue), tissue = HU bin of the restoration.

    Args:
        bin_hu: HU bin width of the restoration; ``hu_range``: binned range (clipped to it).
        floor: added to the expected residual (HU), so bins of near-perfect restoration do not explode.
    """

    def __init__(self, bin_hu: float = 25.0, hu_range: tuple[float, float] = (-1024.0, 1024.0),
                 floor: float = 2.0) -> None:
        self.bin_hu, self.floor = float(bin_hu), float(floor)
        self.low, self.high = (float(v) for v in hu_range)
        n = int(np.ceil((self.high - self.low) / self.bin_hu))
        self.sums, self.counts = np.zeros(n), np.zeros(n)
        self._expected: np.ndarray | None = None

    def _bins(self, hu: np.ndarray) -> np.ndarray:
        return np.clip(((hu - self.low) / self.bin_hu).astype(np.int64), 0, self.sums.size - 1)

    def add(self, residual: torch.Tensor, restoration: torch.Tensor, body: torch.Tensor | np.ndarray) -> None:
        """One calibration scan: its residual map (HU), restoration (HU) and body mask, all ``(1, X, Y, Z)``."""
        inside = _np3(body).astype(bool)
        bins = self._bins(_np3(restoration)[inside])
        self.sums += np.bincount(bins, _np3(residual)[inside].astype(np.float64), minlength=self.sums.size)
        self.counts += np.bincount(bins, minlength=self.sums.size)
        self._expected = None

    def to_config(self) -> dict[str, Any]:
        """The fitted state (JSON-serialisable): bins, floor and the expected residual per bin."""
        return {"bin_hu": self.bin_hu, "hu_range": [self.low, self.high], "floor": self.floor,
                "expected": [float(v) for v in self.expected]}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TissueErrorNormaliser:
        out = cls(cfg["bin_hu"], tuple(cfg["hu_range"]), cfg["floor"])
        expected = np.asarray(cfg["expected"], dtype=np.float64)
        if expected.size != out.sums.size:
            raise InputError(f"tissue error normaliser: {expected.size} bins stored, {out.sums.size} expected")
        out._expected = expected
        return out

    @property
    def expected(self) -> np.ndarray:
        """Mean residual per bin (bins never seen take the overall mean)."""
        if self._expected is None:
            if self.counts.sum() == 0:
                raise InputError("tissue error normaliser: add() calibration scans first")
            overall = self.sums.sum() / self.counts.sum()
            self._expected = np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), overall)
        return self._expected

    def __call__(self, residual: torch.Tensor, restoration: torch.Tensor) -> torch.Tensor:
        """``residual / (expected[tissue] + floor)``, ``(1, X, Y, Z)`` float32 (zeros stay zeros)."""
        scale = self.expected[self._bins(_np3(restoration))] + self.floor
        return torch.from_numpy((_np3(residual) / scale).astype(np.float32))[None]


class TailCalibrator:
    """``-log10`` of the fraction of calibration body voxels whose map value is at least a voxel's value.

    The fitted state is a table of up to ``points`` (value, exceedance count) pairs, log-spaced in the
    count so the rare tail is kept at full resolution; it is exact when the calibration values are fewer
    than ``points``, and it is what ``to_config`` saves. Beyond the largest calibration value the score
    keeps rising along an exponential tail fitted to the largest values (their mean excess), so voxels
    rarer than anything seen are still ranked, not tied.

    Args:
        max_samples: calibration values kept (a random subsample beyond it, seeded).
        points: size of the table.
    """

    def __init__(self, max_samples: int = 1_000_000, seed: int = 0, points: int = 2048) -> None:
        self.max_samples, self.points, self.rng = int(max_samples), int(points), np.random.default_rng(seed)
        self.parts: list[np.ndarray] = []
        self._table: dict[str, Any] | None = None

    def add(self, anomaly_map: torch.Tensor | np.ndarray, body: torch.Tensor | np.ndarray | None = None) -> None:
        """Calibration values: a map's body voxels (``body=None``: ``anomaly_map`` is already the values)."""
        values = _np3(anomaly_map)[_np3(body).astype(bool)] if body is not None else np.ravel(anomaly_map)
        self.parts.append(values.astype(np.float32))
        self._table = None

    def _fit(self) -> dict[str, Any]:
        if not self.parts:
            raise InputError("tail calibrator: add() calibration maps first")
        values = np.concatenate(self.parts)
        if values.size > self.max_samples:
            values = self.rng.choice(values, self.max_samples, replace=False)
        ranked = np.sort(values).astype(np.float64)
        n = ranked.size
        counts = (np.arange(n, 0, -1) if n <= self.points  # values >= v; log-spaced: the tail in full
                  else np.unique(np.geomspace(n, 1, self.points).round().astype(np.int64)))
        table_values = np.unique(ranked[n - counts])
        above = n - np.searchsorted(ranked, table_values, side="left")
        k = max(1, min(50, n // 10))  # exponential tail: mean excess of the k largest over the next one
        start = ranked[n - k - 1] if n > k else ranked[0]
        return {"n": int(n), "values": table_values.tolist(), "above": above.tolist(),
                "tail_scale": float(max(ranked[n - k:].mean() - start, 1e-6))}

    def to_config(self) -> dict[str, Any]:
        """The fitted table (JSON-serialisable)."""
        if self._table is None:
            self._table = self._fit()
        return dict(self._table)

    @classmethod
    def from_config(cls, table: dict[str, Any]) -> TailCalibrator:
        out = cls()
        out._table = dict(table)
        return out

    def __call__(self, anomaly_map: torch.Tensor | np.ndarray,
                 body: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """``(1, X, Y, Z)`` float32 ``-log10((above + 1) / (n + 1))``, 0 outside ``body``."""
        table = self.to_config()
        n, values = table["n"], np.asarray(table["values"])
        log_above = np.log10(np.asarray(table["above"], dtype=np.float64) + 1.0)
        data = _np3(anomaly_map).astype(np.float64)
        out = np.log10(n + 1.0) - np.interp(data, values, log_above, left=np.log10(n + 1.0))
        beyond = data > values[-1]  # rarer than every calibration value: the fitted exponential tail
        out[beyond] = np.log10(n + 1.0) + (data[beyond] - values[-1]) / (table["tail_scale"] * np.log(10.0))
        if body is not None:
            out = np.where(_np3(body).astype(bool), out, 0.0)
        return torch.from_numpy(out.astype(np.float32))[None]


class LocalMedianRestoration:
    """A net-free restoration: each voxel's in-plane median over a disc of ``radius_mm``.

    A lesion smaller than about half the disc is replaced by the tissue around it, so ``|scan - median|``
    (smoothed by ``sigma_mm``, 0 outside the body) is a residual map like a net's; divided by
    :class:`TissueErrorNormaliser` it is a strong, training-free reference for learnt restorations.
    """

    def __init__(self, radius_mm: float = 12.0, sigma_mm: float = 1.0, polarity: str = "both") -> None:
        if not radius_mm > 0:
            raise InputError(f"radius_mm: got {radius_mm}; must be > 0")
        self.radius_mm, self.sigma_mm, self.polarity = float(radius_mm), float(sigma_mm), parse_polarity(polarity)

    def __call__(self, volume: torch.Tensor, body: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(residual, restoration)``, both ``(1, X, Y, Z)`` float32 HU."""
        from scipy.ndimage import median_filter

        affine = getattr(volume, "affine", torch.eye(4))
        hu = _np3(volume).astype(np.float32)
        restored = median_filter(hu, footprint=disc_footprint(self.radius_mm, voxel_spacing(affine)), mode="nearest")
        residual = smooth_mm(signed_residual(torch.from_numpy(hu - restored), self.polarity)[None], affine, self.sigma_mm)
        residual = residual * torch.from_numpy(_np3(body).astype(bool))[None]
        return residual, torch.from_numpy(restored)[None]
