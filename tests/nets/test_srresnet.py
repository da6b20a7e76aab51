"""SRResNet: scale factors, paper layout, 3D pixel shuffle, untrained = bicubic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medgan.errors import ConfigError
from medgan.nets import build_net


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_scale_factors(scale: int) -> None:
    net = build_net({"type": "srresnet", "feature_size": 4, "num_res_blocks": 1, "scale": scale})
    assert net(torch.randn(2, 1, 8, 10)).shape == (2, 1, 8 * scale, 10 * scale)


def test_paper_layout() -> None:
    net = build_net({"type": "srresnet"})  # on CPU: MONAI's ICNR init is slow on the meta device
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (9, 9) and convs[-1].kernel_size == (9, 9)
    assert len(net.body) == 16 + 2  # 16 residual blocks, then conv + BN before the long skip
    shuffles = [m for m in net.upsample.modules() if type(m).__name__ == "SubpixelUpsample"]
    assert len(shuffles) == 2  # x4 = two x2 stages


def test_3d_super_resolution() -> None:
    net = build_net({"type": "srresnet", "spatial_dims": 3, "feature_size": 4, "num_res_blocks": 1, "scale": 2})
    assert net(torch.randn(2, 1, 6, 8, 10)).shape == (2, 1, 12, 16, 20)


def _bicubic(x: torch.Tensor, s: int) -> torch.Tensor:
    """Keys' cubic convolution (a = -0.5) along every spatial axis, independently of the net's module.

    Output j samples input coordinate (j + 0.5) / s - 0.5 with replicated borders; the axis is done with
    explicit index arithmetic (numpy-style gathers), not convolutions.
    """
    def keys(t: torch.Tensor) -> torch.Tensor:
        t = t.abs()
        return torch.where(t <= 1, 1.5 * t**3 - 2.5 * t**2 + 1,
                           torch.where(t < 2, -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2, torch.zeros_like(t)))

    for axis in range(2, x.ndim):
        n = x.shape[axis]
        pos = (torch.arange(n * s, dtype=torch.float64) + 0.5) / s - 0.5
        base = pos.floor()
        out = 0
        for k in (-1, 0, 1, 2):
            idx = (base + k).clamp(0, n - 1).long()
            w = keys(pos - (base + k)).to(x.dtype)
            shape = [1] * x.ndim
            shape[axis] = -1
            out = out + x.index_select(axis, idx) * w.reshape(shape)
        x = out
    return x


def _bspline(x: torch.Tensor, s: int) -> torch.Tensor:
    """SciPy's cubic B-spline interpolation at the same positions ((j + 0.5) / s - 0.5), edges repeated."""
    from scipy import ndimage

    arr = x.double().numpy()
    out = np.empty(arr.shape[:2] + tuple(n * s for n in arr.shape[2:]))
    for b, c in np.ndindex(*arr.shape[:2]):
        out[b, c] = ndimage.zoom(arr[b, c], s, order=3, mode="nearest", grid_mode=True)
    return torch.from_numpy(out).float()


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_untrained_net_is_bspline_interpolation_2d(scale: int, norm: str) -> None:
    net = build_net({"type": "srresnet", "feature_size": 4, "num_res_blocks": 2, "scale": scale, "norm": norm})
    x = torch.randn(2, 1, 30, 32)
    inner = (..., slice(10 * scale, -10 * scale), slice(10 * scale, -10 * scale))  # SciPy's own edge prefilter
    for mode in (net.train(), net.eval()):  # batch statistics or running ones: the correction is 0 either way
        assert torch.allclose(mode(x)[inner], _bspline(x, scale)[inner], atol=1e-4)


def test_untrained_net_is_bicubic_with_cubic_interpolation() -> None:
    net = build_net({"type": "srresnet", "feature_size": 4, "num_res_blocks": 1, "scale": 2, "interpolation": "cubic"})
    x = torch.randn(2, 1, 9, 12)
    assert torch.allclose(net(x), _bicubic(x, 2), atol=1e-5)


def test_untrained_net_is_bicubic_of_the_centre_slice_in_2_5d() -> None:
    net = build_net({"type": "srresnet", "in_channels": 3, "feature_size": 4, "num_res_blocks": 1, "scale": 2,
                     "interpolation": "cubic"}).eval()
    x = torch.randn(1, 3, 8, 10)
    assert torch.allclose(net(x), _bicubic(x[:, 1:2], 2), atol=1e-5)


