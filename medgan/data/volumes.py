"""Whole volumes of one pile (source or target), read once and sliced in memory.

Why whole volumes: a 2D training sample is one slice, but every reader (DICOM, NIfTI, NRRD) decodes the
whole volume. Reading it once per sample would make I/O the bottleneck, so a :class:`VolumeStore` keeps
decoded volumes and the datasets cut slices and patches from them. Three ways to keep them:

* ``cache=False`` (default): read on demand, keep the ``max_in_memory`` most recently used volumes per
  process (each DataLoader worker holds its own). Memory stays bounded; random sampling over many cases
  re-reads volumes often.
* ``cache=True`` / ``"memory"``: MONAI ``CacheDataset``: every volume is read once at set-up (in threads)
  and held in RAM. Fastest; needs the whole pile in memory (a 600x512x512 scan is 300 MB as float32,
  150 MB as int16, see below). Forked workers share the pages copy-on-write.
* ``"disk"``: MONAI ``PersistentDataset``: the decoded tensors are saved under ``cache_dir`` on first use
  (loaded back with ``torch.load(weights_only=True)``), which beats decoding compressed DICOM again; the
  same LRU as ``False`` keeps the most recent ones in memory.

Without the memory cache, the training sampler keeps reads rare by drawing several samples per volume
(``samples_per_volume``, see :mod:`medgan.data.sampling`).

Volumes whose HU values are all integers in the int16 range (every scan written as CT by medgan, and
nearly every DICOM) are kept as int16, halving memory; samples are converted to float32 when cut.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.transforms import MapTransform

from medgan.data.orientation import reorient, reoriented_geometry
from medgan.errors import ConfigError

CACHE_MODES = (False, True, "memory", "disk")
_INT16 = torch.iinfo(torch.int16)


def _read(path: str) -> Any:
    """medgan's reader (engineer A's ``medgan.io.read_volume``): MetaTensor (1, X, Y, Z) HU, RAS affine."""
    from medgan.io import read_volume

    return read_volume(path)


def compact_hu(hu: torch.Tensor) -> torch.Tensor:
    """Keep integral HU as int16 (half the memory of float32); anything else stays float32."""
    hu = hu.detach().to(torch.float32)
    if hu.numel() and hu.min() >= _INT16.min and hu.max() <= _INT16.max and torch.equal(hu, hu.round()):
        return hu.to(torch.int16)
    return hu


class LoadVolumed(MapTransform):
    """Read ``d["path"]`` into ``d["image"]`` (plain tensor (1, X, Y, Z), HU, int16 or float32) and
    ``d["affine"]`` (float64 (4, 4), RAS, voxel index -> mm), with the voxel axes reoriented to
    :data:`medgan.data.orientation.CANONICAL` so every case shows the nets the same anatomy order.

    Plain tensors rather than a MetaTensor so that MONAI's ``PersistentDataset`` can reload them with
    ``weights_only=True`` and the cache does not carry DICOM headers.
    """

    def __init__(self) -> None:
        super().__init__(keys=["path"])

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        volume = _read(str(d["path"]))
        affine = getattr(volume, "affine", None)
        image = volume.as_tensor() if hasattr(volume, "as_tensor") else torch.as_tensor(volume)
        affine = torch.as_tensor(affine if affine is not None else torch.eye(4), dtype=torch.float64)
        image, affine = reorient(image, affine)
        d["image"] = compact_hu(image)
        d["affine"] = affine
        return d


def header_geometry(path: str | os.PathLike) -> tuple[tuple[int, int, int], torch.Tensor] | None:
    """Shape (X, Y, Z) and RAS affine of a NIfTI/NRRD/MHA file from its header alone (no voxels read),
    after the reorientation :class:`LoadVolumed` applies.

    ``None`` for DICOM (slice count and order need every header: the caller reads the series) and for
    files the full reader should judge (not scalar 2D/3D).
    """
    import SimpleITK as sitk

    from medgan.io.geometry import lps_to_ras, sitk_lps_affine
    from medgan.io.itk_io import itk_format_of

    if Path(path).is_dir() or itk_format_of(path) is None:
        return None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    dim = reader.GetDimension()
    if dim not in (2, 3) or reader.GetNumberOfComponents() != 1:
        return None
    # An empty image with the same grid lets medgan.io compute the affine exactly as read_volume does.
    grid = sitk.Image([1] * dim, sitk.sitkUInt8)
    grid.SetOrigin(reader.GetOrigin())
    grid.SetSpacing(reader.GetSpacing())
    grid.SetDirection(reader.GetDirection())
    size = (*reader.GetSize(), 1) if dim == 2 else tuple(reader.GetSize())
    affine = torch.as_tensor(lps_to_ras(sitk_lps_affine(grid)), dtype=torch.float64)
    return reoriented_geometry(tuple(int(n) for n in size), affine)


def _records(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    records = []
    for p in paths:
        p = Path(p)
        # size and mtime take part in PersistentDataset's hash, so a replaced file is not served stale.
        stat = p.stat()
        records.append({"path": str(p), "size": stat.st_size, "mtime": stat.st_mtime_ns})
    return records


def parse_cache(cache: Any, cache_dir: str | os.PathLike | None) -> str:
    """Normalise ``data.cache`` to ``"none" | "memory" | "disk"`` (errors name the key and the allowed set)."""
    if cache not in CACHE_MODES:
        raise ConfigError(f"data.cache: got {cache!r}, allowed: false, true, 'memory', 'disk'")
    mode = "none" if cache is False else "disk" if cache == "disk" else "memory"
    if mode == "disk" and cache_dir is None:
        raise ConfigError(
            "data.cache_dir: required when data.cache is 'disk' (a folder for the cached tensors)"
        )
    return mode


class VolumeStore:
    """The volumes of a list of files, by index: ``store[i] -> {"image": (1, X, Y, Z) HU, "affine": (4, 4)}``.

    Args:
        paths: one volume file or DICOM series folder per case.
        cache: ``False`` (read on demand, LRU), ``True``/``"memory"`` (MONAI ``CacheDataset``) or
            ``"disk"`` (MONAI ``PersistentDataset`` under ``cache_dir``).
        cache_dir: where ``"disk"`` keeps its tensors.
        max_in_memory: volumes kept per process when ``cache`` is ``False`` or ``"disk"``.
        num_workers: threads MONAI's ``CacheDataset`` uses to fill the cache.
        progress: show MONAI's progress bar while caching.

    The spatial shapes and affines of all volumes are known after construction: from the header alone for
    NIfTI/NRRD/MHA files, from a full read for DICOM series (of which the last ``max_in_memory`` stay).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        cache: bool | str = False,
        cache_dir: str | os.PathLike | None = None,
        max_in_memory: int = 4,
        num_workers: int = 0,
        progress: bool = False,
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.mode = parse_cache(cache, cache_dir)
        self.max_in_memory = max(1, int(max_in_memory))
        records = _records(self.paths)
        if self.mode == "memory":
            self._data: Dataset = CacheDataset(
                records,
                transform=LoadVolumed(),
                num_workers=max(1, num_workers),
                progress=progress,
                copy_cache=False,
            )
        elif self.mode == "disk":
            Path(cache_dir).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
            self._data = PersistentDataset(records, transform=LoadVolumed(), cache_dir=cache_dir)
        else:
            self._data = Dataset(records, transform=LoadVolumed())
        self._lru: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.shapes: list[tuple[int, ...]] = []
        self.affines: list[torch.Tensor] = []
        for i, path in enumerate(self.paths):
            # Files that are not cached anyway only need their header to be indexed.
            header = header_geometry(path) if self.mode != "memory" else None
            if header is None:
                item = self[i]
                header = (tuple(item["image"].shape[1:]), item["affine"])
            self.shapes.append(header[0])
            self.affines.append(header[1])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.mode == "memory":
            return self._data[index]
        # "none" and "disk" both load a whole volume per miss; the LRU makes repeated slices free.
        if index in self._lru:
            self._lru.move_to_end(index)
            return self._lru[index]
        item = self._data[index]
        self._lru[index] = item
        while len(self._lru) > self.max_in_memory:
            self._lru.popitem(last=False)
        return item

    def __getstate__(self) -> dict[str, Any]:
        # Workers start with an empty LRU rather than a pickled copy of the parent's volumes.
        state = dict(self.__dict__)
        state["_lru"] = OrderedDict()
        return state
