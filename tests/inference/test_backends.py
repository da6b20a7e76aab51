import pytest
import torch

from medgan.errors import ConfigError
from medgan.inference.backends import TorchBackend, resolve_device


def test_resolve_device_on_a_cpu_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="allowed"):
        resolve_device("mps")


def test_each_torchrun_rank_takes_its_own_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto") == torch.device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")


def test_torch_backend_returns_the_image_of_tuple_outputs():
    class Vae(torch.nn.Module):
        def forward(self, x):
            return 2 * x, x.mean(), x.std()

    out = TorchBackend(Vae(), torch.device("cpu"))(torch.ones(1, 1, 4, 4))
    assert torch.equal(out, torch.full((1, 1, 4, 4), 2.0))


@pytest.mark.parametrize("dims", [2, 3])
def test_torch_backend_runs_conv_nets_channels_last_with_the_same_result(dims):
    from medgan.inference.backends import memory_format
    from medgan.nets import build_net

    torch.manual_seed(0)
    net = build_net({"type": "resunet", "spatial_dims": dims, "channels": [4, 8]}).eval()
    torch.nn.init.normal_(net.tail.weight, std=0.1)  # not the identity, so the layout matters
    x = torch.randn((2, 1) + (8,) * dims)
    with torch.no_grad():
        expected = net(x)
    backend = TorchBackend(net, torch.device("cpu"))
    assert backend.layout is (torch.channels_last if dims == 2 else torch.channels_last_3d)
    assert memory_format(torch.nn.Linear(2, 2)) is None
    with torch.inference_mode():
        out = backend(x)
    assert out.is_contiguous()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    plain = TorchBackend(build_net({"type": "resunet", "channels": [4, 8]}), torch.device("cpu"), channels_last=False)
    assert plain.layout is None


def test_torch_backend_folds_batch_norms_without_changing_the_result():
    from medgan.inference.backends import fold_batch_norms
    from medgan.nets import build_net

    torch.manual_seed(0)
    net = build_net({"type": "rescnn_lite", "feature_size": 8, "num_layers": 4, "norm": "batch"}).eval()
    for m in net.modules():  # trained-looking statistics, so a wrong fold would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        expected = net(x)
    backend = TorchBackend(net, torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backend.net.modules())
    with torch.inference_mode():
        torch.testing.assert_close(backend(x), expected, atol=1e-5, rtol=1e-4)
    training = build_net({"type": "rescnn_lite", "feature_size": 8, "num_layers": 4, "norm": "batch"}).train()
    assert fold_batch_norms(training) == 0  # batch statistics in training mode: nothing to fold


def test_precision_is_resolved_per_device_and_bf16_autocast_stays_close_on_a_cpu():
    from medgan.inference.backends import resolve_precision
    from medgan.nets import build_net

    assert resolve_precision("auto", torch.device("cpu")) == "32"
    assert resolve_precision("auto", torch.device("cuda")) == "16"
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        resolve_precision("16", torch.device("cpu"))
    with pytest.raises(ConfigError, match="allowed"):
        resolve_precision("8", torch.device("cpu"))
    torch.manual_seed(0)
    net = build_net({"type": "resunet", "channels": [4, 8]}).eval()
    torch.nn.init.normal_(net.tail.weight, std=0.1)
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        expected = net(x)
    out = TorchBackend(net, torch.device("cpu"), precision="bf16")(x)
    assert out.dtype == torch.float32
    assert not torch.equal(out, expected)  # autocast really ran in bf16
    torch.testing.assert_close(out, expected, atol=0.05, rtol=0.05)
