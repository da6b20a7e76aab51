"""Cache of built projectors: in memory (least recently used) and, optionally, on disk.

Building the operators for 512x512 slices and 720 views takes tens of seconds; loading them from a cache
file takes seconds. The disk cache is used only when asked for (``cache_dir`` or ``MEDGAN_CACHE_DIR``),
is written atomically and loaded with ``torch.load(weights_only=True)``; a damaged file is rebuilt.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from medgan.transforms.projector import ParallelBeamProjector, min_detector_bins

__all__ = ["CACHE_ENV", "clear_projector_cache", "get_projector"]

_CACHE: OrderedDict[tuple, ParallelBeamProjector] = OrderedDict()
_CACHE_SIZE = 2  # a 512x512, 720-view projector holds ~1.4 GB: keep few


CACHE_ENV = "MEDGAN_CACHE_DIR"
_DISK_FORMAT = 1  # bump when the operator construction changes


def _disk_path(cache_dir: Path, size: int, views: int, bins: int) -> Path:
    return cache_dir / "projectors" / f"parallel_n{size}_v{views}_d{bins}_f{_DISK_FORMAT}.pt"


def _load_or_build(size: int, views: int, bins: int, dev: torch.device, cache_dir: Path | None) -> ParallelBeamProjector:
    if cache_dir is None:
        return ParallelBeamProjector(size, views, bins, dev)
    path = _disk_path(cache_dir, size, views, bins)
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            return ParallelBeamProjector(size, views, bins, dev, _matrices=state)
        except Exception as err:  # noqa: BLE001 - a damaged cache file is rebuilt, never fatal
            warnings.warn(f"ignoring unreadable projector cache '{path}' ({err}); rebuilding it", stacklevel=3)
    projector = ParallelBeamProjector(size, views, bins, dev)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(projector.state_dict(), tmp)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old state or the whole new file
    return projector


def get_projector(
    size: int,
    views: int = 720,
    detector_bins: int | None = None,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
) -> ParallelBeamProjector:
    """A cached :class:`ParallelBeamProjector`: built once per geometry and device.

    Kept in memory (the two least recently used geometries) and, when ``cache_dir`` is given or the
    ``MEDGAN_CACHE_DIR`` environment variable is set, also on disk under ``<dir>/projectors/`` (about
    1.4 GB for 512x512 and 720 views; loading it takes seconds instead of a build of tens of seconds).
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    bins = detector_bins if detector_bins is not None else min_detector_bins(size)
    key = (int(size), int(views), int(bins), str(dev))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    if cache_dir is None and os.environ.get(CACHE_ENV):
        cache_dir = os.environ[CACHE_ENV]
    projector = _load_or_build(int(size), int(views), int(bins), dev, Path(cache_dir) if cache_dir else None)
    _CACHE[key] = projector
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return projector


def clear_projector_cache() -> None:
    """Free the cached operators (they can hold gigabytes at 512x512)."""
    _CACHE.clear()
