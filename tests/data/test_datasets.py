"""CTSampleDataset: super-resolution alignment, padding of small images, 3D ratios, slice positions."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medgan.data.datasets import CTSampleDataset, Pile
from medgan.data.volumes import VolumeStore
from medgan.errors import InputError
from medgan.io.layout import CaseInfo
from tests.data.builders import write_case


def _pile(paths, names=None):
    names = names or [f"c{i}" for i in range(len(paths))]
    return Pile(VolumeStore(paths), [CaseInfo(name=n, patient=n, label=i) for i, n in enumerate(names)])


def _low_res(image: sitk.Image, k: int, kz: int = 1) -> sitk.Image:
    """Mean of k x k (x kz) blocks, on the grid whose voxels are those blocks (centre of the first block
    as origin): the area-averaging model of ``medgan.transforms.degrade``. Unlike picking every k-th voxel,
    this alignment survives the flips of the canonical reorientation."""
    arr = sitk.GetArrayFromImage(image).astype(np.float32)  # (z, y, x)
    z, y, x = (n // f for n, f in zip(arr.shape, (kz, k, k)))
    low = arr[: z * kz, : y * k, : x * k].reshape(z, kz, y, k, x, k).mean(axis=(1, 3, 5))
    out = sitk.GetImageFromArray(low)
    sx, sy, sz = image.GetSpacing()
    out.SetSpacing((sx * k, sy * k, sz * kz))
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformContinuousIndexToPhysicalPoint(((k - 1) / 2, (k - 1) / 2, (kz - 1) / 2)))
    return out


def test_sr_pairs_are_aligned_in_plane_and_along_z(tmp_path, chest_crop):
    high = write_case(chest_crop, tmp_path / "hr.nrrd")
    low = write_case(_low_res(chest_crop, 2), tmp_path / "lr.nrrd")
    ds = CTSampleDataset(_pile([low]), _pile([high]), paired=True, patch_size=(8, 8), scale=2)
    assert len(ds) == 8  # in-plane SR: one low-res slice per high-res slice
    for seed in range(5):
        item = ds[(seed % 8, seed % 8, seed)]
        assert item["source"].shape == (1, 8, 8) and item["target"].shape == (1, 16, 16)
        # averaging the target patch in 2x2 blocks gives the source patch: same place, same slice
        pooled = torch.nn.functional.avg_pool2d(item["target"], 2)
        assert torch.allclose(pooled, item["source"], atol=1e-5)
    # 3D: z ratio from the shapes (8 slices vs 4)
    low = write_case(_low_res(chest_crop, 2, 2), tmp_path / "lr3.nrrd")
    ds3 = CTSampleDataset(
        _pile([low]), _pile([high]), paired=True, input_mode="3d", patch_size=(8, 8, 2), scale=2
    )
    item = ds3[(0, 0, 7)]
    assert item["target"].shape == (1, 16, 16, 4)
    pooled = torch.nn.functional.avg_pool3d(item["target"][None], 2)[0]
    assert torch.allclose(pooled, item["source"], atol=1e-5)


def test_wrong_scale_is_reported_with_the_case(tmp_path, chest_crop):
    high = write_case(chest_crop, tmp_path / "hr.nrrd")
    low = write_case(_low_res(chest_crop, 2), tmp_path / "lr.nrrd")
    with pytest.raises(InputError, match="case 'c0'.*data.scale=3"):
        CTSampleDataset(_pile([low]), _pile([high]), paired=True, patch_size=(8, 8), scale=3)
    odd = write_case(chest_crop[:, :, :3], tmp_path / "odd.nrrd")
    with pytest.raises(InputError, match="not a whole multiple"):
        CTSampleDataset(
            _pile([odd]), _pile([high]), paired=True, input_mode="3d", patch_size=(8, 8, 2), scale=1
        )


def test_images_smaller_than_the_patch_are_padded_with_air(tmp_path, chest_crop):
    small = write_case(chest_crop[:10, :12, :], tmp_path / "s.nrrd")
    pile = _pile([small])
    ds = CTSampleDataset(pile, pile, paired=True, patch_size=(16, 16))
    item = ds[(0, 0, 1)]
    assert item["source"].shape == (1, 16, 16)
    assert (item["source"][:, 10:, :] == -1).all() and (
        item["source"][:, :, 12:] == -1
    ).all()  # -1024 HU -> -1
    assert (item["source"][:, :10, :12] > -1).any()


def test_whole_slices_eval_order_and_positions(tmp_path, chest_crop):
    a = write_case(chest_crop, tmp_path / "a.nrrd")
    b = write_case(chest_crop[:, :, :5], tmp_path / "b.nrrd")
    pile = _pile([a, b], ["a", "b"])
    ds = CTSampleDataset(pile, pile, paired=True, patch_size=None, max_slices=3)
    assert len(ds) == 6
    items = [ds[i] for i in range(len(ds))]
    assert [it["case"] for it in items] == ["a"] * 3 + ["b"] * 3
    assert np.allclose([float(it["slice_frac"]) for it in items], [0, 4 / 7, 1, 0, 0.5, 1])
    assert [int(it["label"]) for it in items] == [0] * 3 + [1] * 3
    assert items[0]["source"].shape == (1, 40, 32)


def test_unpaired_draws_target_from_its_own_pile(tmp_path, chest_crop):
    a = write_case(chest_crop, tmp_path / "a.nrrd")
    b = write_case(chest_crop * 0 + 100, tmp_path / "b.nrrd")  # a flat 100 HU target pile
    ds = CTSampleDataset(_pile([a], ["a"]), _pile([b], ["b"]), paired=False, patch_size=(8, 8))
    item = ds[(3, 5, 11)]
    assert item["case"] == "a"
    expected = ds.normalizer.forward(torch.tensor(100.0))
    assert torch.allclose(item["target"], expected.expand(1, 8, 8))
    assert item["source"].std() > 0
