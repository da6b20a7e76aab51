import pytest
import torch

from medgan.errors import ConfigError
from medgan.inference.slabs import SlabInferer, round_up, slab_ranges, stack_context
from medgan.transforms.intensity import HUNormalizer


def test_stack_context_orders_neighbours_and_replicates_edges():
    hu = torch.arange(5.0).view(1, 1, 5).expand(3, 2, 5)  # every voxel holds its slice index
    x = stack_context(hu, 0, 5, 2)
    assert x.shape == (5, 5, 3, 2)
    assert x[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 4],
                                      [2, 3, 4, 4, 4]]


def test_slab_ranges_cover_every_slice_once():
    assert list(slab_ranges(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert round_up(30, 8) == 32 and round_up(32, 8) == 32


def _ramp(x, y, z):
    g = torch.meshgrid(torch.arange(x), torch.arange(y), torch.arange(z), indexing="ij")
    return (g[0] * 7.0 + g[1] * 3.0 - g[2] * 11.0 - 500.0).float()


@pytest.mark.parametrize("roi,blend", [(None, "gaussian"), ((16, 12), "gaussian"), ((16, 12), "constant")])
def test_identity_network_is_reproduced_for_every_window_layout(roi, blend):
    hu = _ramp(37, 23, 9)  # odd, non-square sizes: padding and partial windows are exercised
    inferer = SlabInferer(lambda x: x[:, 1:2], HUNormalizer(), input_mode="2.5d", context_slices=1,
                          roi_size=roi, blend=blend, overlap=0.5, slab_slices=4, batch_size=3, multiple=4)
    out = inferer(hu)
    assert out.shape == hu.shape
    assert (out - hu).abs().max() < 1e-3  # float32 round trip through the [-1, 1] window


@pytest.mark.parametrize("scale", [1, 2])
def test_slabs_of_a_3d_net_match_one_piece(scale):
    # A voxel-wise net (1x1x1 convs) gives the same value whatever the window placement, so any
    # difference between slab-wise and one-piece inference would be a halo / indexing error.
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 1), torch.nn.Tanh(), torch.nn.Conv3d(4, 1, 1),
                              torch.nn.Upsample(scale_factor=scale, mode="nearest"))

    def run(x):
        with torch.no_grad():
            return net(x)

    hu = _ramp(20, 18, 30)
    kw = dict(input_mode="3d", scales=(scale,) * 3, roi_size=(16, 16, 8), overlap=0.5)
    whole = SlabInferer(run, HUNormalizer(), slab_slices=30, **kw)(hu)
    slabs = SlabInferer(run, HUNormalizer(), slab_slices=7, **kw)(hu)
    assert whole.shape == (20 * scale, 18 * scale, 30 * scale)
    assert (whole - slabs).abs().max() < 1e-2
    ref = run(HUNormalizer().forward(hu)[None, None])[0, 0]
    assert (HUNormalizer().inverse(ref) - slabs).abs().max() < 1e-2


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ConfigError, match="--blend"):
        SlabInferer(lambda x: x, HUNormalizer(), blend="max")
    with pytest.raises(ConfigError, match="--overlap"):
        SlabInferer(lambda x: x, HUNormalizer(), overlap=1.0)
    with pytest.raises(ConfigError, match="roi_size"):
        SlabInferer(lambda x: x, HUNormalizer(), roi_size=(8, 8, 8))


def test_unknown_multiple_costs_no_extra_forward_when_the_windows_fit_and_probes_when_not():
    calls = []

    def strided(x):  # like a 2-level U-Net: sides must be even
        calls.append(tuple(x.shape))
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise RuntimeError("odd size")
        return x

    probes = []
    inferer = SlabInferer(strided, HUNormalizer(), multiple=None, probe=lambda: probes.append(1) or 2,
                          batch_size=8)
    hu = torch.linspace(-1000, 1000, 8 * 6 * 3).reshape(8, 6, 3)
    torch.testing.assert_close(inferer(hu), hu, atol=0.05, rtol=0)
    assert calls == [(3, 1, 8, 6)] and not probes  # one forward, on the real slices
    calls.clear()
    odd = torch.zeros(7, 6, 2)
    assert SlabInferer(strided, HUNormalizer(), multiple=None, probe=lambda: 2)(odd).shape == (7, 6, 2)
    assert calls[0] == (2, 1, 7, 6) and calls[-1] == (2, 1, 8, 6)  # failed as is, padded to the multiple
