"""Perceptual loss from a local weights file (created here), never a download."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medgan.errors import InputError, MissingFileError
from medgan.losses import build_loss
from medgan.losses.perceptual import MedicalNetFeatures, VGGFeatures, load_state_dict_file


def _vgg_weights(tmp_path: Path, suffix: str = ".pth") -> Path:
    """A torchvision-layout VGG16 state dict up to relu2_2 (all the loss loads for that layer)."""
    torch.manual_seed(0)
    feats = VGGFeatures("vgg16", ["relu2_2"]).features
    state = {f"features.{k}": v for k, v in feats.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored, as in torchvision's full file
    path = tmp_path / f"vgg16{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_vgg_perceptual_from_local_file(tmp_path: Path, suffix: str) -> None:
    path = _vgg_weights(tmp_path, suffix)
    loss = build_loss({"type": "perceptual", "weights_path": str(path), "layers": ["relu1_2", "relu2_2"]})
    # the file's weights were loaded, not a fresh init
    assert torch.equal(loss.features.features[0].weight, load_state_dict_file(path)["features.0.weight"])
    target = torch.rand(2, 1, 32, 32) * 2 - 1
    pred = (target + 0.3 * torch.randn_like(target)).requires_grad_(True)
    assert loss(target, target).item() == 0.0
    value = loss(pred, target)
    assert value.item() > 0
    value.backward()
    assert pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())  # the feature net is frozen
    loss.train()
    assert not loss.features.training


def test_vgg_perceptual_on_volume_scores_slices(tmp_path: Path) -> None:
    loss = build_loss({"type": "perceptual", "weights_path": str(_vgg_weights(tmp_path)),
                       "layers": ["relu2_2"], "distance": "lpips"})
    vol = torch.rand(1, 1, 16, 16, 4) * 2 - 1
    assert loss(vol, vol).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(vol, torch.flip(vol, dims=[2])).item() > 0


def test_missing_weights_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(MissingFileError, match="nope.pth"):
        build_loss({"type": "perceptual", "weights_path": str(missing)})


def test_wrong_weights_file_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(InputError, match="not vgg16 weights"):
        build_loss({"type": "perceptual", "weights_path": str(path)})
    pickled = tmp_path / "pickled.pth"
    torch.save({"net": torch.nn.Linear(1, 1)}, pickled)  # a module: refused by weights_only
    with pytest.raises(InputError, match="pickled.pth"):
        build_loss({"type": "perceptual", "weights_path": str(pickled)})


def test_medicalnet_checkpoint_layout_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = MedicalNetFeatures("medicalnet_resnet10", ["layer1"]).net
    path = tmp_path / "resnet_10_23dataset.pth"
    # MedicalNet ships {"state_dict": {"module.<key>": ...}} from DataParallel
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    loss = build_loss({"type": "perceptual", "weights_path": str(path), "network": "medicalnet_resnet10",
                       "layers": ["layer1", "layer2"]})
    assert torch.equal(loss.features.net.conv1.weight, net.conv1.weight)
    a, b = torch.randn(1, 1, 16, 16, 16), torch.randn(1, 1, 16, 16, 16)
    assert loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(a, b).item() > 0
    with pytest.raises(ValueError, match="3D"):
        loss(a[..., 0], b[..., 0])
