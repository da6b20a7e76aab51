"""``DicomHeaders``: the per-slice source headers a DICOM volume carries in its metadata.

MONAI deep-copies ``MetaTensor.meta`` on nearly every transform; copying hundreds of pydicom datasets each
time would dominate a pipeline, and the headers describe the *source* (they are never edited), so the
container returns itself from ``copy``/``deepcopy``. It is also registered with PyTorch's default collate
so a DataLoader batch holds a plain list of them instead of failing on an unknown type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from pydicom.dataset import Dataset


class DicomHeaders:
    """Read-only sequence of pydicom Datasets (without PixelData), one per slice in the volume's z order.

    Args:
        datasets: one header per slice, z order (slice ``k`` of the volume ↔ ``datasets[k]``).
        frame_numbers: when any slice comes from a multi-frame object, the 1-based frame number of each
            slice in its source instance (``None`` entries for single-frame sources); ``None`` for a plain
            single-frame series.
    """

    __slots__ = ("_datasets", "_frames")

    def __init__(self, datasets: Sequence[Dataset], frame_numbers: Sequence[int | None] | None = None) -> None:
        self._datasets = tuple(datasets)
        if frame_numbers is not None and len(frame_numbers) != len(self._datasets):
            raise ValueError(
                f"frame_numbers has {len(frame_numbers)} entries for {len(self._datasets)} datasets"
            )
        self._frames = None if frame_numbers is None else tuple(None if f is None else int(f) for f in frame_numbers)

    def __len__(self) -> int:
        return len(self._datasets)

    @overload
    def __getitem__(self, index: int) -> Dataset: ...

    @overload
    def __getitem__(self, index: slice) -> DicomHeaders: ...

    def __getitem__(self, index: int | slice) -> Dataset | DicomHeaders:
        if isinstance(index, slice):
            frames = None if self._frames is None else self._frames[index]
            return DicomHeaders(self._datasets[index], frames)
        return self._datasets[index]

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self._datasets)

    def __copy__(self) -> DicomHeaders:
        return self

    def __deepcopy__(self, memo: dict) -> DicomHeaders:
        return self

    def __repr__(self) -> str:
        uid = self.series_uid if self._datasets else "-"
        return f"DicomHeaders({len(self)} slices, series {uid})"

    @property
    def frame_numbers(self) -> tuple[int | None, ...] | None:
        """1-based source frame numbers (multi-frame sources) or ``None``."""
        return self._frames

    @property
    def series_uid(self) -> str:
        """SeriesInstanceUID of the source series."""
        return str(self._datasets[0].SeriesInstanceUID)

    @property
    def study_uid(self) -> str:
        """StudyInstanceUID of the source study."""
        return str(self._datasets[0].StudyInstanceUID)


def _collate_headers(batch: Sequence[DicomHeaders], *, collate_fn_map: dict | None = None) -> list[DicomHeaders]:
    return list(batch)


def _register_collate() -> None:
    # PyTorch's default_collate (used by MONAI's list_data_collate for metadata) dispatches on this map.
    try:
        from torch.utils.data._utils.collate import default_collate_fn_map
    except ImportError:  # pragma: no cover - older torch without the map
        return
    default_collate_fn_map.setdefault(DicomHeaders, _collate_headers)


_register_collate()
