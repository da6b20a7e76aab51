"""Cache of built projectors: in memory (least recently used) and on disk.

Two kinds: the simulator's :class:`FourierProjector` (512x512 slices, 720 views: built in a few seconds,
0.15 GB) and the sparse pixel-driven reference :class:`ParallelBeamProjector` (tens of seconds, 1.4 GB).
Loading either from a cache file takes a fraction of a second (memory-mapped, not copied). The disk cache is
on by default for slices of 256 pixels and more (smaller operators build in a moment) and lives in

- ``MEDGAN_CACHE_DIR`` when set (``off`` disables the disk cache; ``medgan-simulate --no-cache`` sets it),
- else the platform's user cache folder: ``$XDG_CACHE_HOME/medgan`` or ``~/.cache/medgan`` on Linux,
  ``~/Library/Caches/medgan`` on macOS, ``%LOCALAPPDATA%\\medgan\\Cache`` on Windows,

under ``projectors/``. Files are written atomically (:func:`medgan.io.atomic.staged_output`), loaded with
``torch.load(weights_only=True)``; a damaged file is rebuilt. The folder is kept under
``MEDGAN_CACHE_MAX_GB`` (default 8): the least recently used operators are deleted first.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from medgan.transforms.fourier_projector import FourierProjector
from medgan.transforms.projector import ParallelBeamProjector, min_detector_bins

__all__ = ["CACHE_ENV", "clear_projector_cache", "default_cache_dir", "get_fourier_projector", "get_projector"]

_CACHE: OrderedDict[tuple, ParallelBeamProjector | FourierProjector] = OrderedDict()
_CACHE_SIZE = 2  # a 512x512, 720-view projector holds ~1.4 GB: keep few


CACHE_ENV = "MEDGAN_CACHE_DIR"
CACHE_MAX_ENV = "MEDGAN_CACHE_MAX_GB"
DEFAULT_MAX_GB = 8.0
DISK_MIN_SIZE = 256  # smaller operators are rebuilt (a second or less) rather than stored
_DISK_FORMAT = 1  # bump when the operator construction changes


def default_cache_dir() -> Path | None:
    """Where operators are kept on disk: ``MEDGAN_CACHE_DIR``, else the user cache folder; ``None`` if off."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return None if env.strip().lower() in ("off", "0", "none", "false") else Path(env).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "medgan" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "medgan"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medgan"


def _disk_path(cache_dir: Path, size: int, views: int, bins: int, kind: str = "parallel") -> Path:
    return cache_dir / "projectors" / f"{kind}_n{size}_v{views}_d{bins}_f{_DISK_FORMAT}.pt"


def _max_bytes() -> float:
    try:
        return float(os.environ.get(CACHE_MAX_ENV, DEFAULT_MAX_GB)) * 1e9
    except ValueError:
        return DEFAULT_MAX_GB * 1e9


def _prune(folder: Path, keep: Path) -> None:
    """Delete the least recently used operator files until the folder fits the size cap."""
    files = sorted(folder.glob("*.pt"), key=lambda f: f.stat().st_mtime)
    total = sum(f.stat().st_size for f in files)
    for f in files:
        if total <= _max_bytes():
            break
        if f != keep:
            total -= f.stat().st_size
            f.unlink(missing_ok=True)


def _save(projector: ParallelBeamProjector | FourierProjector, path: Path) -> None:
    from medgan.io.atomic import staged_output

    try:
        with staged_output(path) as staged:
            torch.save(projector.state_dict(), staged)
        _prune(path.parent, path)
    except OSError as err:  # a full or read-only cache never stops a simulation
        warnings.warn(f"could not keep the projector in the cache '{path.parent}' ({err})", stacklevel=4)


_KINDS = {"parallel": (ParallelBeamProjector, "_matrices"), "fourier": (FourierProjector, "_state")}


def _load_or_build(
    size: int, views: int, bins: int, dev: torch.device, cache_dir: Path | None, kind: str = "parallel"
) -> ParallelBeamProjector | FourierProjector:
    cls, state_arg = _KINDS[kind]
    if cache_dir is None:
        return cls(size, views, bins, dev)
    path = _disk_path(cache_dir, size, views, bins, kind)
    if path.is_file():
        try:
            # memory-mapped: the pages are shared with the OS file cache instead of copied into the process
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            projector = cls(size, views, bins, dev, **{state_arg: state})
            os.utime(path)  # recently used: pruned last
            return projector
        except Exception as err:  # noqa: BLE001 - a damaged cache file is rebuilt, never fatal
            warnings.warn(f"ignoring unreadable projector cache '{path}' ({err}); rebuilding it", stacklevel=3)
    projector = cls(size, views, bins, dev)
    _save(projector, path)
    return projector


def get_projector(
    size: int,
    views: int = 720,
    detector_bins: int | None = None,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
    kind: str = "parallel",
) -> ParallelBeamProjector | FourierProjector:
    """A cached projector: built once per geometry and device.

    Kept in memory (the two most recently used geometries) and on disk (module docstring): in
    ``cache_dir`` when given (any size), else in :func:`default_cache_dir` for sizes of 256 and more.
    ``kind``: ``"parallel"`` (:class:`ParallelBeamProjector`, the sparse reference) or ``"fourier"``
    (:class:`FourierProjector`, what the simulator uses; :func:`get_fourier_projector`).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind: got {kind!r}, allowed: {', '.join(_KINDS)}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    bins = detector_bins if detector_bins is not None else min_detector_bins(size)
    key = (kind, int(size), int(views), int(bins), str(dev))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    if cache_dir is None and int(size) >= DISK_MIN_SIZE:
        cache_dir = default_cache_dir()
    projector = _load_or_build(int(size), int(views), int(bins), dev, Path(cache_dir) if cache_dir else None, kind)
    _CACHE[key] = projector
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return projector


def get_fourier_projector(
    size: int,
    views: int = 720,
    detector_bins: int | None = None,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
) -> FourierProjector:
    """The simulator's cached :class:`FourierProjector` (0.15 GB at 512x512, 720 views; built in seconds)."""
    return get_projector(size, views, detector_bins, device, cache_dir, kind="fourier")


def clear_projector_cache() -> None:
    """Free the cached operators (they can hold gigabytes at 512x512)."""
    _CACHE.clear()
