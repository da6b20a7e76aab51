import pytest
import torch

from medgan.errors import ModelPackageError
from medgan.inference.loading import check_manifest_for_inference, first_output, in_channels, probe_net
from medgan.nets import build_net
from tests.inference.conftest import registered


@pytest.mark.parametrize("cfg,expected", [
    ({"type": "unet_generator", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "feature_size": 2,
      "num_downs": 3}, (8, (1, 1))),
    ({"type": "srresnet", "spatial_dims": 2, "feature_size": 4, "num_res_blocks": 1, "scale": 2}, (1, (2, 2))),
    ({"type": "rescnn_lite", "spatial_dims": 3, "feature_size": 2, "num_layers": 2}, (1, (1, 1, 1))),
])
def test_probe_finds_size_multiple_and_scale_of_registry_nets(cfg, expected):
    assert probe_net(build_net(cfg).eval(), 1, cfg["spatial_dims"]) == expected


def test_probe_gives_up_with_a_package_error():
    class Shrinks(torch.nn.Module):
        def forward(self, x):
            return x[..., 1:, 1:]

    with pytest.raises(ModelPackageError, match="power of two"):
        probe_net(Shrinks(), 1, 2, limit=4)


def test_first_output_and_channels():
    t = torch.ones(1)
    assert first_output((t, 2, 3)) is t and first_output({"image": t}) is t and first_output([[t]]) is t
    assert in_channels({"input_mode": "2.5d", "context_slices": 2, "nets": {}, "infer_net": "g"}) == 5
    assert in_channels({"input_mode": "2d", "nets": {"g": {"in_channels": 3}}, "infer_net": "g"}) == 3


@pytest.mark.parametrize("bad,match", [
    ({"input_mode": "4d"}, "input_mode"),
    ({"spatial_dims": 3}, "spatial_dims"),
    ({"scale": 0}, "scale"),
    ({"input_mode": "2.5d", "context_slices": 0}, "context_slices"),
    ({"recipe": "dcgan", "nets": {"g": {"type": "dcgan_generator"}}, "infer_net": "g"}, "from noise"),
])
def test_manifest_checks_name_the_key(bad, match):
    manifest = {"spatial_dims": 2, "input_mode": "2d", "scale": 1, "context_slices": 0, **bad}
    with pytest.raises(ModelPackageError, match=match):
        check_manifest_for_inference(manifest, "pkg")


def test_nets_with_buffers_outside_the_state_dict_are_built_normally():
    from medgan.inference import loading

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 1)
            self.register_buffer("gain", torch.full((1,), 3.0), persistent=False)  # not in the package

        def forward(self, x):
            return self.gain * self.conv(x)

    weights = {"conv.weight": torch.ones(1, 1, 1, 1), "conv.bias": torch.zeros(1)}
    manifest = {"nets": {"g": {"type": "scaled"}}, "infer_net": "g", "spatial_dims": 2}
    with registered({"scaled": Scaled}):
        _, net = loading.load_generator((manifest, {f"g.{k}": v for k, v in weights.items()}))
    assert not any(t.is_meta for t in [*net.parameters(), *net.buffers()])
    assert net(torch.ones(1, 1, 2, 2)).eq(3.0).all()
