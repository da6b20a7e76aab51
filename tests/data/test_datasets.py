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
    """Every k-th voxel in-plane (and kz-th slice): exact sub-sampling with the matching geometry."""
    return image[::k, ::k, ::kz]


def test_sr_pairs_are_aligned_in_plane_and_along_z(tmp_path, chest_crop):
    high = write_case(chest_crop, tmp_path / "hr.nrrd")
    low = write_case(_low_res(chest_crop, 2, 2), tmp_path / "lr.nrrd")
    ds = CTSampleDataset(_pile([low]), _pile([high]), paired=True, patch_size=(8, 8), scale=2)
    assert len(ds) == 4  # four low-res slices
    for seed in range(5):
        item = ds[(seed % 4, seed % 4, seed)]
        assert item["source"].shape == (1, 8, 8) and item["target"].shape == (1, 16, 16)
        # sub-sampling the target patch gives the source patch exactly: same place, same slice
        assert torch.equal(item["target"][:, ::2, ::2], item["source"])
    # 3D: z ratio from the shapes (8 slices vs 4)
    ds3 = CTSampleDataset(
        _pile([low]), _pile([high]), paired=True, input_mode="3d", patch_size=(8, 8, 2), scale=2
    )
    item = ds3[(0, 0, 7)]
    assert item["target"].shape == (1, 16, 16, 4)
    assert torch.equal(item["target"][:, ::2, ::2, ::2], item["source"])


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
