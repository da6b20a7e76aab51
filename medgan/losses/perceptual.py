"""Perceptual (feature-space) loss from a **local** weights file; never downloads.

MONAI's ``PerceptualLoss`` fetches its nets through ``torch.hub`` (MedicalNet, RadImageNet; offline
only from a pre-filled hub cache, otherwise it downloads) or needs ``lpips``/torchvision (not importable
here). This module builds the same feature nets itself and loads the user's file:

- ``vgg16`` / ``vgg19`` (2D; Simonyan & Zisserman 2015): the torchvision layout, so the state dict of
  torchvision's ImageNet VGG (``features.<i>.weight`` keys; the classifier is ignored) loads as is.
  CT in [-1, 1] is mapped to [0, 1], repeated to RGB and ImageNet-standardised. SRGAN's "VGG54" is
  ``network="vgg19", layers=["relu5_4"]``. 3D input is scored slice by slice along the last axis (axial
  slices in medgan's (X, Y, Z) layout).
- ``medicalnet_resnet10|18|34|50`` (3D; Chen et al. 2019): MONAI's ``ResNet`` with MedicalNet's
  shortcut settings, so a MedicalNet checkpoint (``{"state_dict": {"module.conv1.weight": ...}}``) loads.
  Each volume is z-scored as MedicalNet was trained.

Weights: a state dict saved with ``torch.save`` (read with ``torch.load(weights_only=True)``) or a
``.safetensors`` file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
from monai.losses.perceptual import normalize_tensor

from medgan.errors import ConfigError, InputError, MissingFileError

_VGG_CFGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
_DEFAULT_LAYERS = {"vgg16": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"], "vgg19": ["relu5_4"]}
_MEDICALNET = ("medicalnet_resnet10", "medicalnet_resnet18", "medicalnet_resnet34", "medicalnet_resnet50")
NETWORKS = (*_VGG_CFGS, *_MEDICALNET)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file (``weights_only=True``), unwrap a
    ``{"state_dict": ...}`` checkpoint and strip DataParallel's ``module.`` prefix.

    Raises:
        MissingFileError: the file does not exist.
        InputError: the file holds no tensor dict.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"perceptual loss weights_path: file not found: {path} (medgan never downloads "
                               "weights; save the feature net's state dict there)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle errors of every kind: the file is not a plain state dict
            raise InputError(f"perceptual loss weights_path {path}: not a readable state dict ({err})") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"perceptual loss weights_path {path}: expected a dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


class VGGFeatures(nn.Module):
    """torchvision-compatible VGG ``features`` stack returning the activations at named ReLUs."""

    def __init__(self, network: str, layers: Sequence[str]) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        names: dict[str, int] = {}
        block, conv_idx, prev = 1, 1, 3
        for v in _VGG_CFGS[network]:
            if v == "M":
                modules.append(nn.MaxPool2d(2, 2))
                block, conv_idx = block + 1, 1
            else:
                modules += [nn.Conv2d(prev, v, 3, padding=1), nn.ReLU(inplace=False)]
                names[f"relu{block}_{conv_idx}"] = len(modules) - 1
                conv_idx, prev = conv_idx + 1, v
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ConfigError(f"loss 'perceptual': layers {unknown} not in {network}; allowed: {', '.join(names)}")
        self.taps = sorted(names[n] for n in layers)
        self.features = nn.Sequential(*modules[: self.taps[-1] + 1])  # no need to run past the last tap
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, H, W)`` in [-1, 1] -> activations at the chosen layers."""
        x = x.mean(1, keepdim=True) if x.shape[1] != 1 else x  # a 2.5D stack or RGB -> one grey channel
        x = ((x + 1) / 2).repeat(1, 3, 1, 1)
        x = (x - self.mean) / self.std
        out = []
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self.taps:
                out.append(x)
        return out


