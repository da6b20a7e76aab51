"""Every registered net × spatial dims: output shape, finite values, gradients reach every parameter;
plus the ``build_net`` error contract."""

from __future__ import annotations

import copy

import pytest
import torch

from medgan.errors import ConfigError
from medgan.nets import DISCRIMINATORS, NETS, build_net

# tiny configs (channels <= 8, sizes 8-32); "size" is the input side, "out" the expected output side
CASES: dict[str, dict] = {
    "ae_undercomplete": {"cfg": {"img_size": 16, "latent_size": 8}, "size": 16},
    "ae_overcomplete": {"cfg": {"img_size": 8}, "size": 8},
    "ae_sparse": {"cfg": {"img_size": 16, "latent_size": 16}, "size": 16},
    "ae_deep": {"cfg": {"img_size": 16, "hidden": [16, 8], "latent_size": 4}, "size": 16},
    "ae_conv": {"cfg": {"channels": [4, 8], "strides": [2, 2]}, "size": 16},
    "dae": {"cfg": {"channels": [4, 8], "strides": [2, 2], "noise_std": 0.1}, "size": 16},
    "vae": {"cfg": {"img_size": 16, "channels": [4, 8], "strides": [2, 2], "latent_size": 4}, "size": 16},
    "redcnn": {"cfg": {"feature_size": 4}, "size": 24},
    "rescnn_lite": {"cfg": {"feature_size": 4, "num_layers": 3}, "size": 16},
    "resunet": {"cfg": {"channels": [4, 8]}, "size": 16},
    "nafnet": {"cfg": {"channels": [4, 8]}, "size": 16},
    "anomaly_restorer": {"cfg": {"channels": [4, 8]}, "size": 16, "dims": (2,)},  # 2D / 2.5D only
    "resnet_generator": {"cfg": {"feature_size": 4, "num_res_blocks": 1}, "size": 16},
    "unet_generator": {"cfg": {"feature_size": 4, "num_downs": 4}, "size": 16},
    "srresnet": {"cfg": {"feature_size": 4, "num_res_blocks": 1, "scale": 2}, "size": 16, "out": 32},
    "dcgan_generator": {"cfg": {"latent_size": 8, "feature_size": 4, "img_size": 16, "num_classes": 3}, "size": 16},
    "patchgan": {"cfg": {"feature_size": 4, "num_layers": 2}, "size": 32, "out": 6},
    "pixelgan": {"cfg": {"feature_size": 4}, "size": 16},
    "srgan_discriminator": {"cfg": {"feature_size": 4, "dense_units": 8, "pool_size": 2}, "size": 16},
    "dcgan_discriminator": {
        "cfg": {"feature_size": 4, "img_size": 16, "num_classes": 3, "minibatch_std": True}, "size": 16
    },
}


def test_every_registered_net_has_a_case() -> None:
    assert sorted(CASES) == NETS.names()


