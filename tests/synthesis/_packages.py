"""Tiny model packages for the synthesis tests: random-weight cGAN / DCGAN / VAE / denoiser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from medgan.nets import build_net
from medgan.package import make_manifest, save_model_package
from medgan.transforms.intensity import HUNormalizer

NORM = HUNormalizer(hu_min=-1024.0, hu_max=1024.0)


def cgan_config(num_classes: int = 2, img_size: int = 16, latent: int = 8) -> dict[str, Any]:
    return {"type": "dcgan_generator", "spatial_dims": 2, "latent_size": latent, "out_channels": 1,
            "feature_size": 8, "img_size": img_size, "num_classes": num_classes}


def save_package(folder: Path, net_cfg: dict[str, Any], recipe: str = "cgan", net: torch.nn.Module | None = None,
                 **extra: Any) -> Path:
    """Save ``net`` (or a freshly built one, seeded) as a package with ``extra`` manifest keys."""
    if net is None:
        torch.manual_seed(0)
        net = build_net(net_cfg)
    manifest = make_manifest(recipe, {"generator": net_cfg}, "generator", int(net_cfg.get("spatial_dims", 2)),
                             NORM.to_config(), patch_size=[net_cfg.get("img_size", 16)] * 2)
    manifest.update(extra)
    state = {f"generator.{k}": v for k, v in net.state_dict().items()}
    return save_model_package(folder, state, manifest)
