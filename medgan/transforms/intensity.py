"""HU normalisation with an exact inverse.

Everything that crosses medgan's boundary is in HU; the nets see normalised values. A normaliser is a
small frozen object that is saved into every model package (``medgan.yaml`` -> ``normalization``), so the
inverse used at inference is provably the one used in training. The ldct-benchmark's de-normalisation
added the standard deviation instead of the mean; the tests here check ``inverse(forward(x)) == x``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from medgan.errors import ConfigError

ArrayLike = torch.Tensor | np.ndarray


@dataclass(frozen=True)
class HUNormalizer:
    """Maps HU to the nets' range and back.

    Args:
        type: ``"window"`` clips to ``[hu_min, hu_max]`` and scales linearly to ``[out_min, out_max]``;
            ``"zscore"`` computes ``(hu - mean) / std`` with stored statistics (no clipping).
        hu_min, hu_max: the kept HU range of ``"window"``.
        out_min, out_max: the normalised range of ``"window"`` (default [-1, 1], matching tanh outputs).
        mean, std: the statistics of ``"zscore"`` in HU.

    ``inverse(forward(x)) == x`` (to float rounding) for every ``x`` in the kept range.
    """

    type: Literal["window", "zscore"] = "window"
    hu_min: float = -1024.0
    hu_max: float = 3071.0
    out_min: float = -1.0
    out_max: float = 1.0
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if self.type not in ("window", "zscore"):
            raise ConfigError(f"normalization.type: got '{self.type}', allowed: 'window', 'zscore'")
        if self.type == "window" and not self.hu_max > self.hu_min:
            raise ConfigError(
                f"normalization.hu_max must be > hu_min, got hu_min={self.hu_min}, hu_max={self.hu_max}"
            )
        if self.type == "window" and not self.out_max > self.out_min:
            raise ConfigError(
                f"normalization.out_max must be > out_min, got out_min={self.out_min}, out_max={self.out_max}"
            )
        if self.type == "zscore" and not self.std > 0:
            raise ConfigError(f"normalization.std must be > 0, got {self.std}")

    @property
    def scale(self) -> float:
        """Normalised units per HU."""
        if self.type == "window":
            return (self.out_max - self.out_min) / (self.hu_max - self.hu_min)
        return 1.0 / self.std

    @property
    def offset_hu(self) -> float:
        """The HU value that maps to the normalised origin of the linear map."""
        return self.hu_min if self.type == "window" else self.mean

    @property
    def out_offset(self) -> float:
        return self.out_min if self.type == "window" else 0.0

    def forward(self, hu: ArrayLike) -> ArrayLike:
        """HU -> normalised (clipped to the window for ``"window"``). Same type and shape as the input."""
        if self.type == "window":
            hu = hu.clip(self.hu_min, self.hu_max)
        return (hu - self.offset_hu) * self.scale + self.out_offset

    def inverse(self, x: ArrayLike) -> ArrayLike:
        """Normalised -> HU; exact inverse of :meth:`forward` on the kept range."""
        return (x - self.out_offset) / self.scale + self.offset_hu

    __call__ = forward

    def to_config(self) -> dict[str, Any]:
        """Plain dict for YAML (``medgan.yaml``); :func:`build_normalizer` reads it back."""
        d = asdict(self)
        keep = ("type", "hu_min", "hu_max", "out_min", "out_max") if self.type == "window" else ("type", "mean", "std")
        return {k: d[k] for k in keep}


def build_normalizer(cfg: Mapping[str, Any] | HUNormalizer | None) -> HUNormalizer:
    """Build a :class:`HUNormalizer` from a config mapping (never mutates it); ``None`` gives the default."""
    if cfg is None:
        return HUNormalizer()
    if isinstance(cfg, HUNormalizer):
        return cfg
    allowed = set(HUNormalizer.__dataclass_fields__)
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ConfigError(f"normalization: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    kwargs = {k: (v if k == "type" else float(v)) for k, v in dict(cfg).items()}
    return HUNormalizer(**kwargs)


def fit_zscore(
    volumes: ArrayLike | Iterable[ArrayLike], clip: tuple[float, float] | None = (-1024.0, 3071.0)
) -> HUNormalizer:
    """A ``"zscore"`` normaliser whose mean and std are those of the given HU data.

    Statistics are accumulated in float64 over one array or an iterable of arrays (e.g. the training
    volumes, one at a time), so the whole data set never has to be in memory.

    Args:
        volumes: HU values of any shape, or an iterable of them.
        clip: values are clipped to this range first (so padding at -3024 HU does not dominate); ``None``
            uses them as they are.

    Raises:
        ConfigError: no values, or a constant input (std 0).
    """
    arrays = [volumes] if isinstance(volumes, (torch.Tensor, np.ndarray)) else volumes
    count, total, total_sq = 0, 0.0, 0.0
    for arr in arrays:
        values = np.asarray(arr.detach().cpu() if isinstance(arr, torch.Tensor) else arr, dtype=np.float64)
        if clip is not None:
            values = values.clip(*clip)
        count += values.size
        total += float(values.sum())
        total_sq += float(np.square(values).sum())
    if count == 0:
        raise ConfigError("normalization: fit_zscore got no values")
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean**2, 0.0)))
    if not std > 0:
        raise ConfigError(f"normalization: fit_zscore got constant data (all {mean:g} HU); std would be 0")
    return HUNormalizer(type="zscore", mean=mean, std=std)


class NormalizeHUd(MapTransform):
    """Dictionary transform: HU -> normalised for ``keys`` (and back with :meth:`inverse`)."""

    def __init__(
        self,
        keys: KeysCollection,
        normalizer: Mapping[str, Any] | HUNormalizer | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalizer = build_normalizer(normalizer)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer.forward(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer.inverse(d[key])
        return d