def _forward(name: str, net: torch.nn.Module, spatial_dims: int, size: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    batch = 2  # batch norm on 1×1 maps needs > 1 value per channel
    labels = torch.tensor([0, 2])
    if name == "dcgan_generator":
        return [net(torch.randn(batch, 8), labels)]
    x = torch.randn(batch, 1, *[size] * spatial_dims)
    if name == "dcgan_discriminator":
        return [net(x, labels)]
    out = net(x)
    return list(out) if isinstance(out, tuple) else [out]


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_net_shapes_finite_and_gradients(name: str, spatial_dims: int) -> None:
    case = CASES[name]
    if spatial_dims not in case.get("dims", (2, 3)):
        with pytest.raises(ConfigError, match="spatial_dims"):
            build_net({"type": name, "spatial_dims": spatial_dims, **case["cfg"]})
        return
    net = build_net({"type": name, "spatial_dims": spatial_dims, **case["cfg"]})
    net.train()
    outputs = _forward(name, net, spatial_dims, case["size"])
    main = outputs[0]
    if name in ("srgan_discriminator", "dcgan_discriminator"):
        assert main.shape == (2, 1)
    else:
        side = case.get("out", case["size"])
        assert main.shape == (2, 1, *[side] * spatial_dims), main.shape
    if name == "vae":
        assert outputs[1].shape == outputs[2].shape == (2, 4)  # mu, logvar
    for out in outputs:
        assert torch.isfinite(out).all()
    sum(out.sum() for out in outputs).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), pname
    assert sum(p.grad.abs().sum() for p in net.parameters()) > 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_round_trips_through_safetensors(name: str, tmp_path) -> None:
    """What the model package does: save with safetensors, rebuild from the config, load strictly."""
    from safetensors.torch import load_file, save_file

    cfg = {"type": name, "spatial_dims": 2, **CASES[name]["cfg"]}
    if name == "patchgan":
        cfg["spectral_norm"] = True
    net = build_net(cfg)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    fresh = build_net(cfg)
    fresh.load_state_dict(load_file(str(tmp_path / "w.safetensors")), strict=True)
    for (key, a), b in zip(net.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminators_return_features(name: str) -> None:
    case = CASES[name]
    net = build_net({"type": name, "spatial_dims": 2, **case["cfg"]})
    x = torch.randn(2, 1, case["size"], case["size"])
    extra = {"labels": torch.tensor([1, 0])} if name == "dcgan_discriminator" else {}
    logits, features = net(x, return_features=True, **extra)
    assert torch.equal(logits, net(x, **extra))  # same logits as the plain call
    assert len(features) >= 2
    assert all(f.shape[0] == 2 and f.dim() == 4 for f in features)
    # features are graph-connected to the input (usable for feature matching)
    x.requires_grad_(True)
    _, features = net(x, return_features=True, **extra)
    (grad,) = torch.autograd.grad(features[-1].sum(), x)
    assert grad.abs().sum() > 0


def test_build_net_unknown_type_lists_known_names() -> None:
    with pytest.raises(KeyError) as err:
        build_net({"type": "resnet_generatr"})
    assert "did you mean 'resnet_generator'" in str(err.value)
    assert "patchgan" in str(err.value)


def test_build_net_unknown_argument_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown argument 'num_res_block'.*did you mean 'num_res_blocks'"):
        build_net({"type": "resnet_generator", "num_res_block": 6})


@pytest.mark.parametrize(
    ("net", "old", "new"),
    [
        ("patchgan", "n_layers", "num_layers"),
        ("resnet_generator", "n_blocks", "num_res_blocks"),
        ("srresnet", "num_blocks", "num_res_blocks"),
        ("srresnet", "upscale", "scale"),
        ("resunet", "blocks", "num_res_blocks"),
        ("nafnet", "middle_blocks", "num_middle_blocks"),
        ("redcnn", "channels", "feature_size"),  # one width: feature_size; channels is always a list per level
        ("dcgan_generator", "latent_dim", "latent_size"),
    ],
)
def test_old_argument_names_are_refused_naming_the_new_one(net: str, old: str, new: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_net({"type": net, old: 2})
    assert str(err.value) == f"net '{net}': argument '{old}' is now called '{new}'"


def test_nets_with_levels_take_channels_as_a_list_and_the_others_feature_size() -> None:
    import inspect

    from medgan.nets import NETS

    for name in NETS.names():
        params = inspect.signature(NETS.get(name)).parameters
        assert not ("channels" in params and "feature_size" in params), name
        if "channels" in params:  # one width per level, as MONAI's UNet / AutoEncoder
            assert "Sequence" in str(params["channels"].annotation), name
        if "feature_size" in params:
            assert params["feature_size"].annotation in (int, "int"), name
        assert not {"n_layers", "n_blocks", "num_blocks", "blocks", "upscale", "latent_dim"} & set(params), name


def test_stored_configs_with_old_names_are_read_under_the_new_ones() -> None:
    from medgan.nets import rename_net_config

    old = {"type": "resnet_generator", "channels": 4, "n_blocks": 1, "norm": "none"}
    assert rename_net_config(old) == {"type": "resnet_generator", "feature_size": 4, "num_res_blocks": 1,
                                      "norm": "none"}
    assert rename_net_config({"type": "resunet", "channels": [4, 8]}) == {"type": "resunet", "channels": [4, 8]}
    assert rename_net_config({"type": "no_such_net", "n_blocks": 1}) == {"type": "no_such_net", "n_blocks": 1}


@pytest.mark.parametrize(
    "cfg, param",
    [
        ({"type": "patchgan", "norm": "group"}, "norm"),
        ({"type": "redcnn", "spatial_dims": 1}, "spatial_dims"),
        ({"type": "unet_generator", "num_downs": 1}, "num_downs"),
        ({"type": "srresnet", "scale": 5}, "scale"),
        ({"type": "dcgan_generator", "img_size": 48}, "img_size"),
        ({"type": "ae_undercomplete", "img_size": 4, "latent_size": 16}, "latent_size"),
        ({"type": "ae_overcomplete", "img_size": 4, "latent_size": 16}, "latent_size"),
        ({"type": "redcnn", "in_channels": 2}, "in_channels"),
        ({"type": "ae_conv", "channels": [4, 8], "strides": [2]}, "strides"),
        ({"type": "vae", "act": "FOO"}, "FOO"),
    ],
)
def test_build_net_bad_value_names_parameter(cfg: dict, param: str) -> None:
    with pytest.raises(ValueError, match=param):
        build_net(cfg)


def test_build_net_does_not_mutate_config() -> None:
    cfg = {"type": "ae_conv", "channels": [4, 8], "strides": [2, 2]}
    before = copy.deepcopy(cfg)
    build_net(cfg)
    assert cfg == before


def test_build_net_needs_type() -> None:
    with pytest.raises(ConfigError, match="type"):
        build_net({"spatial_dims": 2})


# image-to-image nets: (config, size multiple, minimum size, output scale)
ANY_SIZE = {
    "resnet_generator": ({"feature_size": 2, "num_res_blocks": 1}, 4, 8, 1),
    "unet_generator": ({"feature_size": 2, "num_downs": 3}, 8, 8, 1),
    "redcnn": ({"feature_size": 2}, 1, 21, 1),
    "rescnn_lite": ({"feature_size": 2, "num_layers": 3}, 1, 3, 1),
    "resunet": ({"channels": [2, 4, 8]}, 4, 4, 1),
    "nafnet": ({"channels": [2, 4, 8]}, 4, 4, 1),
    "srresnet": ({"feature_size": 2, "num_res_blocks": 1, "scale": 2}, 1, 3, 2),
    "ae_conv": ({"channels": [2, 4], "strides": [2, 2]}, 4, 8, 1),  # instance norm needs a bottleneck > 1 px
    "dae": ({"channels": [2, 4], "strides": [2, 2]}, 4, 8, 1),
}


@pytest.mark.parametrize("name", sorted(ANY_SIZE))
def test_image_to_image_nets_keep_any_valid_non_square_size(name: str) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    cfg, multiple, minimum, scale = ANY_SIZE[name]
    net = build_net({"type": name, **cfg}).eval()
    side = st.integers(0, 3).map(lambda k: max(minimum + (-minimum) % multiple, multiple) + k * multiple)

    @settings(max_examples=4, deadline=None)
    @given(h=side, w=side)
    def check(h: int, w: int) -> None:
        with torch.no_grad():
            out = net(torch.randn(1, 1, h, w))
        assert out.shape == (1, 1, h * scale, w * scale)

    check()


def test_every_registered_net_has_a_row_in_the_docs() -> None:
    from pathlib import Path

    from medgan.nets import NETS

    text = (Path(__file__).parents[2] / "docs" / "nets.md").read_text(encoding="utf-8")
    assert [name for name in NETS.names() if f"| `{name}` |" not in text] == []
