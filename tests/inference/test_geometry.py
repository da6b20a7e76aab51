import numpy as np
import pytest

from medgan.inference.geometry import upscaled_affine


def _oblique_affine():
    rot, _ = np.linalg.qr(np.array([[0.9, 0.3, 0.1], [-0.2, 0.8, 0.4], [0.1, -0.3, 0.95]]))
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag([0.7, 0.8, 2.5])
    a[:3, 3] = [-120.0, 35.5, 410.0]
    return a


@pytest.mark.parametrize("scales", [(2, 2, 1), (3, 3, 1), (2, 2, 2)])
def test_outer_faces_of_fine_grid_match_the_coarse_grid(scales):
    a = _oblique_affine()
    fine = upscaled_affine(a, scales)
    shape = np.array([5, 7, 3])
    for corner in np.ndindex(2, 2, 2):
        c = np.array(corner)
        # outer face of the coarse grid: index -0.5 or n - 0.5; of the fine grid: -0.5 or n·s - 0.5
        coarse = a @ np.append(c * shape - 0.5, 1)
        fine_pt = fine @ np.append(c * shape * np.array(scales) - 0.5, 1)
        np.testing.assert_allclose(fine_pt, coarse, atol=1e-9)
    # the direction is kept and the spacing divided by the scale
    np.testing.assert_allclose(np.linalg.norm(fine[:3, :3], axis=0), np.array([0.7, 0.8, 2.5]) / scales)


def test_scale_one_is_identity_and_bad_scale_is_rejected():
    a = _oblique_affine()
    np.testing.assert_allclose(upscaled_affine(a, (1, 1, 1)), a)
    with pytest.raises(ValueError, match="scales"):
        upscaled_affine(a, (0, 1, 1))
