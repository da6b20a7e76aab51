"""Canonical voxel order: every voxel keeps its world position, and storage order stops mattering."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medgan.data.orientation import reorient, reoriented_geometry
from medgan.data.volumes import VolumeStore


@pytest.mark.parametrize("seed", range(6))
def test_every_voxel_keeps_its_world_position(seed):
    rng = np.random.default_rng(seed)
    perm, flips = rng.permutation(3), rng.choice([-1.0, 1.0], 3)
    affine = np.eye(4)
    affine[:3, :3] = 0
    for i in range(3):
        affine[perm[i], i] = flips[i] * (0.5 + i)
    affine[:3, 3] = rng.normal(size=3) * 10
    shape = (5, 6, 7)
    image = torch.arange(float(np.prod(shape))).reshape(1, *shape)
    out, new_affine = reorient(image, affine)
    assert nib.aff2axcodes(new_affine.numpy()) == ("L", "P", "S")
    assert reoriented_geometry(shape, affine)[0] == tuple(out.shape[1:])
    for index in [(0, 0, 0), (4, 5, 6), (2, 3, 1)]:
        value = image[(0, *index)]
        new_index = np.argwhere(out[0].numpy() == value.item())[0]
        assert np.allclose(affine @ [*index, 1.0], new_affine.numpy() @ [*new_index, 1.0])


def test_storage_order_does_not_change_what_the_nets_see(tmp_path, chest_crop):
    # the same anatomy stored in the crop's own order and mirrored left-right (array and direction flipped)
    plain = tmp_path / "plain.nrrd"
    sitk.WriteImage(chest_crop, str(plain))
    flipped = sitk.Flip(chest_crop, [True, False, False])  # keeps world positions, reverses storage
    assert flipped.GetDirection()[0] == -chest_crop.GetDirection()[0]
    mirrored = tmp_path / "mirrored.nrrd"
    sitk.WriteImage(flipped, str(mirrored))
    store = VolumeStore([plain, mirrored])
    assert torch.equal(store[0]["image"], store[1]["image"])
    assert torch.allclose(store[0]["affine"], store[1]["affine"])
    assert store.shapes[0] == store.shapes[1]
