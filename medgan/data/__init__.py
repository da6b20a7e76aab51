"""Datasets and the Lightning DataModule over the medgan dataset layout (``docs/data_layout.md``).

Names are imported on first use so that ``medgan-prepare`` (which needs :mod:`medgan.data.prepare`, not
Lightning) starts quickly.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CTDataModule": "medgan.data.datamodule",
    "CTSampleDataset": "medgan.data.datasets",
    "Pile": "medgan.data.datasets",
    "PairSampler": "medgan.data.sampling",
    "patient_weights": "medgan.data.sampling",
    "VolumeStore": "medgan.data.volumes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'medgan.data' has no attribute '{name}'")
