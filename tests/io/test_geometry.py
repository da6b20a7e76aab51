"""Affine helpers: LPS/RAS, ITK grids and DICOM plane attributes are exact inverses of each other."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from medgan.io.geometry import (
    affine_from_grid,
    dicom_plane_affine,
    dicom_plane_attributes,
    grid_from_affine,
    lps_to_ras,
    ras_to_lps,
    set_sitk_geometry,
    sitk_lps_affine,
    slice_normal,
    voxel_spacing,
    zyx_to_xyz,
)


def _rotation(a: float, b: float, c: float) -> np.ndarray:
    image = sitk.Euler3DTransform()
    image.SetRotation(a, b, c)
    return np.asarray(image.GetMatrix()).reshape(3, 3)


angles = st.floats(-3.1, 3.1)
spacings = st.floats(0.1, 10.0)
coords = st.floats(-500, 500)


@settings(max_examples=40, deadline=None)
@given(angles, angles, angles, spacings, spacings, spacings, coords, coords, coords)
def test_grid_affine_round_trip_and_matches_simpleitk(a, b, c, sx, sy, sz, ox, oy, oz):
    direction = _rotation(a, b, c)
    affine = affine_from_grid((ox, oy, oz), (sx, sy, sz), direction)
    origin, spacing, back = grid_from_affine(affine)
    np.testing.assert_allclose(spacing, (sx, sy, sz), rtol=1e-12)
    np.testing.assert_allclose(back, direction, atol=1e-12)
    image = set_sitk_geometry(sitk.Image(4, 5, 6, sitk.sitkInt16), affine)
    np.testing.assert_allclose(sitk_lps_affine(image), affine, atol=1e-9)
    np.testing.assert_allclose(affine @ [1, 2, 3, 1], [*image.TransformIndexToPhysicalPoint((1, 2, 3)), 1], atol=1e-9)


def test_lps_ras_flip_is_an_involution():
    affine = affine_from_grid((1, 2, 3), (0.5, 0.6, 2.0), _rotation(0.1, 0.2, 0.3))
    assert lps_to_ras(affine)[0, 3] == -1 and lps_to_ras(affine)[1, 3] == -2 and lps_to_ras(affine)[2, 3] == 3
    np.testing.assert_array_equal(ras_to_lps(lps_to_ras(affine)), affine)


def test_pixel_spacing_is_row_then_column():
    affine = dicom_plane_affine([0, 0, 0], [1, 0, 0, 0, 1, 0], [0.7, 0.8], [0, 0, 2.5])
    # column index i moves along the row direction by the *column* spacing 0.8
    np.testing.assert_allclose(affine @ [1, 0, 0, 1], [0.8, 0, 0, 1])
    np.testing.assert_allclose(affine @ [0, 1, 0, 1], [0, 0.7, 0, 1])
    orientation, pixel_spacing, slice_spacing, step = dicom_plane_attributes(affine)
    assert pixel_spacing == [0.7, 0.8] and slice_spacing == 2.5
    np.testing.assert_allclose(orientation, [1, 0, 0, 0, 1, 0])


@settings(max_examples=30, deadline=None)
@given(angles, angles, angles, spacings, spacings, spacings)
def test_dicom_attributes_invert_the_plane_affine(a, b, c, dy, dx, dz):
    rot = _rotation(a, b, c)
    iop = np.concatenate([rot[:, 0], rot[:, 1]])
    step = slice_normal(iop) * dz
    affine = dicom_plane_affine([10, -20, 30], iop, [dy, dx], step)
    orientation, pixel_spacing, slice_spacing, back_step = dicom_plane_attributes(affine)
    np.testing.assert_allclose(orientation, iop, atol=1e-12)
    np.testing.assert_allclose(pixel_spacing, [dy, dx], rtol=1e-12)
    np.testing.assert_allclose(back_step, step, atol=1e-12)
    assert np.isclose(slice_spacing, dz)
    np.testing.assert_allclose(slice_normal(iop), rot[:, 2], atol=1e-12)


def test_2d_sitk_image_gets_a_unit_slice_axis():
    image = sitk.Image(3, 4, sitk.sitkFloat32)
    image.SetSpacing((0.5, 0.25))
    image.SetOrigin((7.0, 8.0))
    affine = sitk_lps_affine(image)
    np.testing.assert_allclose(np.diag(affine), [0.5, 0.25, 1.0, 1.0])
    np.testing.assert_allclose(affine[:3, 3], [7, 8, 0])


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.integers(1, 5))
def test_zyx_to_xyz_is_a_contiguous_transpose(n_x, n_y, n_z):
    array = np.arange(n_x * n_y * n_z, dtype=np.float32).reshape(n_z, n_y, n_x)
    out = zyx_to_xyz(array)
    assert out.flags.c_contiguous and out.shape == (n_x, n_y, n_z)
    np.testing.assert_array_equal(out, array.transpose(2, 1, 0))
    as_int = zyx_to_xyz(array.astype(np.int16), np.float32)
    assert as_int.dtype == np.float32
    np.testing.assert_array_equal(as_int, out)


def test_voxel_spacing_from_numpy_tensor_or_nothing():
    import torch

    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees in-plane
    affine = np.eye(4)
    affine[:3, :3] = rotation * np.array([0.48, 0.5, 5.0])
    affine[:3, 3] = (-120.0, 30.0, 7.5)  # the origin does not count
    assert np.allclose(voxel_spacing(affine), (0.48, 0.5, 5.0))
    assert np.allclose(voxel_spacing(torch.as_tensor(affine, dtype=torch.float32)), (0.48, 0.5, 5.0))
    assert np.allclose(voxel_spacing(-affine), (0.48, 0.5, 5.0))  # flipped axes: lengths stay positive
    assert voxel_spacing(None).tolist() == [1.0, 1.0, 1.0]
