"""``prepare_sr`` with thick -> thin slices: the source averages contiguous slices, geometry exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from medgan.data.prepare import prepare_sr
from medgan.errors import ConfigError


def test_slice_scale_writes_thick_slices_with_exact_positions(tmp_path, chest_crop):
    scans = tmp_path / "scans"
    scans.mkdir()
    sitk.WriteImage(chest_crop, str(scans / "P1_a.nrrd"))  # 40 x 32 x 8
    out = prepare_sr(scans, tmp_path / "ds", 2, slice_scale=4, split=(1.0, 0.0, 0.0), progress=False)
    src = sitk.ReadImage(str(out / "train" / "source" / "P1_a.nrrd"))
    hr = sitk.GetArrayFromImage(chest_crop).astype(np.float64)  # (z, y, x)
    lr = sitk.GetArrayFromImage(src)
    assert src.GetSize() == (20, 16, 2)
    np.testing.assert_allclose(lr[1, 3, 5], hr[4:8, 6:8, 10:12].mean(), atol=0.51)  # int16 rounding
    # the first thick slice sits at the mean position of the four thin ones
    z0 = np.mean([chest_crop.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(4)])
    x0 = np.mean([chest_crop.TransformIndexToPhysicalPoint((i, 0, 0))[0] for i in range(2)])
    assert src.GetOrigin()[2] == pytest.approx(z0) and src.GetOrigin()[0] == pytest.approx(x0)
    assert json.loads((out / "dataset.json").read_text())["slice_scale"] == 4


def test_through_plane_only_and_refusals(tmp_path, chest_crop):
    scans = tmp_path / "scans"
    scans.mkdir()
    sitk.WriteImage(chest_crop, str(scans / "P1_a.nrrd"))
    out = prepare_sr(scans, tmp_path / "ds", 1, slice_scale=2, split=(1.0, 0.0, 0.0), progress=False)
    assert sitk.ReadImage(str(out / "train" / "source" / "P1_a.nrrd")).GetSize() == (40, 32, 4)
    with pytest.raises(ConfigError, match="--scale"):
        prepare_sr(scans, tmp_path / "ds2", 1, progress=False)
    with pytest.raises(ConfigError, match="--slice-scale"):
        prepare_sr(scans, tmp_path / "ds3", 2, slice_scale=0, progress=False)
