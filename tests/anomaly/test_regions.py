"""The soft-tissue search region, the map it down-weights outside, and masks grown to the lesion's half maximum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.anomaly import CalibratedMapper, MapConfig, anomaly_mask
from medgan.anomaly.regions import soft_tissue_region
from medgan.anomaly.thresholds import Thresholds
from medgan.errors import ConfigError


def _scan() -> MetaTensor:
    """(1, 40, 40, 3) HU on 3 x 3 x 10 mm voxels: soft tissue (40 HU) with lung on the right (x >= 30), a rib
    (700 HU core, 250 HU partial-volume ring), a gas pocket and a +200 HU lesion, all in the middle slice."""
    hu = torch.full((1, 40, 40, 3), 40.0)
    hu[0, 30:] = -800.0
    hu[0, 8:13, 8:13, 1] = 250.0
    hu[0, 9:12, 9:12, 1] = 700.0
    hu[0, 20:22, 30:32, 1] = -900.0
    hu[0, 18:21, 14:17, 1] = 240.0
    return MetaTensor(hu, affine=torch.diag(torch.tensor([3.0, 3.0, 10.0, 1.0], dtype=torch.float64)))


def test_region_leaves_out_bone_its_rim_gas_and_lung_but_not_a_lesion():
    region = soft_tissue_region(_scan())[0, :, :, 1]
    assert not region[7:14, 7:14].any()  # rib, its ring and one more voxel (3 mm)
    assert region[6, 10] and region[14, 10]  # two voxels away: soft tissue again
    assert not region[20:22, 30:32].any()  # gas
    assert not region[34:, :].any()  # lung (its background is lung)
    assert region[18:21, 14:17].all()  # +200 HU: brighter than the rib's ring but no bone core
    assert region[:20, 20:].all()


def test_median_hu_map_keeps_the_region_and_down_weights_the_rest():
    scan = _scan()
    plain = CalibratedMapper(None, MapConfig(region="body", open_mm=0, sigma_mm=0))(scan).map[0, :, :, 1]
    soft = CalibratedMapper(None, MapConfig(open_mm=0, sigma_mm=0))(scan).map[0, :, :, 1]
    assert float(plain[19, 15]) == pytest.approx(200.0)  # HU above the median of its disc
    assert float(soft[19, 15]) == pytest.approx(200.0)
    assert float(plain[20, 30]) == pytest.approx(940.0)  # the gas pocket outranks the lesion in the body map ...
    assert float(soft[20, 30]) == pytest.approx(94.0)  # ... but not in the soft-tissue one (outside_weight 0.1)
    assert CalibratedMapper(None, MapConfig()).needs_fit is False  # nothing to learn from normal scans


@pytest.mark.parametrize("bad", [{"region": "lung"}, {"outside_weight": 1.5}, {"outside_weight": -0.1}])
def test_bad_region_settings_are_config_errors(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        MapConfig(**bad)


def test_thresholds_from_before_the_region_map_the_whole_body():
    old = Thresholds(voxel_hu=1.0, scan=1.0, fpr=0.01, achieved_fpr=0.01, scan_fpr=0.01, sigma_mm=1.0,
                     body_hu=-500.0, map={"method": "median"})
    assert old.map_config.region == "body" and old.grow == 0.0
    assert Thresholds(**{**old.__dict__, "map": {"method": "median", "region": "soft"}}).map_config.region == "soft"


def test_masks_grow_to_the_half_maximum_one_voxel_at_most():
    residual = torch.zeros(1, 12, 12, 2)
    residual[0, 3:8, 3:8, 0] = 6.0  # the lesion's rim: above half its peak
    residual[0, 4:7, 4:7, 0] = 10.0  # its core, which the opened map keeps
    residual[0, 8:12, 5, 0] = 6.0  # an edge running on from the rim
    seeds = torch.zeros(1, 12, 12, 2)
    seeds[0, 4:7, 4:7, 0] = 1.0
    body = torch.ones(1, 12, 12, 2, dtype=torch.bool)
    assert int(anomaly_mask(seeds, body, 0.5).sum()) == 9
    grown = anomaly_mask(seeds, body, 0.5, grow=0.5, residual=residual)[0]
    assert grown[3:8, 3:8, 0].all() and int(grown.sum()) == 25  # the rim, not the edge beyond it
    assert int(anomaly_mask(seeds, body, 0.5, grow=0.7, residual=residual).sum()) == 9  # 6 < 0.7 * 10
    with pytest.raises(ConfigError, match="residual"):
        anomaly_mask(seeds, body, 0.5, grow=0.5)
    with pytest.raises(ConfigError, match="grow"):
        anomaly_mask(seeds, body, 0.5, grow=2.0, residual=residual)
    assert np.array_equal(anomaly_mask(seeds, ~body, 0.5, grow=0.5, residual=residual).numpy(),
                          np.zeros((1, 12, 12, 2), dtype=bool))
