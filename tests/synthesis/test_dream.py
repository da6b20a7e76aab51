import pytest
import torch

from medgan.errors import ConfigError
from medgan.synthesis.dream import dream, load_dream_nets
from tests.recipes._configs import tiny_config


@pytest.fixture
def cgan_ckpt(tmp_path):
    """A training checkpoint of a tiny cGAN (random weights): it holds the discriminator too."""
    from medgan.recipes import build_recipe

    torch.manual_seed(0)
    recipe = build_recipe(tiny_config("cgan", tmp_path / "run"))
    path = tmp_path / "last.ckpt"
    torch.save({"hyper_parameters": dict(recipe.hparams), "state_dict": recipe.state_dict()}, path)
    return path


def test_checkpoint_gives_every_net_of_the_recipe(cgan_ckpt):
    nets = load_dream_nets(cgan_ckpt)
    assert set(nets.nets) == {"generator", "discriminator"}
    role, net, module = nets.layer("discriminator.stages.0")
    assert role == "discriminator" and isinstance(module, torch.nn.Sequential)
    with pytest.raises(ConfigError, match="did you mean discriminator.stages.0"):
        nets.layer("discriminator.stage.0")
    with pytest.raises(ConfigError, match="nets: generator, discriminator"):
        nets.layer("encoder.x")


def test_dream_raises_the_layer_activation_within_every_octave(cgan_ckpt):
    nets = load_dream_nets(cgan_ckpt)
    _, net, module = nets.layer("discriminator.stages.0")
    image = torch.rand(1, 1, 40, 24, generator=torch.Generator().manual_seed(1)) * 2 - 1  # not a tile multiple
    result = dream(net, module, image, octaves=2, steps=6, lr=0.05, jitter=2, label=1)
    assert result.image.shape == image.shape and result.octave_sizes[-1] == (40, 24)
    first, second = result.history[:6], result.history[6:]
    assert first[-1] > first[0] * 1.05 and second[-1] > second[0] * 1.05
    assert float(result.image.abs().max()) <= 1.0  # kept in the normalised range
    # the weights are left as they were: dreaming changes the input only
    assert all(not p.requires_grad or p.grad is None for p in net.parameters())


def test_noise_generator_input_is_refused(cgan_ckpt, tmp_path):
    from medgan.synthesis.dream import run_dream

    with pytest.raises(ConfigError, match="latent vector"):
        run_dream(cgan_ckpt, "generator.model.0", "noise", tmp_path / "d.png")
