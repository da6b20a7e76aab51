"""Noise-free phantoms for the simulation tests, generated here (no files)."""

from __future__ import annotations

import numpy as np


def water_cylinder(size: int = 128, radius: float = 55.0, inserts: bool = False) -> np.ndarray:
    """``(size, size)`` HU slice: air (-1000) around a water (0 HU) disk centred on the array centre.

    With ``inserts``, a bone-like (+1000 HU) and a lung-like (-700 HU) disk are added off centre.
    """
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size] - c
    hu = np.full((size, size), -1000.0, np.float32)
    hu[xx**2 + yy**2 <= radius**2] = 0.0
    if inserts:
        hu[(xx - 0.5 * radius) ** 2 + yy**2 <= (0.15 * radius) ** 2] = 1000.0
        hu[(xx + 0.5 * radius) ** 2 + (yy - 0.2 * radius) ** 2 <= (0.2 * radius) ** 2] = -700.0
    return hu
