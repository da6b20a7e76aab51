"""Networks by name: ``build_net({"type": "resnet_generator", "spatial_dims": 2, ...})``.

Every entry takes MONAI-style argument names (``spatial_dims``, ``in_channels``, ``out_channels``,
``channels`` ...). See ``docs/nets.md`` for each name's arguments and the paper it follows.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from medgan.nets._kwargs import RENAMED_NET_ARGUMENTS, rename_old_arguments
from medgan.nets.autoencoders import (
    VAE,
    DenoisingAutoEncoder,
    MLPAutoEncoder,
    ae_conv,
    ae_deep,
    ae_overcomplete,
    ae_sparse,
    ae_undercomplete,
)
from medgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator, MinibatchStd
from medgan.nets.ema import EMA
from medgan.nets.image_pool import ImagePool
from medgan.nets.nafnet import NAFNet
from medgan.nets.patchgan import PatchDiscriminator, PixelDiscriminator
from medgan.nets.redcnn import REDCNN, ResCNNLite
from medgan.nets.resnet_generator import ResnetGenerator
from medgan.nets.restorer import AnomalyRestorer
from medgan.nets.resunet import ResUNet
from medgan.nets.srgan_discriminator import SRGANDiscriminator
from medgan.nets.srresnet import SRResNet
from medgan.nets.unet_generator import UnetGenerator
from medgan.nets.weight_init import init_weights
from medgan.registry import Registry

NETS = Registry("nets", noun="net", renamed=RENAMED_NET_ARGUMENTS)
_D = {"role": "discriminator"}
for _name, (_factory, _tags) in {
    # autoencoders
    "ae_undercomplete": (ae_undercomplete, {}),
    "ae_overcomplete": (ae_overcomplete, {}),
    "ae_sparse": (ae_sparse, {}),
    "ae_deep": (ae_deep, {}),
    "ae_conv": (ae_conv, {}),
    "dae": (DenoisingAutoEncoder, {}),
    "vae": (VAE, {"samples": "vae"}),  # medgan-sample decodes latent vectors
    # denoisers
    "redcnn": (REDCNN, {}),
    "rescnn_lite": (ResCNNLite, {}),
    "resunet": (ResUNet, {}),
    "nafnet": (NAFNet, {}),
    "anomaly_restorer": (AnomalyRestorer, {}),
    # generators; size_argument: the argument that sets what input sizes fit (named in the config error)
    "resnet_generator": (ResnetGenerator, {}),
    "unet_generator": (UnetGenerator, {"size_argument": "num_downs"}),
    "srresnet": (SRResNet, {"size_argument": "scale"}),
    # a noise vector (and a label) -> an image: medgan-sample calls net(z, labels), medgan-infer has nothing to feed
    "dcgan_generator": (DCGANGenerator, {"input": "noise", "samples": "gan"}),
    # discriminators
    "patchgan": (PatchDiscriminator, {**_D, "size_argument": "num_layers"}),
    "pixelgan": (PixelDiscriminator, _D),
    "srgan_discriminator": (SRGANDiscriminator, {**_D, "size_argument": "feature_size"}),
    "dcgan_discriminator": (DCGANDiscriminator, _D),
}.items():
    NETS.register(_name, **_tags)(_factory)

DISCRIMINATORS = tuple(NETS.names(role="discriminator"))


def build_net(cfg: dict[str, Any]) -> nn.Module:
    """Build a net from ``{"type": <registry name>, **kwargs}``; ``cfg`` is not modified.

    Raises:
        KeyError: unknown ``type`` (the message lists the known names).
        ConfigError: (a ``ValueError``) missing ``type``, an unknown or renamed argument (the message
            names the new name), or a bad argument value; the message names the argument.
    """
    return NETS.build(cfg)


def rename_net_config(cfg: Any) -> Any:
    """A stored net config with argument names from before a rename replaced by the current ones (a new
    dict); anything that is not a config of a registered net is returned as it is (building it will say why).
    Model packages are read through this: their weights do not depend on argument names."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("type"), str) or cfg["type"] not in NETS:
        return cfg
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    return {"type": cfg["type"], **rename_old_arguments(NETS.get(cfg["type"]), kwargs)}


__all__ = [
    "NETS", "DISCRIMINATORS", "RENAMED_NET_ARGUMENTS", "build_net", "rename_net_config", "init_weights", "EMA", "ImagePool",
    "MLPAutoEncoder", "DenoisingAutoEncoder", "VAE", "REDCNN", "ResCNNLite", "ResUNet", "NAFNet", "ResnetGenerator",
    "UnetGenerator", "SRResNet", "DCGANGenerator", "DCGANDiscriminator", "MinibatchStd",
    "PatchDiscriminator", "PixelDiscriminator", "SRGANDiscriminator",
]
