"""The anomaly map ``medgan-anomaly`` computes, chosen by ``MapConfig.method``, and what it learns from normal scans.

Methods (measured side by side on held-out real CT in ``docs/anomaly.md``):

- ``residual``: the net's ``|scan - restoration|`` in HU, the classic reconstruction error.
- ``tissue``: that residual divided by the residual the net makes on the same tissue of normal scans
  (:class:`~medgan.anomaly.intensity.TissueErrorNormaliser`): bone and air edges err more than muscle.
- ``median``: no net: the residual of an in-plane median over a ``median_mm`` disc (a lesion smaller than
  about half the disc is replaced by the tissue around it), normalised per tissue the same way.
- ``median_hu``: the same median residual in HU, not normalised: inside the soft-tissue search region
  (below) the tissue normaliser only added the noise of its per-bin means (measured in ``docs/anomaly.md``).
- ``combined``: ``tissue`` and ``median`` each turned into ``-log10`` of its exceedance rate among the normal
  body voxels (:class:`~medgan.anomaly.intensity.TailCalibrator`) and added (Fisher's way of adding
  p-values), so a voxel both restorations find rare scores highest.

With ``region="soft"`` the map outside the soft-tissue search region (:mod:`medgan.anomaly.regions`: not
gas or lung, not bone or its rim) is multiplied by ``outside_weight``: the false positives of the body-wide
map were gas pockets, lung vessels and rib edges. Then the map is made to prefer blobs over lines: a lesion is a compact blob, while most large residuals of
normal scans are thin (vessels, bone and lung edges, one or two voxels wide). A grey-level opening with an
in-plane square ``open_mm`` wide keeps a value only where the whole square around it is at least as high,
so structures narrower than the square vanish; the opened map plus ``voxel_weight`` times the unopened one
ranks blob evidence first and still orders the voxels the opening zeroed (``open_mm=0``: no opening).

Every method but ``residual`` is fitted on the normal calibration scans before the thresholds are set
(:func:`medgan.anomaly.calibrate` maps them twice); the fitted state is saved in the thresholds JSON, so
``detect`` maps exactly as calibration did.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from medgan.anomaly.intensity import LocalMedianRestoration, TailCalibrator, TissueErrorNormaliser
from medgan.anomaly.maps import AnomalyMapper, AnomalyResult, as_map, body_region, parse_polarity
from medgan.anomaly.regions import soft_tissue_region
from medgan.errors import ConfigError
from medgan.io.geometry import voxel_spacing

MAP_METHODS = ("residual", "tissue", "median", "median_hu", "combined")
#: methods that run the model package (``median`` and ``median_hu`` need none)
NET_METHODS = ("residual", "tissue", "combined")
#: methods whose map is in HU (the others are unitless)
HU_METHODS = ("residual", "median_hu")
#: where the map counts in full: ``body`` (every body voxel) or ``soft`` (:func:`soft_tissue_region`)
REGIONS = ("body", "soft")
#: body voxels per calibration scan kept to fit the exceedance tables of ``combined``
TAIL_SAMPLES_PER_SCAN = 200_000


@dataclass(frozen=True)
class MapConfig:
    """How a scan becomes an anomaly map.

    Args:
        method: one of :data:`MAP_METHODS`.
        sigma_mm: Gaussian smoothing of each residual, mm (0: none).
        body_hu: body/air threshold, HU (``None``: every voxel counts).
        median_mm: radius of the in-plane median disc of ``median`` and ``combined``, mm.
        polarity: ``both`` | ``bright`` | ``dark``: which deviations from the restoration count.
        open_mm: width of the in-plane square of the grey-level opening, mm (0: none).
        voxel_weight: weight of the unopened map added to the opened one.
        region: one of :data:`REGIONS`; outside_weight: factor of the map outside the ``soft`` region.
    """

    method: str = "median_hu"
    sigma_mm: float = 1.0
    body_hu: float | None = -500.0
    median_mm: float = 8.0
    polarity: str = "both"
    open_mm: float = 9.0
    voxel_weight: float = 0.1
    region: str = "soft"
    outside_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.method not in MAP_METHODS:
            raise ConfigError(f"map method: got '{self.method}', allowed: {', '.join(MAP_METHODS)}")
        if not self.sigma_mm >= 0:
            raise ConfigError(f"sigma_mm: got {self.sigma_mm}; must be >= 0")
        if not self.median_mm > 0:
            raise ConfigError(f"median_mm: got {self.median_mm}; must be > 0")
        parse_polarity(self.polarity)
        if not self.open_mm >= 0 or not self.voxel_weight >= 0:
            raise ConfigError(f"open_mm / voxel_weight: got {self.open_mm} / {self.voxel_weight}; must be >= 0")
        if self.region not in REGIONS:
            raise ConfigError(f"region: got '{self.region}', allowed: {', '.join(REGIONS)}")
        if not 0 <= self.outside_weight <= 1:
            raise ConfigError(f"outside_weight: got {self.outside_weight}; must be in [0, 1]")

    @property
    def needs_model(self) -> bool:
        return self.method in NET_METHODS

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MapConfig:
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"map: unknown key(s) {unknown}; allowed: {sorted(cls.__dataclass_fields__)}")
        return cls(**dict(cfg))


class CalibratedMapper:
    """Anomaly maps of one :class:`MapConfig`, fitted on normal scans (:meth:`fit`) or from a saved state.

    Args:
        model: the model package (folder, ``.ckpt`` or ``(manifest, state)``); ``None`` for ``median``.
        config: the map settings.
        state: a saved :meth:`state` (skips :meth:`fit`).
        progress: tqdm bars of the net's sliding windows.
        **predictor_kw: passed to :class:`medgan.inference.Predictor`.

    Raises:
        ConfigError: a net method without a model. ModelPackageError: see :class:`AnomalyMapper`.
    """

    def __init__(self, model: str | os.PathLike | tuple | None, config: MapConfig,
                 state: Mapping[str, Any] | None = None, **predictor_kw: Any) -> None:
        self.config = config
        if config.needs_model and model is None:
            raise ConfigError(f"map method '{config.method}' runs a model; pass --model (or use --map median)")
        self.net = None if model is None or not config.needs_model else AnomalyMapper(
            model, sigma_mm=config.sigma_mm, body_hu=config.body_hu, polarity=config.polarity, **predictor_kw)
        self.median = (LocalMedianRestoration(config.median_mm, config.sigma_mm, config.polarity)
                       if config.method in ("median", "median_hu", "combined") else None)
        self.normalisers: dict[str, TissueErrorNormaliser] = {}
        self.tails: dict[str, TailCalibrator] = {}
        if state:
            self.normalisers = {k: TissueErrorNormaliser.from_config(v) for k, v in state.get("tissue", {}).items()}
            self.tails = {k: TailCalibrator.from_config(v) for k, v in state.get("tail", {}).items()}

    @property
    def fingerprint(self) -> str:
        return self.net.fingerprint if self.net is not None else ""

    @property
    def description(self) -> str:
        base = self.net.description if self.net is not None else "medgan net-free median restoration"
        return f"{base} ({self.config.method} map)"

    @property
    def needs_fit(self) -> bool:
        return self.config.method not in HU_METHODS

    def _residuals(self, volume: torch.Tensor) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], torch.Tensor,
                                                        torch.Tensor | None]:
        """``({"net"|"median": (residual, restoration)}, body, net reconstruction)`` the method uses."""
        parts: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        reconstruction = None
        if self.net is not None:
            found = self.net(volume)
            parts["net"], reconstruction, body = (found.map.as_tensor(), found.reconstruction.as_tensor()), \
                found.reconstruction, found.body
        else:
            body = body_region(torch.as_tensor(volume), self.config.body_hu)
        if self.median is not None:
            parts["median"] = self.median(volume, body)
        return parts, body, reconstruction

    def fit(self, volumes: Iterable[torch.Tensor]) -> CalibratedMapper:
        """Learn the per-tissue residuals (and, for ``combined``, the exceedance tables) from normal scans."""
        if not self.needs_fit:
            return self
        rng = np.random.default_rng(0)
        self.normalisers = {}
        samples: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for volume in volumes:
            parts, body, _ = self._residuals(volume)
            inside = body.reshape(body.shape[-3:]).numpy()
            for name, (residual, restoration) in parts.items():
                self.normalisers.setdefault(name, TissueErrorNormaliser()).add(residual, restoration, body)
                res, rest = (t.reshape(t.shape[-3:]).numpy()[inside] for t in (residual, restoration))
                if res.size > TAIL_SAMPLES_PER_SCAN:
                    pick = rng.choice(res.size, TAIL_SAMPLES_PER_SCAN, replace=False)
                    res, rest = res[pick], rest[pick]
                samples.setdefault(name, []).append((res, rest))
        self.tails = {}
        if self.config.method == "combined":
            for name, pairs in samples.items():
                tail = TailCalibrator()
                for res, rest in pairs:
                    tail.add(self.normalisers[name](res[:, None, None], rest[:, None, None]).numpy())
                self.tails[name] = tail
        return self

    def state(self) -> dict[str, Any]:
        """What :meth:`fit` learnt, JSON-serialisable (saved in the thresholds file)."""
        return {"tissue": {k: v.to_config() for k, v in self.normalisers.items()},
                "tail": {k: v.to_config() for k, v in self.tails.items()}}

    def compute(self, volume: torch.Tensor) -> AnomalyResult:
        """Map one ``(1, X, Y, Z)`` HU scan: :class:`AnomalyResult` (``reconstruction`` is the net's, or the
        median restoration for ``median``); the map is 0 outside the body."""
        parts, body, reconstruction = self._residuals(volume)
        method = self.config.method
        if method in HU_METHODS:
            values = parts["net" if method == "residual" else "median"][0]
        else:
            if not self.normalisers:
                raise ConfigError(f"map method '{method}' is fitted on normal scans first (medgan-anomaly calibrate)")
            normalised = {name: self.normalisers[name](*parts[name]) for name in parts}
            if method == "combined":
                values = sum(self.tails[name](normalised[name], body) for name in ("net", "median"))
            else:
                values = normalised["net" if method == "tissue" else "median"]
        if reconstruction is None:
            reconstruction = as_map(parts["median"][1], volume, self.description)
        values = torch.where(body, torch.as_tensor(values).reshape(body.shape), torch.zeros(()))
        if self.config.region == "soft":
            values = torch.where(soft_tissue_region(volume), values, values * self.config.outside_weight)
        values = torch.where(body, prefer_blobs(values, volume, self.config), torch.zeros(()))
        return AnomalyResult(map=as_map(values, volume, self.description), reconstruction=reconstruction, body=body)

    __call__ = compute


def prefer_blobs(values: torch.Tensor, volume: torch.Tensor, config: MapConfig) -> torch.Tensor:
    """``opening(values) + voxel_weight * values``: the opening is a grey-level one with an in-plane square of
    ``open_mm`` (in voxels from the scan's spacing, at least 1); ``(1, X, Y, Z)`` float32."""
    if config.open_mm == 0:
        return values
    from scipy.ndimage import grey_opening

    width = [max(1, round(config.open_mm / s)) for s in voxel_spacing(getattr(volume, "affine", None))[:2]]
    data = values.reshape(values.shape[-3:]).numpy().astype(np.float32)
    opened = grey_opening(data, size=(width[0], width[1], 1), mode="nearest")
    return torch.from_numpy(opened + np.float32(config.voxel_weight) * data).reshape(values.shape)
