"""DCGAN generator and discriminator (Radford et al. 2016), optionally class-conditional (cGAN, Mirza &
Osindero 2014).

Generator: transposed convs (4×4, stride 2) from a 4×4 seed up to ``img_size``, batch norm and ReLU
except a tanh output. Discriminator: strided 4×4 convs down to 4×4, batch norm except on the input
layer, LeakyReLU 0.2, a 4×4 conv to one logit. Conditioning: the generator concatenates a label
embedding to z; the discriminator projects a label embedding to one image-sized channel and concatenates
it. The discriminator can append a minibatch-standard-deviation channel (Karras et al. 2018), which lets
it see a collapsed (too uniform) batch.

MONAI's ``Generator`` / ``Discriminator`` are residual-unit nets with another layout (3×3 kernels, no
DCGAN batch-norm placement), so these two follow the paper instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from medgan.errors import ConfigError
from medgan.nets._layers import conv, conv_transpose, norm_layer, parse_int, parse_spatial_dims


def _parse_img_size(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 8 or value & (value - 1):
        raise ConfigError(f"net '{name}': img_size={value!r} must be a power of two >= 8 (cubic/square images)")
    return int(value)


def _check_labels(labels: torch.Tensor | None, num_classes: int, name: str) -> None:
    if (labels is None) != (num_classes == 0):
        raise ValueError(f"{name}: labels must be given iff num_classes > 0 (num_classes={num_classes})")


class DCGANGenerator(nn.Module):
    """z (and a class label) -> image.

    Args:
        spatial_dims: 2 or 3.
        latent_size: length of z (100 in the paper).
        out_channels: image channels.
        feature_size: width of the last hidden layer (the paper's 128 for 64², commonly 64); it doubles per
            layer towards the 4×4 seed.
        img_size: output side length, a power of two >= 8.
        num_classes: 0 for an unconditional GAN, else the number of labels (cGAN).
        embedding_dim: length of the label embedding concatenated to z (default ``min(latent_size, 50)``,
            which keeps the seed layer small).

    ``forward(z, labels=None)``: z ``(B, latent_size)`` float, labels ``(B,)`` long; returns
    ``(B, out_channels, *[img_size] * spatial_dims)`` in [-1, 1].
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        latent_size: int = 100,
        out_channels: int = 1,
        feature_size: int = 64,
        img_size: int = 64,
        num_classes: int = 0,
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__()
        name = "dcgan_generator"
        d = parse_spatial_dims(spatial_dims, name)
        self.latent_size = parse_int(latent_size, "latent_size", name)
        out_channels = parse_int(out_channels, "out_channels", name)
        ch = parse_int(feature_size, "feature_size", name)
        img_size = _parse_img_size(img_size, name)
        self.num_classes = parse_int(num_classes, "num_classes", name, minimum=0)
        self.spatial_dims = d
        embedding_dim = min(self.latent_size, 50) if embedding_dim is None else embedding_dim
        embedding_dim = parse_int(embedding_dim, "embedding_dim", name)
        self.embedding = nn.Embedding(self.num_classes, embedding_dim) if self.num_classes else None
        n_up = int(math.log2(img_size)) - 2
        width = ch * 2 ** (n_up - 1)
        in_features = self.latent_size + (embedding_dim if self.num_classes else 0)
        layers: list[nn.Module] = [
            conv_transpose(d)(in_features, width, kernel_size=4, stride=1, padding=0, bias=False),
            norm_layer("batch", d, width),
            nn.ReLU(True),
        ]
        for _ in range(n_up - 1):
            layers += [
                conv_transpose(d)(width, width // 2, kernel_size=4, stride=2, padding=1, bias=False),
                norm_layer("batch", d, width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [conv_transpose(d)(width, out_channels, kernel_size=4, stride=2, padding=1), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z ``(B, latent_size)`` [+ labels ``(B,)``] -> image ``(B, C, *img)`` in [-1, 1]."""
        _check_labels(labels, self.num_classes, "dcgan_generator")
        if self.embedding is not None:
            z = torch.cat([z, self.embedding(labels)], dim=1)
        return self.model(z.reshape(*z.shape, *[1] * self.spatial_dims))


class MinibatchStd(nn.Module):
    """Appends one channel: the mean over features of the per-feature std across groups of samples."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = min(self.group_size, b)
        if b % g:
            g = 1
        grouped = x.reshape(g, b // g, *x.shape[1:])
        # eps inside the sqrt keeps the gradient finite when a group is a single sample (std 0)
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt()
        stat = std.flatten(1).mean(dim=1)  # (b // g,)
        stat = stat.repeat(g).reshape(b, 1, *[1] * (x.dim() - 2)).expand(b, 1, *x.shape[2:])
        return torch.cat([x, stat], dim=1)


class DCGANDiscriminator(nn.Module):
    """Image (and class label) -> one logit.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        feature_size: width of the first layer; doubles per halving.
        img_size: input side length, a power of two >= 8.
        num_classes: 0 (unconditional) or the number of labels; the label becomes an extra input channel.
        minibatch_std: append a minibatch-std channel before the last conv.
        spectral_norm: spectral normalisation of every conv (Miyato et al. 2018): bounds D's Lipschitz
            constant, a guard against mode collapse.

    ``forward(x, labels=None, return_features=False)``: x ``(B, C, *[img_size] * spatial_dims)``
    normalised; returns logits ``(B, 1)`` [, list of hidden activations].
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        feature_size: int = 64,
        img_size: int = 64,
        num_classes: int = 0,
        minibatch_std: bool = False,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        name = "dcgan_discriminator"
        d = parse_spatial_dims(spatial_dims, name)
        in_channels = parse_int(in_channels, "in_channels", name)
        ch = parse_int(feature_size, "feature_size", name)
        self.img_size = _parse_img_size(img_size, name)
        self.num_classes = parse_int(num_classes, "num_classes", name, minimum=0)
        self.spatial_dims = d
        self.embedding = nn.Embedding(self.num_classes, self.img_size**d) if self.num_classes else None
        stages: list[nn.Module] = [nn.Sequential(
            conv(d)(in_channels + (1 if self.num_classes else 0), ch, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        )]
        width, size = ch, self.img_size // 2
        while size > 4:
            stages.append(nn.Sequential(
                conv(d)(width, width * 2, kernel_size=4, stride=2, padding=1, bias=False),
                norm_layer("batch", d, width * 2),
                nn.LeakyReLU(0.2, True),
            ))
            width, size = width * 2, size // 2
        self.stages = nn.ModuleList(stages)
        self.mbstd = MinibatchStd() if minibatch_std else nn.Identity()
        self.head = conv(d)(width + (1 if minibatch_std else 0), 1, kernel_size=4, stride=1, padding=0)
        if spectral_norm:
            from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

            for module in [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]:
                apply_spectral_norm(module)

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """x ``(B, C, *img)`` [+ labels ``(B,)``] -> logits ``(B, 1)`` [, hidden activations]."""
        _check_labels(labels, self.num_classes, "dcgan_discriminator")
        if self.embedding is not None:
            label_map = self.embedding(labels).reshape(x.shape[0], 1, *[self.img_size] * self.spatial_dims)
            x = torch.cat([x, label_map], dim=1)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        logits = self.head(self.mbstd(x)).flatten(1)
        return (logits, features) if return_features else logits
