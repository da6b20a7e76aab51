"""Nets renamed their arguments to MONAI's names: configs with an old name are refused naming the new one,
model packages written under the old names still load (their weights do not depend on the names)."""

from __future__ import annotations

import pytest
import torch

from medgan.config import validate_config
from medgan.errors import ConfigError
from medgan.inference.loading import load_generator
from medgan.nets import build_net
from medgan.package import make_manifest, save_model_package
from medgan.transforms.intensity import HUNormalizer


def test_a_package_saved_with_old_argument_names_loads_under_the_new_ones(tmp_path):
    torch.manual_seed(0)
    net = build_net({"type": "srresnet", "spatial_dims": 2, "feature_size": 4, "num_res_blocks": 1, "scale": 2}).eval()
    old = {"type": "srresnet", "spatial_dims": 2, "channels": 4, "num_blocks": 1, "upscale": 2}
    manifest = make_manifest("srgan", {"generator": old}, "generator", 2, HUNormalizer().to_config(), scale=2)
    folder = save_model_package(tmp_path / "old", {f"generator.{k}": v for k, v in net.state_dict().items()}, manifest)
    assert "upscale: 2" in (folder / "medgan.yaml").read_text()  # the file keeps what was written

    loaded_manifest, loaded = load_generator(folder)
    assert loaded_manifest["nets"]["generator"] == {"type": "srresnet", "spatial_dims": 2, "feature_size": 4,
                                                    "num_res_blocks": 1, "scale": 2}
    x = torch.rand(1, 1, 8, 8)
    assert torch.equal(loaded(x), net(x))


def test_a_config_with_an_old_recipe_key_names_the_new_one():
    raw = {"recipe": {"name": "dcgan", "latent_dim": 8}, "data": {"root": "d"},
           "nets": {"generator": {"type": "dcgan_generator"}, "discriminator": {"type": "dcgan_discriminator"}}}
    with pytest.raises(ConfigError, match=r"^config key 'recipe.latent_dim' is now called 'recipe.latent_size'$"):
        validate_config(raw)
