import pytest
import torch

from medgan.errors import ConfigError
from medgan.transforms.fbp_filter import FILTERS, ramp_filter


def test_ramp_filter_is_the_discrete_ram_lak_response():
    h = ramp_filter(256)
    # the spatial kernel's DC is small but positive (a sampled |f| would set it to 0 and bias the mean)
    assert 0 < h[0].item() < 0.5 * h[1].item()
    assert abs(h[-1].item() - 0.5) < 0.01  # |f| = 0.5 cycles/bin at Nyquist
    assert torch.all(h[1:] > h[:-1])
    assert torch.all(ramp_filter(256, "hann")[1:] <= h[1:] + 1e-7)  # windows only attenuate
    with pytest.raises(ConfigError, match="filter: got 'bogus'"):
        ramp_filter(64, "bogus")


@pytest.mark.parametrize("name", FILTERS)
def test_every_filter_starts_like_the_ramp_and_never_exceeds_it(name):
    ramp, h = ramp_filter(128), ramp_filter(128, name)
    assert h.shape == (65,)
    assert torch.allclose(h[:3], ramp[:3], rtol=0.01)  # windows leave low frequencies alone
    assert torch.all(h <= ramp + 1e-7)
