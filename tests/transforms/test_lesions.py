"""Synthetic lesions: size in mm, contrast in HU, seeded, with their ground-truth mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.errors import ConfigError, InputError
from medgan.transforms.lesions import Lesion, RandSyntheticLesions, RandSyntheticLesionsd, SyntheticLesions


def _volume(shape=(40, 40, 20), spacing=(0.5, 0.5, 2.0), hu=40.0) -> MetaTensor:
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    return MetaTensor(torch.full((1, *shape), hu), affine=affine, meta={"filename_or_obj": "x.nii.gz"})


def test_ellipsoid_has_its_size_in_mm_and_its_contrast_in_hu():
    volume = _volume()
    lesion = Lesion(centre=(20.0, 20.0, 10.0), radii_mm=(5.0, 3.0, 6.0), contrast_hu=300.0)
    out, mask = SyntheticLesions([lesion], edge_mm=0.0)(volume)
    m = mask[0].numpy()
    xs, ys, zs = np.nonzero(m)
    # extent along each axis = 2 * radius / spacing + 1 voxel: 21 (x), 13 (y), 7 (z)
    assert (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1, zs.max() - zs.min() + 1) == (21, 13, 7)
    # ellipsoid volume 4/3 pi abc within 5% (voxelisation)
    assert m.sum() * 0.5 * 0.5 * 2.0 == pytest.approx(4 / 3 * np.pi * 5 * 3 * 6, rel=0.05)
    assert torch.all(out[0][mask[0]] == 340.0) and torch.all(out[0][~mask[0]] == 40.0)
    assert torch.all(volume == 40.0)  # input untouched
    assert isinstance(mask, MetaTensor) and torch.equal(mask.affine, volume.affine)
    assert torch.equal(out.affine, volume.affine) and out.meta["filename_or_obj"] == "x.nii.gz"


def test_soft_edge_ramps_the_contrast_and_the_mask_is_the_half_level():
    volume = _volume(spacing=(1.0, 1.0, 1.0))
    lesion = Lesion((20.0, 20.0, 10.0), (6.0, 6.0, 6.0), -200.0)
    out, mask = SyntheticLesions([lesion], edge_mm=2.0)(volume)
    profile = out[0, 20:, 20, 10].numpy()  # from the centre outwards along x
    assert profile[0] == pytest.approx(-160.0) and profile[-1] == pytest.approx(40.0)
    assert np.all(np.diff(profile) >= 0)  # monotone ramp back to the background
    assert 40.0 > profile[6] > -160.0  # on the surface: part of the contrast
    assert mask[0, 26, 20, 10] and not mask[0, 27, 20, 10]


def test_random_lesions_are_reproducible_inside_the_region_and_the_volume():
    volume = _volume()
    region = np.zeros((40, 40, 20), bool)
    region[10:30, 15:25, 5:15] = True
    first = RandSyntheticLesions(count=5, radius_mm=(1.0, 2.0), contrast_hu=(100.0, 200.0), seed=3)
    second = RandSyntheticLesions(count=5, radius_mm=(1.0, 2.0), contrast_hu=(100.0, 200.0), seed=3)
    out1, mask1 = first(volume, region)
    out2, mask2 = second(volume, region)
    assert torch.equal(out1, out2) and torch.equal(mask1, mask2)
    assert len(first.last_lesions) == 5
    for lesion in first.last_lesions:
        assert region[tuple(int(c) for c in lesion.centre)]
        assert all(1.0 <= r <= 2.0 for r in lesion.radii_mm) and 100.0 <= lesion.contrast_hu <= 200.0
    other, _ = RandSyntheticLesions(count=5, radius_mm=(1.0, 2.0), contrast_hu=(100.0, 200.0), seed=4)(volume, region)
    assert not torch.equal(other, out1)


def test_default_region_is_tissue_above_min_hu():
    volume = _volume(hu=-1000.0)
    volume[0, 15:25, 15:25, 5:15] = 30.0
    sampler = RandSyntheticLesions(count=8, radius_mm=1.0, seed=0)
    sampler(volume)
    for lesion in sampler.last_lesions:
        assert float(volume[0][tuple(int(c) for c in lesion.centre)]) == 30.0


def test_dictionary_version_puts_the_same_lesions_into_every_key():
    data = {"source": _volume(hu=10.0), "target": _volume(hu=40.0)}
    out = RandSyntheticLesionsd(keys=("source", "target"), count=2, radius_mm=2.0, contrast_hu=500.0, seed=1)(data)
    mask = out["lesion_mask"][0]
    assert mask.any()
    assert torch.all(out["source"][0][mask] - 10.0 == out["target"][0][mask] - 40.0)
    assert len(out["lesion_mask_lesions"]) == 2


@pytest.mark.parametrize("kwargs, match", [({"count": 0}, "count"), ({"radius_mm": (5.0, 2.0)}, "radius_mm"),
                                           ({"radius_mm": -1.0}, "radius_mm"), ({"contrast_hu": "bright"}, "contrast_hu")])
def test_bad_parameters_name_themselves(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RandSyntheticLesions(**kwargs)


def test_empty_region_and_bad_shapes_are_input_errors():
    with pytest.raises(InputError, match="no voxel"):
        RandSyntheticLesions(seed=0)(_volume(hu=-1000.0))
    with pytest.raises(InputError, match=r"\(1, X, Y, Z\)"):
        SyntheticLesions([])(torch.zeros(4, 4, 4))