def test_untrained_net_is_interpolation_3d() -> None:
    net = build_net({"type": "srresnet", "spatial_dims": 3, "feature_size": 4, "num_res_blocks": 1, "scale": 2}).eval()
    x = torch.randn(1, 1, 24, 24, 24)
    inner = (..., slice(20, -20), slice(20, -20), slice(20, -20))
    assert torch.allclose(net(x)[inner], _bspline(x, 2)[inner], atol=1e-4)
    cubic = build_net({"type": "srresnet", "spatial_dims": 3, "feature_size": 4, "num_res_blocks": 1, "scale": 2,
                       "interpolation": "cubic"}).eval()
    x = torch.randn(1, 1, 5, 6, 7)
    assert torch.allclose(cubic(x), _bicubic(x, 2), atol=1e-5)


def test_the_correction_learns_from_the_second_step() -> None:
    net = build_net({"type": "srresnet", "feature_size": 4, "num_res_blocks": 1, "scale": 2, "norm": "none"})
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 16, 16)
    for _ in range(2):
        opt.zero_grad()
        F.mse_loss(net(x), y).backward()
        grads = {n: p.grad.abs().sum().item() for n, p in net.named_parameters()}
        opt.step()
    assert all(g > 0 for g in grads.values()), [n for n, g in grads.items() if g == 0]  # zero init does not stall


def test_paper_net_without_interpolation_and_channel_check() -> None:
    net = build_net({"type": "srresnet", "feature_size": 4, "num_res_blocks": 1, "scale": 2, "interpolation": "none"})
    assert net.base is None and net.tail.weight.abs().sum() > 0
    with pytest.raises(ConfigError, match="interpolation"):
        build_net({"type": "srresnet", "interpolation": "lanczos"})
    with pytest.raises(ConfigError, match="residual"):
        build_net({"type": "srresnet", "in_channels": 2, "out_channels": 1, "feature_size": 4, "num_res_blocks": 1})


def test_outer_kernel_sets_the_first_and_last_conv() -> None:
    net = build_net({"type": "srresnet", "feature_size": 4, "num_res_blocks": 1, "scale": 2, "outer_kernel": 3})
    assert net.head[0].kernel_size == (3, 3) and net.tail.kernel_size == (3, 3)
    assert net(torch.randn(1, 1, 6, 7)).shape == (1, 1, 12, 14)
    with pytest.raises(ConfigError, match="outer_kernel"):
        build_net({"type": "srresnet", "outer_kernel": 4})


def test_per_axis_scale_for_thick_to_thin_slices() -> None:
    from medgan.nets.upsample import interpolate_up

    net = build_net({"type": "srresnet", "spatial_dims": 3, "feature_size": 4, "num_res_blocks": 1, "scale": [1, 1, 4]})
    x = torch.randn(1, 1, 5, 6, 4)
    assert torch.allclose(net(x), interpolate_up(x, [1, 1, 4]), atol=1e-5)  # untrained: interpolation along z only
    assert build_net({"type": "srresnet", "scale": [2, 2]}).scale == 2  # equal factors: the paper's stages
    with pytest.raises(ConfigError, match="scale"):
        build_net({"type": "srresnet", "scale": [2, 2, 2]})  # 3 factors for a 2D net


def test_axis_shuffle_matches_pixel_shuffle_layout() -> None:
    from medgan.nets.srresnet import _AxisShuffle

    stage = _AxisShuffle(2, 3, (2, 2))
    x = torch.randn(1, 3, 4, 5)
    assert torch.equal(stage(x), F.pixel_shuffle(stage.conv(x), 2))


@pytest.mark.parametrize(("dims", "scale"), [(2, 2), (2, 3), (3, [1, 1, 4]), (3, 2)])
def test_consistent_output_block_means_equal_the_input(dims, scale) -> None:
    net = build_net({"type": "srresnet", "spatial_dims": dims, "feature_size": 4, "num_res_blocks": 1, "scale": scale,
                     "consistency": True, "norm": "none"})
    for p in net.tail.parameters():  # a trained-looking correction, not the zero start
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn((2, 1) + (6,) * dims)
    y = net(x)
    factors = [scale] * dims if isinstance(scale, int) else scale
    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    assert torch.allclose(pool(y, factors), x, atol=1e-5)
    plain = build_net({"type": "srresnet", "spatial_dims": dims, "feature_size": 4, "num_res_blocks": 1, "scale": scale,
                       "norm": "none"})
    plain.load_state_dict(net.state_dict())
    assert not torch.allclose(pool(plain(x), factors), x, atol=1e-3)  # without it the correction moves block means
