import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.errors import ConfigError
from medgan.transforms.degrade import DegradeForSRd, degrade_for_sr, simulate_slice_thickness, slice_profile


def _volume(shape=(1, 10, 12, 5), spacing=(0.7, 0.8, 2.0)):
    # an oblique affine, so a wrong origin/axis update cannot pass by accident
    rot = torch.tensor(
        [[0.0, -1.0, 0.0], [np.cos(0.3), 0.0, -np.sin(0.3)], [np.sin(0.3), 0.0, np.cos(0.3)]], dtype=torch.float64
    )
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, :3] = rot * torch.tensor(spacing, dtype=torch.float64)
    affine[:3, 3] = torch.tensor([-50.0, 20.0, 100.0])
    data = torch.randn(shape) * 300
    return MetaTensor(data, affine=affine, meta={"source_format": "nifti"})


def _world(affine, ijk):
    affine = torch.as_tensor(affine, dtype=torch.float64)
    return affine[:3, :3] @ torch.as_tensor(ijk, dtype=torch.float64) + affine[:3, 3]


@pytest.mark.parametrize("scale", [2, 3])
def test_in_plane_block_mean_with_exact_geometry(scale):
    hr = _volume()
    lr = degrade_for_sr(hr, scale)
    nx, ny = 10 // scale, 12 // scale
    assert lr.shape == (1, nx, ny, 5) and lr.dtype == torch.float32
    # every LR voxel is the mean of its HR block, and sits at the mean world position of that block
    for i, j, k in [(0, 0, 0), (nx - 1, ny - 1, 4), (1, 2, 3)]:
        block = hr[0, scale * i : scale * i + scale, scale * j : scale * j + scale, k]
        assert torch.isclose(lr[0, i, j, k], block.mean(), atol=1e-3)
        centres = [_world(hr.affine, (scale * i + a, scale * j + b, k)) for a in range(scale) for b in range(scale)]
        assert torch.allclose(_world(lr.affine, (i, j, k)), torch.stack(centres).mean(0), atol=1e-6)
    assert lr.meta["sr_scale"] == scale and lr.meta["source_format"] == "nifti"
    assert "sr_scale" not in hr.meta  # the input is not modified


def test_slice_thickness_keeps_constants_and_linear_ramps_and_slice_count():
    assert torch.allclose(slice_profile(1.0), torch.tensor([1.0], dtype=torch.float64))
    assert torch.allclose(slice_profile(2.0), torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64))
    assert torch.allclose(slice_profile(3.0), torch.full((3,), 1 / 3, dtype=torch.float64))
    z = torch.arange(9.0)
    ramp = z.expand(1, 2, 2, 9).clone()
    out = simulate_slice_thickness(ramp, thickness_mm=5.0, spacing_z_mm=1.25)  # 4 slices thick
    assert out.shape == ramp.shape
    assert torch.allclose(out[..., 2:-2], ramp[..., 2:-2], atol=1e-5)  # symmetric profile keeps a linear ramp
    spike = torch.zeros(1, 1, 1, 9)
    spike[..., 4] = 1.0
    blurred = simulate_slice_thickness(spike, 5.0, 1.25)[0, 0, 0]
    assert torch.isclose(blurred.sum(), torch.tensor(1.0)) and blurred[4] == 0.25  # 4-slice-wide profile


def test_thickness_then_scale_in_one_call_and_noise_is_seeded():
    hr = _volume()
    lr = degrade_for_sr(hr, 2, slice_thickness_mm=6.0, noise_std_hu=10.0, seed=1)
    assert lr.shape == (1, 5, 6, 5) and lr.meta["slice_thickness_mm"] == 6.0
    again = degrade_for_sr(hr, 2, slice_thickness_mm=6.0, noise_std_hu=10.0, seed=1)
    clean = degrade_for_sr(hr, 2, slice_thickness_mm=6.0)
    assert torch.equal(lr, again)
    assert 8.0 < (lr - clean).std().item() < 12.0
    assert torch.allclose(torch.as_tensor(lr.affine), torch.as_tensor(clean.affine))


def test_dictionary_transform_writes_the_output_key():
    hr = _volume()
    d = DegradeForSRd("target", scale=2, output_key="source")({"target": hr})
    assert d["target"] is hr and d["source"].shape == (1, 5, 6, 5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale": 0}, "scale: got 0"),
        ({"scale": 2.5}, "scale: got 2.5"),
        ({"scale": 20}, r"scale: got 20 for an in-plane size \(10, 12\)"),
        ({"scale": 2, "slice_thickness_mm": -1.0}, "slice_thickness_mm: got -1.0"),
        ({"scale": 2, "noise_std_hu": -3}, "noise_std_hu: got -3"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        degrade_for_sr(_volume(), **kwargs)


@pytest.mark.parametrize(("scale", "slice_scale"), [(1, 4), (2, 2)])
def test_through_plane_block_mean_with_exact_geometry(scale, slice_scale):
    hr = _volume(shape=(1, 8, 6, 9), spacing=(0.7, 0.8, 1.25))  # 9 slices: the last one is dropped for t=4/2
    lr = degrade_for_sr(hr, scale, slice_scale=slice_scale)
    nz = 9 // slice_scale
    assert lr.shape == (1, 8 // scale, 6 // scale, nz) and lr.meta["sr_slice_scale"] == slice_scale
    for i, j, k in [(0, 0, 0), (8 // scale - 1, 6 // scale - 1, nz - 1), (1, 2, 1)]:
        block = hr[0, scale * i:scale * (i + 1), scale * j:scale * (j + 1), slice_scale * k:slice_scale * (k + 1)]
        assert torch.isclose(lr[0, i, j, k], block.mean(), atol=1e-3)
        centres = [_world(hr.affine, (scale * i + a, scale * j + b, slice_scale * k + c))
                   for a in range(scale) for b in range(scale) for c in range(slice_scale)]
        assert torch.allclose(_world(lr.affine, (i, j, k)), torch.stack(centres).mean(0), atol=1e-6)


def test_through_plane_needs_a_volume_with_enough_slices():
    with pytest.raises(ConfigError, match="slice_scale"):
        degrade_for_sr(_volume(shape=(1, 8, 6)), 2, slice_scale=2)
    with pytest.raises(ConfigError, match="slice_scale"):
        degrade_for_sr(_volume(shape=(1, 8, 6, 3)), 1, slice_scale=4)
