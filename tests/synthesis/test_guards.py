"""The cGAN with every mode-collapse guard on trains, resumes its image pool, and writes a package that
medgan-sample reads by class name."""

import pytest
import torch

from medgan.config import validate_config
from medgan.engine import train
from medgan.recipes import build_recipe
from medgan.synthesis.sampling import load_generative
from tests.recipes._configs import tiny_config
from tests.recipes.conftest import SyntheticCTDataModule

GUARDS = {"recipe": {"label_smoothing": 0.1, "pool_size": 4, "class_names": ["lung", "soft"],
                     "gan_loss": {"type": "hinge"}},
          "nets": {"generator": {"type": "dcgan_generator", "feature_size": 4},
                   "discriminator": {"type": "dcgan_discriminator", "feature_size": 4, "spectral_norm": True,
                                     "minibatch_std": True}},
          "validation": {"diversity": {"samples": 4, "on_collapse": "restore"}}}


def test_pool_keeps_cgan_labels_with_their_fakes(tmp_path):
    recipe = build_recipe(tiny_config("cgan", tmp_path / "run", **GUARDS))
    fake = torch.stack([torch.full((1, 16, 16), float(i)) for i in range(4)])
    labels = torch.tensor([0, 1, 1, 0])
    for _ in range(5):  # the pool fills, then swaps old fakes in: each label must stay with its own image
        images, pooled_labels = recipe._pooled(fake + torch.rand(()), labels)
        index = images[:, 0, 0, 0].floor().long()
        assert torch.equal(pooled_labels, labels[index])


def test_class_names_must_fit_num_classes(tmp_path):
    from medgan.errors import ConfigError

    with pytest.raises(ConfigError, match="recipe.class_names"):
        build_recipe(tiny_config("cgan", tmp_path / "r", recipe={"class_names": ["a", "b", "c"]}))


@pytest.mark.slow
def test_guarded_cgan_trains_and_its_package_samples_by_class_name(tmp_path):
    raw = tiny_config("cgan", tmp_path / "run", **GUARDS)
    result = train(validate_config(raw), datamodule=SyntheticCTDataModule(patch_size=[16, 16], n_train=4, n_val=1,
                                                                          batch_size=2, pairing="single"))
    ckpt = torch.load(result.last_ckpt, map_location="cpu", weights_only=True)
    assert len(ckpt["medgan_state"]["recipe"]["pool"]["images"]) == 4  # the pool is resumable state
    assert any("parametrizations" in k for k in ckpt["state_dict"])  # spectral norm is on
    gen = load_generative(tmp_path / "run" / "model")
    assert gen.class_names == ["lung", "soft"] and gen.class_index("soft") == 1
    assert gen.sample([0, 1], [1, 1]).shape == (2, 1, 16, 16)
