"""Small layer factories and argument parsers shared by the nets.

Every net takes ``spatial_dims`` (2 or 3) and picks its conv / norm / padding classes here, so one class
definition serves 2D slices ``(B, C, H, W)`` and 3D volumes ``(B, C, D, H, W)``. The ``parse_*`` helpers
raise :class:`medgan.errors.ConfigError` (a ``ValueError``) naming the parameter, the bad value and what
is allowed, because net arguments come straight from the user's YAML.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks.layers import Conv, Norm, Pad

from medgan.errors import ConfigError

NORMS = ("batch", "instance", "none")
PADDINGS = ("reflect", "replicate", "zero")


def parse_spatial_dims(value: Any, net: str, allowed: Sequence[int] = (2, 3)) -> int:
    """Return ``value`` if it is one of ``allowed`` spatial dims, else raise ``ConfigError``."""
    if isinstance(value, bool) or value not in allowed:
        raise ConfigError(f"net '{net}': spatial_dims={value!r} is not supported; allowed: {list(allowed)}")
    return int(value)


def parse_choice(value: Any, name: str, allowed: Iterable[str], net: str) -> str:
    """Return the lower-cased ``value`` if it is in ``allowed``."""
    allowed = tuple(allowed)
    key = str(value).lower()
    if key not in allowed:
        raise ConfigError(f"net '{net}': {name}={value!r} is not allowed; allowed: {', '.join(allowed)}")
    return key


def parse_int(value: Any, name: str, net: str, minimum: int = 1) -> int:
    """Return ``value`` as int if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"net '{net}': {name}={value!r} must be an integer >= {minimum}")
    return int(value)


def parse_float(value: Any, name: str, net: str, low: float = 0.0, high: float = float("inf")) -> float:
    """Return ``value`` as float if ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"net '{net}': {name}={value!r} must be a number in [{low}, {high}]")
    return float(value)


def parse_size(value: Any, name: str, spatial_dims: int, net: str, minimum: int = 1) -> tuple[int, ...]:
    """Expand an int or a sequence of ``spatial_dims`` ints into a tuple (e.g. ``img_size``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value] * spatial_dims
    if (
        not isinstance(value, Sequence)
        or len(value) != spatial_dims
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)
    ):
        raise ConfigError(
            f"net '{net}': {name}={value!r} must be an int or {spatial_dims} ints, each >= {minimum}"
        )
    return tuple(int(v) for v in value)


def conv(spatial_dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return Conv[Conv.CONV, spatial_dims]


def conv_transpose(spatial_dims: int) -> type[nn.Module]:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return Conv[Conv.CONVTRANS, spatial_dims]


def norm_layer(norm: str, spatial_dims: int, channels: int) -> nn.Module:
    """Normalisation layer as in pytorch-CycleGAN-and-pix2pix ``get_norm_layer``.

    ``batch`` is affine with running statistics; ``instance`` has no affine parameters and no running
    statistics (the reference's settings, which the published parameter counts depend on); ``none`` is an
    identity.
    """
    if norm == "batch":
        return Norm[Norm.BATCH, spatial_dims](channels, affine=True)
    if norm == "instance":
        return Norm[Norm.INSTANCE, spatial_dims](channels, affine=False, track_running_stats=False)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Convs followed by batch norm need no bias (BN's shift replaces it); instance norm has no affine."""
    return norm != "batch"


def pad_layer(padding_type: str, spatial_dims: int, size: int) -> tuple[list[nn.Module], int]:
    """Explicit padding modules and the conv ``padding`` argument for a ``padding_type``.

    Returns:
        ``([pad module], 0)`` for ``reflect``/``replicate``, ``([], size)`` for ``zero``.
    """
    if padding_type == "zero":
        return [], size
    if padding_type == "reflect":
        cls = nn.ReflectionPad2d if spatial_dims == 2 else nn.ReflectionPad3d
    else:
        cls = Pad[Pad.REPLICATIONPAD, spatial_dims]
    return [cls(size)], 0


def centre_channel(x: torch.Tensor, out_channels: int) -> torch.Tensor:
    """The input channels a residual shortcut adds to an output of ``out_channels``.

    With a 2.5D input (``2k+1`` neighbouring slices on channels) and one output channel, the shortcut is
    the centre slice; with equal channel counts it is the input itself.
    """
    in_channels = x.shape[1]
    if in_channels == out_channels:
        return x
    mid = in_channels // 2
    return x[:, mid : mid + 1]


def check_residual_channels(in_channels: int, out_channels: int, net: str) -> None:
    """A global residual needs equal channels, or one output channel from an odd (2.5D) input stack."""
    if in_channels != out_channels and not (out_channels == 1 and in_channels % 2 == 1):
        raise ConfigError(
            f"net '{net}': residual learning needs out_channels == in_channels or out_channels=1 with an odd "
            f"in_channels (2.5D centre slice); got in_channels={in_channels}, out_channels={out_channels}"
        )
