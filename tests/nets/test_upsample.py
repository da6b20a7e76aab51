"""Fixed separable up-sampling: PyTorch's bicubic / bilinear in 2D, any factors per axis, no state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medgan.errors import ConfigError
from medgan.nets.upsample import InterpolateUp, interpolate_up, phase_filters, upsample_axis


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_positions_and_borders_match_torch_interpolate_in_2d(factor) -> None:
    x = torch.randn(2, 3, 7, 10)
    cubic = phase_filters("cubic", factor, a=-0.75).float()  # PyTorch's coefficient
    ours = upsample_axis(upsample_axis(x, cubic, 2), cubic, 3)
    assert torch.allclose(ours, F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False), atol=1e-5)
    expected = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert torch.allclose(interpolate_up(x, factor, "linear"), expected, atol=1e-5)


def test_keys_cubic_reproduces_quadratics_away_from_borders() -> None:
    z = torch.arange(10.0, dtype=torch.float64)
    up = upsample_axis((z**2).reshape(1, 1, 10), phase_filters("cubic", 2), 2)[0, 0]
    fine = (torch.arange(20.0, dtype=torch.float64) + 0.5) / 2 - 0.5
    assert torch.allclose(up[4:-4], fine[4:-4] ** 2, atol=1e-9)


def test_anisotropic_factors_scale_only_their_axis_and_keep_constants() -> None:
    x = torch.randn(1, 1, 4, 5, 6)
    y = InterpolateUp((1, 1, 4))(x)
    assert y.shape == (1, 1, 4, 5, 24)
    line = interpolate_up(x[:, :, 2, 3], 4)  # one z-line on its own, 1D (same default mode)
    assert torch.allclose(y[:, :, 2, 3], line, atol=1e-6)
    assert torch.allclose(InterpolateUp((2, 3, 4))(torch.full((1, 1, 3, 3, 3), -0.7)), torch.full((1, 1, 6, 9, 12), -0.7))


def test_bspline_matches_scipy_away_from_its_edge_prefilter() -> None:
    from scipy import ndimage

    x = torch.randn(60, dtype=torch.float64)
    for f in (2, 3):
        ours = upsample_axis(x.reshape(1, 1, 60), phase_filters("bspline", f), 2)[0, 0]
        ref = ndimage.zoom(x.numpy(), f, order=3, mode="nearest", grid_mode=True)
        assert abs(ours.numpy() - ref)[15 * f:-15 * f].max() < 1e-5
        if f == 3:  # the middle phase sits on the input samples: interpolation passes through them
            assert torch.allclose(ours[1::3], x, atol=1e-5)


def test_filters_sum_to_one_and_are_not_state() -> None:
    for mode in ("bspline", "cubic", "linear"):
        for f in (2, 3, 4):
            assert torch.allclose(phase_filters(mode, f).sum(-1), torch.ones(f, 1, dtype=torch.float64))
    assert InterpolateUp((2, 2)).state_dict() == {}
    with pytest.raises(ConfigError, match="interpolation"):
        phase_filters("sinc", 2)
