"""The tissue gate of the residual denoisers: outside its HU band (air, lung, bone) the net returns its input
exactly, in training as in inference, inside it the net's residual passes; it is in the exported ONNX graph."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from medgan.errors import ConfigError
from medgan.nets import build_net
from medgan.nets.noise_guard import tissue_gate

HU_WINDOW = (-1024.0, 3071.0)
HALF = (HU_WINDOW[1] - HU_WINDOW[0]) / 2
BAND = (-200.0, 300.0)


def to_norm(hu: torch.Tensor) -> torch.Tensor:
    return (hu - HU_WINDOW[0]) / HALF - 1.0


def phantom(size: int = 64, dims: int = 2, seed: int = 0) -> torch.Tensor:
    """Air, soft tissue (40 HU) and bone (1000 HU) side by side in thirds along the first axis, with 30 HU
    of noise: ``(1, 1, *spatial)`` HU."""
    shape = (1, 1) + (size,) * dims
    hu = torch.full(shape, -1000.0)
    hu[:, :, size // 3: 2 * size // 3] = 40.0
    hu[:, :, 2 * size // 3:] = 1000.0
    return hu + 30.0 * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dims", [2, 3])
def test_gate_is_one_in_the_band_and_zero_outside_despite_the_noise(dims: int) -> None:
    size = 24 if dims == 3 else 64
    gate = tissue_gate(to_norm(phantom(size, dims)), HU_WINDOW, BAND)
    third, margin = size // 3, 3  # the 5-pixel local mean straddles the borders
    assert gate.shape == (1, 1) + (size,) * dims
    assert (gate[:, :, : third - margin] == 0).all()  # air
    assert (gate[:, :, third + margin: 2 * third - margin] == 1).all()  # soft tissue
    assert (gate[:, :, 2 * third + margin:] == 0).all()  # bone


@pytest.mark.parametrize("net_type", ["resunet", "nafnet"])
def test_gated_net_changes_only_the_band_in_training_and_inference(net_type: str) -> None:
    torch.manual_seed(0)
    net = build_net({"type": net_type, "channels": [4, 8], "tissue_gate": list(BAND)})
    torch.nn.init.normal_(net.tail.weight, std=0.05)  # a net that changes everything it sees
    hu = phantom()
    x = to_norm(hu)
    third = hu.shape[2] // 3
    for training in (True, False):
        net.train(training)
        with torch.no_grad():
            change = (net(x) - x) * HALF
        assert (change[:, :, : third - 3] == 0).all() and (change[:, :, 2 * third + 3:] == 0).all()
        assert change[:, :, third + 3: 2 * third - 3].abs().mean() > 1.0
    ungated = build_net({"type": net_type, "channels": [4, 8]})
    ungated.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert ((ungated(x) - x)[:, :, : third - 3] * HALF).abs().mean() > 1.0  # the gate is what kept air


def test_gate_is_in_the_onnx_graph() -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = build_net({"type": "resunet", "channels": [4, 8], "tissue_gate": list(BAND), "noise_guard": 0.7}).eval()
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    buf = io.BytesIO()
    torch.onnx.export(net, (to_norm(phantom()),), buf, input_names=["image"],
                      dynamic_axes={"image": {0: "b", 2: "h", 3: "w"}}, dynamo=False, opset_version=17)
    other = to_norm(phantom(80, seed=3))
    got = onnxruntime.InferenceSession(buf.getvalue()).run(None, {"image": other.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(other).numpy(), atol=1e-5)


@pytest.mark.parametrize("bad", [[300, -200], [100], "soft", 5, ["a", "b"]])
def test_bad_gate_settings_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        build_net({"type": "resunet", "channels": [4, 8], "tissue_gate": bad})
