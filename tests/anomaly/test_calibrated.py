"""Map methods: blob preference, the fitted state's round trip, masks without specks, config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.anomaly import CalibratedMapper, MapConfig, anomaly_mask
from medgan.anomaly.calibrated import prefer_blobs
from medgan.errors import ConfigError


def _map() -> MetaTensor:
    """(1, 24, 24, 3) on 3 x 3 x 10 mm voxels: a one-voxel-wide line and a 4 x 4 blob, both at 10."""
    values = torch.zeros(1, 24, 24, 3)
    values[0, 2:20, 3, 1] = 10.0  # a vessel-like line
    values[0, 12:16, 12:16, 1] = 10.0  # a lesion-like blob
    return MetaTensor(values, affine=torch.diag(torch.tensor([3.0, 3.0, 10.0, 1.0], dtype=torch.float64)))


def test_opening_removes_lines_keeps_blobs_and_still_ranks_the_rest():
    found = _map()
    out = prefer_blobs(found.as_tensor(), found, MapConfig(open_mm=9.0, voxel_weight=0.1))[0]
    assert float(out[13, 13, 1]) == pytest.approx(11.0)  # blob: opened 10 + 0.1 * 10
    assert float(out[10, 3, 1]) == pytest.approx(1.0)  # line: only its voxel part is left
    assert float(out[0, 0, 0]) == 0.0
    same = prefer_blobs(found.as_tensor(), found, MapConfig(open_mm=0.0))
    assert torch.equal(same, found.as_tensor())


def test_masks_drop_regions_below_the_volume():
    found = _map()
    body = torch.ones(1, 24, 24, 3, dtype=torch.bool)
    assert int(anomaly_mask(found, body, 5.0).sum()) == 18 + 16
    kept = anomaly_mask(found, body, 5.0, min_size_mm3=18 * 90.0 + 1)  # larger than the line (18 voxels of 90 mm3)
    assert int(kept.sum()) == 0
    kept = anomaly_mask(found, body, 5.0, min_size_mm3=14.5 * 90.0)  # under the blob: both stay
    assert int(kept.sum()) == 18 + 16
    assert int(anomaly_mask(found, torch.zeros_like(body), 5.0, 100.0).sum()) == 0
    with pytest.raises(ConfigError, match="min_size_mm3"):
        anomaly_mask(found, body, 5.0, -1.0)


@pytest.mark.parametrize("bad", [{"method": "pca"}, {"polarity": "up"}, {"median_mm": 0}, {"open_mm": -1},
                                 {"sigma_mm": -1}])
def test_bad_map_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        MapConfig(**bad)
    with pytest.raises(ConfigError, match="unknown"):
        MapConfig.from_config({"methd": "median"})


def test_net_methods_need_a_model():
    with pytest.raises(ConfigError, match="--model"):
        CalibratedMapper(None, MapConfig(method="tissue"))


def test_saved_state_maps_like_the_fitted_mapper(chest):
    from monai.data import MetaTensor

    normal = MetaTensor(chest.as_tensor()[..., :12], affine=chest.affine)
    test = MetaTensor(chest.as_tensor()[..., 12:24].clone(), affine=chest.affine)
    test[0, 60:63, 60:63, 5] += 300.0  # 9 mm wide: narrower than the median disc (8 mm radius)
    fitted = CalibratedMapper(None, MapConfig(method="median")).fit([normal])
    state = fitted.state()
    assert set(state["tissue"]) == {"median"} and state["tail"] == {}
    loaded = CalibratedMapper(None, MapConfig(method="median"), state)
    a, b = fitted(test), loaded(test)
    assert torch.equal(a.map.as_tensor(), b.map.as_tensor())
    assert float(a.map[0, 61, 61, 5]) > 5 * float(a.map[0][a.body[0]].mean())  # the inserted blob stands out
    np.testing.assert_allclose(a.map.affine.numpy(), test.affine.numpy())
