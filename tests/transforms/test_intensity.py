import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.data import MetaTensor

from medgan.errors import ConfigError
from medgan.transforms.intensity import HUNormalizer, NormalizeHUd, build_normalizer, fit_zscore

hu_values = st.floats(min_value=-1024, max_value=3071, allow_nan=False, width=32)


@settings(max_examples=50, deadline=None)
@given(st.lists(hu_values, min_size=1, max_size=64))
def test_window_inverse_of_forward_is_identity_on_the_kept_range(values):
    norm = HUNormalizer()
    x = torch.tensor(values, dtype=torch.float64)
    y = norm.forward(x)
    assert torch.all(y >= -1) and torch.all(y <= 1)
    assert torch.allclose(norm.inverse(y), x, atol=1e-9, rtol=0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-3000, 5000, allow_nan=False), min_size=1, max_size=32),
    st.floats(-500, 500),
    st.floats(1, 1000),
)
def test_zscore_inverse_is_exact_everywhere(values, mean, std):
    # the ldct-benchmark de-normalised with `x * std + std`; adding the mean back is what must happen
    norm = HUNormalizer(type="zscore", mean=mean, std=std)
    x = np.asarray(values)
    assert np.allclose(norm.forward(x), (x - mean) / std)
    assert np.allclose(norm.inverse(norm.forward(x)), x, atol=1e-6)


def test_window_clips_outside_the_range_and_maps_the_ends():
    norm = HUNormalizer(hu_min=-1000, hu_max=1000, out_min=0, out_max=1)
    x = torch.tensor([-3000.0, -1000.0, 0.0, 1000.0, 4000.0])
    assert torch.allclose(norm.forward(x), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))
    # outside the window the inverse gives the clip value: documented, not an identity
    back = norm.inverse(norm.forward(x))
    assert torch.allclose(back, torch.tensor([-1000.0, -1000.0, 0.0, 1000.0, 1000.0]), atol=1e-3)


def test_every_int16_hu_survives_a_float32_round_trip_exactly():
    # what crosses the package boundary is rounded int16 HU: float32 rounding must never flip an integer
    hu = torch.arange(-1024, 3072, dtype=torch.float32)
    for norm in (HUNormalizer(), HUNormalizer(type="zscore", mean=-500.0, std=600.0)):
        assert torch.equal(torch.round(norm.inverse(norm.forward(hu))), hu)


def test_config_round_trip_and_errors_name_the_key():
    for norm in (HUNormalizer(hu_min=-200, hu_max=300), HUNormalizer(type="zscore", mean=-300, std=400)):
        assert build_normalizer(norm.to_config()) == norm
    cfg = {"type": "window", "hu_min": -100}
    build_normalizer(cfg)
    assert cfg == {"type": "window", "hu_min": -100}  # never mutated
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['center'\]"):
        build_normalizer({"center": 40})
    with pytest.raises(ConfigError, match="hu_max must be > hu_min"):
        build_normalizer({"hu_min": 100, "hu_max": 0})
    with pytest.raises(ConfigError, match="std must be > 0"):
        build_normalizer({"type": "zscore", "std": 0})
    with pytest.raises(ConfigError, match="type: got 'minmax'"):
        build_normalizer({"type": "minmax"})


def test_dictionary_transform_round_trips_a_metatensor_keeping_its_affine():
    affine = torch.diag(torch.tensor([0.7, 0.7, 2.0, 1.0], dtype=torch.float64))
    vol = MetaTensor(torch.randint(-1024, 3071, (1, 8, 8, 3)).float(), affine=affine)
    t = NormalizeHUd(["image"], {"type": "window"})
    out = t({"image": vol})
    assert out["image"].min() >= -1 and out["image"].max() <= 1
    assert torch.equal(torch.as_tensor(out["image"].affine), affine)
    back = t.inverse(out)["image"]
    assert torch.allclose(back.as_tensor(), vol.as_tensor(), atol=1e-3)


def test_fit_zscore_streams_volumes_and_gives_exact_statistics():
    rng = np.random.default_rng(0)
    volumes = [rng.normal(40, 300, size=(4, 5, 6)), torch.from_numpy(rng.normal(-200, 100, size=(3, 7)))]
    everything = np.concatenate([np.ravel(np.asarray(v)) for v in volumes])
    norm = fit_zscore(iter(volumes), clip=None)
    assert norm.type == "zscore"
    assert np.isclose(norm.mean, everything.mean()) and np.isclose(norm.std, everything.std())
    normalised = norm.forward(everything)
    assert abs(normalised.mean()) < 1e-9 and np.isclose(normalised.std(), 1.0)
    # padding is clipped to the window by default, so it does not drag the statistics
    padded = np.array([-3024.0, 0.0, 100.0])
    assert np.isclose(fit_zscore(padded).mean, np.mean([-1024.0, 0.0, 100.0]))
    with pytest.raises(ConfigError, match="constant data"):
        fit_zscore(np.full(10, 5.0))
    with pytest.raises(ConfigError, match="no values"):
        fit_zscore([])
