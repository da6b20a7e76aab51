"""The noise-level guard of the residual denoisers: noise of the measured level passes, anatomy the net
mistook for noise on a nearly clean input is shrunk, and the guard is in the exported ONNX graph."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from medgan.errors import ConfigError
from medgan.nets import build_net
from medgan.nets.noise_guard import guard_residual, noise_level_channel, noise_sigma_hu

HU_WINDOW = (-1024.0, 3071.0)
HALF = (HU_WINDOW[1] - HU_WINDOW[0]) / 2


def to_norm(hu: torch.Tensor) -> torch.Tensor:
    return (hu - HU_WINDOW[0]) / HALF - 1.0


def tissue(sigma: float, size: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 40 HU soft-tissue slice with white noise of ``sigma`` HU: ``(hu (1, 1, H, W), noise)``."""
    g = torch.Generator().manual_seed(seed)
    noise = sigma * torch.randn(1, 1, size, size, generator=g)
    return 40.0 + noise, noise


def test_sigma_is_measured_on_soft_tissue_and_missing_without_it() -> None:
    hu, _ = tissue(20.0)
    assert noise_sigma_hu(hu[:, 0]).item() == pytest.approx(20.0, rel=0.1)
    air = torch.full((1, 64, 64), -1000.0) + 5.0 * torch.randn(1, 64, 64)
    assert torch.isinf(noise_sigma_hu(air)).all()  # nothing to measure on: the guard leaves the net alone


def test_a_residual_that_is_the_noise_passes_and_anatomy_on_a_clean_input_is_shrunk() -> None:
    hu, noise = tissue(20.0)
    kept = guard_residual(to_norm(hu), noise / HALF, 1.0, HU_WINDOW) * HALF
    assert kept.pow(2).mean().sqrt() > 0.9 * noise.pow(2).mean().sqrt()
    # a nearly clean input (2 HU) from which a net would remove 30 HU of "noise" (anatomy)
    clean, small = tissue(2.0, seed=1)
    wrong = 30.0 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    removed = guard_residual(to_norm(clean), (small + wrong) / HALF, 1.0, HU_WINDOW) * HALF
    error_before = small.pow(2).mean().sqrt()
    error_after = (small - removed).pow(2).mean().sqrt()
    assert removed.pow(2).mean().sqrt() < 2.5  # at most about the input's own noise is removed
    assert error_after < 1.05 * error_before  # unguarded: about 30 HU


def test_guarded_net_in_eval_only_and_the_onnx_graph_agrees() -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = build_net({"type": "resunet", "channels": [4, 8], "noise_guard": 1.0})
    torch.nn.init.normal_(net.tail.weight, std=0.05)  # an "over-eager" net removing hundreds of HU
    hu, _ = tissue(3.0, size=64)
    x = to_norm(hu)
    net.train()
    with torch.no_grad():
        unguarded = net(x)  # training sees the net's own output
        net.eval()
        guarded = net(x)
    assert ((x - unguarded) * HALF).pow(2).mean().sqrt() > 50.0
    assert ((x - guarded) * HALF).pow(2).mean().sqrt() < 4.0
    buf = io.BytesIO()
    torch.onnx.export(net, (x,), buf, input_names=["image"], dynamic_axes={"image": {0: "b", 2: "h", 3: "w"}},
                      dynamo=False, opset_version=17)
    other, _ = tissue(3.0, size=80, seed=3)  # another size: the sigma is computed in the graph, not baked in
    got = onnxruntime.InferenceSession(buf.getvalue()).run(None, {"image": to_norm(other).numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(to_norm(other)).numpy(), atol=1e-5)


@pytest.mark.parametrize("bad", [{"noise_guard": -1.0}, {"noise_guard": 1.0, "spatial_dims": 3},
                                 {"hu_window": [100, -100]}])
def test_bad_guard_settings_are_config_errors(bad: dict) -> None:
    with pytest.raises(ConfigError):
        build_net({"type": "nafnet", "channels": [4, 8], **bad})


def test_noise_level_channel_tells_clean_from_noisy_and_is_in_the_onnx_graph() -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    clean, noisy = to_norm(tissue(2.0, size=64)[0]), to_norm(tissue(40.0, size=64, seed=1)[0])
    air = to_norm(torch.full((1, 1, 64, 64), -1000.0))
    level = noise_level_channel(torch.cat([clean, noisy, air]), HU_WINDOW)
    assert level.shape == (3, 1, 64, 64) and bool((level == level[:, :, :1, :1]).all())  # constant per slice
    assert level[0, 0, 0, 0].item() == pytest.approx(1 / 8, abs=0.03)  # log2(2 HU) / 8
    assert level[1, 0, 0, 0].item() == pytest.approx(np.log2(40) / 8, abs=0.03)
    assert level[2, 0, 0, 0].item() == -1.0  # no soft tissue: "unknown", apart from every measured level
    torch.manual_seed(0)
    net = build_net({"type": "resunet", "channels": [4, 8], "noise_level_input": True}).eval()
    assert net.head[0].in_channels == 2
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    with torch.no_grad():
        a = net(clean)
        net.head[0].weight[:, 1] = 0.0  # the same net blind to the level channel gives another output
        assert not torch.allclose(a, net(clean))
        torch.nn.init.normal_(net.head[0].weight[:, 1:], std=0.5)
    buf = io.BytesIO()
    torch.onnx.export(net, (noisy,), buf, input_names=["image"], dynamic_axes={"image": {0: "b", 2: "h", 3: "w"}},
                      dynamo=False, opset_version=17)
    other = torch.cat([clean, noisy])
    got = onnxruntime.InferenceSession(buf.getvalue()).run(None, {"image": other.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(other).numpy(), atol=1e-5)


def test_noise_level_input_is_2d_only_and_a_bool() -> None:
    with pytest.raises(ConfigError, match="noise_level_input"):
        build_net({"type": "resunet", "channels": [4, 8], "noise_level_input": True, "spatial_dims": 3})
    with pytest.raises(ConfigError, match="noise_level_input"):
        build_net({"type": "resunet", "channels": [4, 8], "noise_level_input": "yes"})
