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
