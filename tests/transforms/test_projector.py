import math

import numpy as np
import pytest
import torch
from skimage.transform import iradon, radon

from medgan.errors import ConfigError
from medgan.transforms.projector import ParallelBeamProjector, min_detector_bins
from tests.transforms.phantoms import water_cylinder


@pytest.mark.parametrize("views, stored", [(16, 5), (18, 9), (15, 15)])
def test_symmetric_storage_equals_the_full_operator(views, stored):
    img = torch.rand(2, 24, 24)
    small = ParallelBeamProjector(24, views, symmetric=True)
    full = ParallelBeamProjector(24, views, symmetric=False)
    assert small.stored_views == stored and full.stored_views == views
    if stored < views:
        assert small.nbytes < 1.2 * full.nbytes * stored / views
    sino = full.forward(img)
    assert torch.allclose(small.forward(img), sino, atol=1e-5)
    assert torch.allclose(small.fbp(sino), full.fbp(sino), atol=1e-5)


def test_views_are_where_the_geometry_says():
    # a single bright pixel right of the centre projects to t = +offset at 0 degrees, -offset at 180 - ...
    size, off = 33, 8
    img = torch.zeros(1, size, size)
    img[0, 16, 16 + off] = 1.0  # x = +8, y = 0
    proj = ParallelBeamProjector(size, 8)
    sino = proj.forward(img)[0]
    centre = (proj.detector_bins - 1) / 2
    peaks = sino.argmax(1).float() - centre
    theta = torch.arange(8) * torch.pi / 8
    assert torch.allclose(peaks, torch.round(off * torch.cos(theta)), atol=1.0)


def test_forward_projection_of_a_uniform_disk_is_its_chord_length():
    # a smooth (large) disk: chord = 2 sqrt(r^2 - t^2) away from the tangent rays, at every angle
    size, r = 64, 25.0
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size] - c
    disk = torch.from_numpy((xx**2 + yy**2 <= r**2).astype(np.float32))[None]
    proj = ParallelBeamProjector(size, 36)
    sino = proj.forward(disk)[0]
    t = torch.arange(proj.detector_bins) - (proj.detector_bins - 1) / 2
    central = t.abs() <= 15
    chord = 2 * torch.sqrt(r**2 - t[central] ** 2)
    assert torch.allclose(sino[:, central], chord.expand(36, -1).float(), rtol=0.03)
    # mass is conserved at every angle (to the interpolation aliasing): each view sums to the area
    assert torch.allclose(sino.sum(1), disk.sum().expand(36), rtol=1e-3)


def test_noise_free_reconstruction_is_no_worse_than_scikit_image():
    hu = water_cylinder(128, inserts=True)
    mu = np.clip(0.0192 * (1 + hu / 1000), 0, None).astype(np.float32)
    views = 360
    proj = ParallelBeamProjector(128, views)
    ours = proj.fbp(proj.forward(torch.from_numpy(mu)[None]))[0].numpy()
    theta = np.arange(views) * 180.0 / views
    ref = iradon(radon(mu, theta, circle=False), theta, output_size=128, circle=False)
    rmse_ours = np.sqrt(np.mean((ours - mu) ** 2))
    rmse_ref = np.sqrt(np.mean((ref - mu) ** 2))
    assert rmse_ours <= rmse_ref * 1.02, (rmse_ours, rmse_ref)
    # and the reconstruction is right in absolute terms: water within 1% of mu_water in the centre
    assert abs(ours[54:74, 54:74].mean() - 0.0192) < 0.0192 * 0.01


def test_bad_geometry_is_a_config_error_naming_the_parameter():
    with pytest.raises(ConfigError, match="detector_bins: got 10"):
        ParallelBeamProjector(32, 8, detector_bins=10)
    with pytest.raises(ConfigError, match="views"):
        ParallelBeamProjector(32, 1)
    assert min_detector_bins(512) >= math.ceil(512 * math.sqrt(2))
    with pytest.raises(ValueError, match=r"expected shape \(B, 32, 32\)"):
        ParallelBeamProjector(32, 8).forward(torch.zeros(1, 16, 16))
