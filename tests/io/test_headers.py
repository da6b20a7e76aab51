"""DicomHeaders: shared (not copied) through MONAI's deep copies, picklable, batched as a list."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from pydicom.dataset import Dataset

from medgan.io import DicomHeaders


def _headers(n: int = 3) -> DicomHeaders:
    items = []
    for k in range(n):
        ds = Dataset()
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.InstanceNumber = "1.2.3", "1.2", k + 1
        items.append(ds)
    return DicomHeaders(items, frame_numbers=[3, 2, 1][:n])


def test_sequence_protocol_and_slicing():
    headers = _headers()
    assert len(headers) == 3 and headers.series_uid == "1.2.3" and headers.study_uid == "1.2"
    assert [int(h.InstanceNumber) for h in headers] == [1, 2, 3]
    part = headers[1:]
    assert isinstance(part, DicomHeaders) and len(part) == 2 and part.frame_numbers == (2, 1)
    assert headers[-1].InstanceNumber == 3
    assert "3 slices" in repr(headers)


def test_copies_return_the_same_object():
    headers = _headers()
    meta = {"dicom_headers": headers, "other": [1]}
    clone = copy.deepcopy(meta)
    assert clone["dicom_headers"] is headers and clone["other"] is not meta["other"]
    assert copy.copy(headers) is headers


def test_pickle_round_trip_for_dataloader_workers():
    back = pickle.loads(pickle.dumps(_headers()))
    assert [int(h.InstanceNumber) for h in back] == [1, 2, 3] and back.frame_numbers == (3, 2, 1)


def test_default_collate_gives_a_list():
    batch = [{"h": _headers(), "x": torch.zeros(1)}, {"h": _headers(2), "x": torch.ones(1)}]
    out = torch.utils.data.default_collate(batch)
    assert isinstance(out["h"], list) and [len(h) for h in out["h"]] == [3, 2]


def test_frame_numbers_must_match():
    with pytest.raises(ValueError, match="frame_numbers"):
        DicomHeaders([Dataset()], frame_numbers=[1, 2])