class MedicalNetFeatures(nn.Module):
    """MONAI ``ResNet`` in MedicalNet's configuration, returning the outputs of ``layers``."""

    def __init__(self, network: str, layers: Sequence[str]) -> None:
        super().__init__()
        from monai.networks.nets import resnet
        from monai.networks.nets.resnet import get_medicalnet_pretrained_resnet_args

        depth = int(network.removeprefix("medicalnet_resnet"))
        bias_downsample, shortcut_type = get_medicalnet_pretrained_resnet_args(depth)
        self.net = getattr(resnet, f"resnet{depth}")(
            spatial_dims=3, n_input_channels=1, feed_forward=False, shortcut_type=shortcut_type,
            bias_downsample=bias_downsample,
        )
        allowed = ("layer1", "layer2", "layer3", "layer4")
        unknown = [n for n in layers if n not in allowed]
        if unknown:
            raise ConfigError(f"loss 'perceptual': layers {unknown} not in {network}; allowed: {', '.join(allowed)}")
        self.layers = list(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, D, H, W)`` -> activations of the chosen residual stages."""
        x = x.mean(1, keepdim=True) if x.shape[1] != 1 else x
        dims = tuple(range(1, x.dim()))
        x = (x - x.mean(dims, keepdim=True)) / (x.std(dims, keepdim=True) + 1e-6)
        net = self.net
        x = net.act(net.bn1(net.conv1(x)))
        if not net.no_max_pool:
            x = net.maxpool(x)
        out = []
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(net, name)(x)
            if name in self.layers:
                out.append(x)
            if len(out) == len(self.layers):
                break
        return out


class PerceptualLoss(nn.Module):
    """Distance between frozen-net features of prediction and target.

    Args:
        weights_path: local weights file of the feature net (required; see the module docstring).
        network: ``vgg16``, ``vgg19`` (2D) or ``medicalnet_resnet10|18|34|50`` (3D).
        layers: feature layers (``relu<block>_<conv>`` for VGG, ``layer1``..``layer4`` for MedicalNet);
            default: VGG16 relu1_2..relu4_3, VGG19 relu5_4, MedicalNet layer1..layer4.
        distance: ``l1``, ``l2``, or ``lpips`` (channel-unit-normalised features, squared distance summed
            over channels, as LPIPS without its learned weights).
        weight: factor on the loss.

    ``forward(pred, target)``: ``(B, C, H, W)`` or ``(B, C, D, H, W)`` normalised to [-1, 1]; the mean
    over layers of the per-layer distance.
    """

    def __init__(
        self,
        weights_path: str | os.PathLike,
        network: str = "vgg16",
        layers: Sequence[str] | None = None,
        distance: str = "l1",
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        if network not in NETWORKS:
            raise ConfigError(f"loss 'perceptual': network={network!r} is not allowed; allowed: {', '.join(NETWORKS)}")
        if distance not in ("l1", "l2", "lpips"):
            raise ConfigError(f"loss 'perceptual': distance={distance!r} is not allowed; allowed: l1, l2, lpips")
        state = load_state_dict_file(weights_path)
        self.network, self.distance, self.weight = network, distance, float(weight)
        if network in _VGG_CFGS:
            self.features: nn.Module = VGGFeatures(network, layers or _DEFAULT_LAYERS[network])
        else:
            self.features = MedicalNetFeatures(network, layers or ["layer1", "layer2", "layer3", "layer4"])
        target = self.features.features if network in _VGG_CFGS else self.features.net
        prefix = "features." if network in _VGG_CFGS else ""
        wanted = target.state_dict()
        picked = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix) and
                  k.removeprefix(prefix) in wanted}
        missing = sorted(set(wanted) - set(picked))
        if missing:
            raise InputError(f"perceptual loss weights_path {weights_path}: not {network} weights; "
                             f"missing {len(missing)} tensors, e.g. {prefix}{missing[0]}")
        try:
            target.load_state_dict(picked)
        except RuntimeError as err:  # shape mismatch: another variant of the net
            raise InputError(f"perceptual loss weights_path {weights_path}: does not fit {network}: {err}") from err
        self.features.requires_grad_(False)
        self.features.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        """The feature net stays in eval mode (frozen BN statistics) whatever the owner's mode."""
        super().train(mode)
        self.features.eval()
        return self

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.network in _VGG_CFGS and x.dim() == 5:
            # 2D net on a volume: score every slice along the last axis
            b, c, d, h, w = x.shape
            x = x.permute(0, 4, 1, 2, 3).reshape(b * w, c, d, h)
        elif self.network in _MEDICALNET and x.dim() != 5:
            raise ValueError(f"perceptual loss {self.network} needs 3D input (B, C, D, H, W); got {tuple(x.shape)}")
        return self.features(x)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        terms = []
        for f_pred, f_target in zip(self._features(pred), self._features(target.detach())):
            if self.distance == "lpips":
                diff = (normalize_tensor(f_pred) - normalize_tensor(f_target)) ** 2
                terms.append(diff.sum(1).mean())
            elif self.distance == "l2":
                terms.append(torch.nn.functional.mse_loss(f_pred, f_target))
            else:
                terms.append(torch.nn.functional.l1_loss(f_pred, f_target))
        return self.weight * torch.stack(terms).mean()
