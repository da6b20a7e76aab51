"""Anomaly maps from AE/VAE packages: geometry kept, HU units, body region, higher inside lesions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.anomaly import AnomalyMapper, body_mask
from medgan.errors import ModelPackageError
from medgan.package import make_manifest
from medgan.transforms.intensity import HUNormalizer


def test_map_has_the_scan_geometry_and_is_float32_hu(chest, chest_result):
    anomaly = chest_result.map
    assert anomaly.shape == chest.shape
    assert anomaly.dtype == torch.float32
    assert torch.equal(anomaly.affine, chest.affine)
    assert anomaly.min() >= 0
    # HU units: a poorly but not absurdly trained AE errs by tens to hundreds of HU inside the body
    body_mean = float(anomaly[chest_result.body].mean())
    assert 5.0 < body_mean < 500.0, body_mean


def test_map_is_zero_outside_the_body_and_body_holds_the_lungs(chest, chest_result):
    body = chest_result.body[0].numpy()
    assert float(chest_result.map[0][~torch.from_numpy(body)].abs().max()) == 0.0
    hu = chest[0].numpy()
    lungs = (hu < -700) & body
    assert lungs.sum() > 0.1 * body.sum()  # lungs filled into the body, not thrown away as air
    centre = hu[:, :, hu.shape[2] // 2]
    assert not body[0, 0, hu.shape[2] // 2] and centre[0, 0] < -500  # the corner is air, outside


def test_body_mask_keeps_the_largest_component_and_fills_holes():
    hu = np.full((20, 20, 3), -1000.0)
    hu[2:12, 2:12, :] = 40.0
    hu[5:8, 5:8, :] = -900.0  # a "lung" inside
    hu[16:18, 16:18, :] = 40.0  # a separate blob (e.g. the table)
    body = body_mask(hu)
    assert body[6, 6, 1] and body[3, 3, 0]
    assert not body[17, 17, 1] and not body[0, 0, 0]


def test_map_is_higher_inside_lesions_than_in_the_rest_of_the_body(lesion_case):
    _, mask, result = lesion_case
    values, truth, body = result.map[0].numpy(), mask[0].numpy(), result.body[0].numpy()
    inside, outside = values[truth & body].mean(), values[~truth & body].mean()
    assert inside > 1.5 * outside, (inside, outside)


def test_lesions_change_the_map_only_on_their_slices(chest_result, lesion_case):
    # a 2D AE maps slice by slice (its instance norm sees the whole slice), so slices without any lesion
    # voxel, and not next to one (smoothing), must map exactly as in the normal scan
    _, mask, result = lesion_case
    touched = mask[0].numpy().any(axis=(0, 1))
    near = touched | np.roll(touched, 1) | np.roll(touched, -1)
    change = (result.map[0] - chest_result.map[0]).abs().numpy()
    assert near.sum() < len(near)
    assert change[:, :, ~near].max() < 1e-3
    assert change[:, :, touched].max() > 100.0  # the lesions changed their slices' maps by > 100 HU


def test_non_autoencoder_package_is_refused():
    manifest = make_manifest("pix2pix", {"generator": {"type": "unet_generator"}}, "generator", 2,
                             HUNormalizer().to_config())
    with pytest.raises(ModelPackageError, match="not an autoencoder"):
        AnomalyMapper((manifest, {}))


def test_vae_maps_decode_the_mean_and_are_deterministic(chest):
    from medgan.nets import build_net

    cfg = {"type": "vae", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "img_size": [32, 32],
           "latent_size": 8, "channels": [4, 8], "strides": [2, 2], "use_mean_at_inference": False}
    torch.manual_seed(0)
    state = {f"generator.{k}": v for k, v in build_net(cfg).state_dict().items()}
    manifest = make_manifest("vae", {"generator": cfg}, "generator", 2, HUNormalizer().to_config(),
                             patch_size=[32, 32])
    small = chest[:, 32:96, 32:96, 15:17]
    mapper = AnomalyMapper((manifest, state), sigma_mm=0.0, body_hu=None)
    assert mapper.manifest["nets"]["generator"]["use_mean_at_inference"] is True
    assert manifest["nets"]["generator"]["use_mean_at_inference"] is False  # the caller's manifest is untouched
    first, second = mapper(small).map, mapper(small).map
    assert torch.equal(first, second)
    assert float(first.max()) > 0


def test_errors_are_bounded_by_the_hu_window_even_for_a_diverging_net(ae_package, chest):
    from medgan.package import load_model_package

    manifest, state = load_model_package(ae_package)
    wild = {k: v * 20.0 if v.is_floating_point() else v for k, v in state.items()}  # outputs far beyond [-1, 1]
    result = AnomalyMapper((manifest, wild), sigma_mm=0.0)(chest[:, :, :, 10:12])
    assert float(result.reconstruction.abs().max()) > 5000.0  # the net really diverges
    assert float(result.map.max()) <= 3071.0 + 1024.0
