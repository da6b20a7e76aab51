"""A light residual U-Net denoiser: the net predicts the noise, the output is the input minus it.

Strided-conv downsampling lets a few cheap layers see a wide neighbourhood (CT noise after filtered
back-projection is correlated over several pixels, streaks over many), so the cost per pixel stays small:
with ``channels=(16, 32, 64)`` about 25 k multiply-adds per pixel against 56 k for ``rescnn_lite`` and 1.1 M
for RED-CNN. The last convolution starts at zero, so an untrained net returns its input unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from medgan.nets._layers import (
    centre_channel,
    check_residual_channels,
    conv,
    conv_transpose,
    parse_int,
    parse_spatial_dims,
)
from medgan.nets.noise_guard import guard_residual, noise_level_channel, source_sigma_hu, tissue_gate


def parse_channels(value: object, net: str) -> tuple[int, ...]:
    """Channels per level as a tuple of positive ints (at least one level)."""
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or not value
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in value)
    ):
        from medgan.errors import ConfigError

        raise ConfigError(f"net '{net}': channels={value!r} must be a list of positive integers, one per level")
    return tuple(int(c) for c in value)


class ResBlock(nn.Module):
    """conv3-ReLU-conv3 plus the block input (He et al. 2016, without normalisation)."""

    def __init__(self, spatial_dims: int, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(spatial_dims)(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            conv(spatial_dims)(channels, channels, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UShapedDenoiser(nn.Module):
    """The U-shaped noise predictor both light denoisers share; subclasses fill the stages.

    ``head`` -> per level: ``encoders[i]``, keep a skip, ``downs[i]`` -> ``middle`` -> per level upwards:
    ``ups[i]``, add the skip, ``decoders[i]`` -> ``tail``; the result is subtracted from the (centre) input.
    """

    out_channels: int
    noise_guard: float = 0.0
    hu_window: tuple[float, float] = (-1024.0, 3071.0)
    tissue_gate: tuple[float, float] | None = None
    noise_level_input: bool = False
    head: nn.Module
    encoders: nn.ModuleList
    downs: nn.ModuleList
    middle: nn.Module
    ups: nn.ModuleList
    decoders: nn.ModuleList
    tail: nn.Module

    def _parse(self, name: str, spatial_dims: int, in_channels: int, out_channels: int, channels: Sequence[int],
               num_res_blocks: int) -> tuple[int, int, tuple[int, ...], int]:
        """Check the shared arguments; sets ``out_channels``, returns ``(dims, in_channels, channels, num_res_blocks)``."""
        d = parse_spatial_dims(spatial_dims, name)
        in_channels = parse_int(in_channels, "in_channels", name)
        self.out_channels = parse_int(out_channels, "out_channels", name)
        check_residual_channels(in_channels, self.out_channels, name)
        return d, in_channels, parse_channels(channels, name), parse_int(num_res_blocks, "num_res_blocks", name)

    def set_guard(self, noise_guard: float, hu_window: Sequence[float], spatial_dims: int, name: str,
                  tissue_gate: Sequence[float] | None = None) -> None:
        """Store the noise-level guard's and the tissue gate's settings (:mod:`medgan.nets.noise_guard`;
        0 / ``None`` turn them off)."""
        from medgan.errors import ConfigError

        ok = isinstance(noise_guard, (int, float)) and not isinstance(noise_guard, bool) and noise_guard >= 0
        if not ok:
            raise ConfigError(f"net '{name}': noise_guard={noise_guard!r} must be a number >= 0 (0: off)")
        if noise_guard and spatial_dims != 2:
            raise ConfigError(f"net '{name}': noise_guard works on 2D slices; got spatial_dims={spatial_dims}")
        if len(hu_window) != 2 or not float(hu_window[1]) > float(hu_window[0]):
            raise ConfigError(f"net '{name}': hu_window={list(hu_window)!r} must be [low, high] HU, low < high")
        band_ok = tissue_gate is None or (
            isinstance(tissue_gate, Sequence) and not isinstance(tissue_gate, str) and len(tissue_gate) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in tissue_gate)
            and tissue_gate[1] > tissue_gate[0])
        if not band_ok:
            raise ConfigError(f"net '{name}': tissue_gate={tissue_gate!r} must be [low, high] HU, low < high, or null")
        self.noise_guard, self.hu_window = float(noise_guard), (float(hu_window[0]), float(hu_window[1]))
        self.tissue_gate = None if tissue_gate is None else (float(tissue_gate[0]), float(tissue_gate[1]))

    def set_noise_level_input(self, noise_level_input: bool, spatial_dims: int, name: str) -> int:
        """Store whether the net sees its input's measured noise level as an extra channel; returns the
        number of extra input channels (0 or 1)."""
        from medgan.errors import ConfigError

        if not isinstance(noise_level_input, bool):
            raise ConfigError(f"net '{name}': noise_level_input={noise_level_input!r} must be true or false")
        if noise_level_input and spatial_dims != 2:
            raise ConfigError(f"net '{name}': noise_level_input works on 2D slices; got spatial_dims={spatial_dims}")
        self.noise_level_input = noise_level_input
        return int(noise_level_input)

    def zero_tail(self) -> None:
        """Start as the identity (the net predicts zero noise): an untrained net does no harm."""
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial)``: centre input minus predicted noise."""
        sigma, x_in = None, x
        if self.noise_level_input:  # measured once, for the level channel and the guard
            with torch.no_grad():
                sigma = source_sigma_hu(centre_channel(x, 1), self.hu_window)
            x_in = torch.cat([x, noise_level_channel(centre_channel(x, 1), self.hu_window, sigma).to(x.dtype)], 1)
        feats = self.head(x_in)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            feats = encoder(feats)
            skips.append(feats)
            feats = down(feats)
        feats = self.middle(feats)
        for i in reversed(range(len(self.ups))):
            feats = self.decoders[i](self.ups[i](feats) + skips[i])
        centre, noise = centre_channel(x, self.out_channels), self.tail(feats)
        if self.tissue_gate is not None:  # in training too: what the net may change is part of what it learns
            noise = noise * tissue_gate(centre_channel(x, 1), self.hu_window, self.tissue_gate)
        if self.noise_guard and not self.training:
            noise = guard_residual(centre_channel(x, 1), noise, self.noise_guard, self.hu_window, sigma=sigma)
        return centre - noise


class ResUNet(UShapedDenoiser):
    """Residual U-Net for noise prediction (Ronneberger et al. 2015 layout, additive skips, no norms).

    Level ``i`` runs ``num_res_blocks`` residual blocks at ``channels[i]`` features and 1/2**i resolution; a
    stride-2 conv goes down, a stride-2 transposed conv comes up and the encoder features are added.

    Args:
        spatial_dims: 2 or 3.
        in_channels: 1, or ``2k+1`` for a 2.5D stack (the centre slice is denoised).
        out_channels: 1 or ``in_channels``.
        channels: features per level, e.g. ``(16, 32, 64)`` (3 levels: sizes are padded to multiples of 4).
        num_res_blocks: residual blocks per level on the way down and up.
        noise_guard: ``k`` of the noise-level guard applied at inference (:mod:`medgan.nets.noise_guard`):
            the removed noise is shrunk where its local power exceeds ``k**2`` times the input's measured
            noise variance; 0 (default) turns it off. 2D only.
        hu_window: the HU window of the data's normalisation (``data.normalization``), which the guard
            needs to find soft tissue.
        tissue_gate: ``[low, high]`` HU: the net changes only pixels whose input's local mean lies in this
            band (training and inference; :func:`medgan.nets.noise_guard.tissue_gate`); ``None`` (default):
            everywhere.
        noise_level_input: if true, the input's noise sigma, measured per slice the way the guard measures
            it, is an extra input channel (:func:`medgan.nets.noise_guard.noise_level_channel`; training and
            inference, FFDNet-style conditioning without a second input). 2D only.

    Input ``(B, in_channels, *spatial)`` normalised, each spatial size a multiple of ``2**(levels-1)``
    (``medgan-infer`` pads); output ``(B, out_channels, *spatial)`` = centre input - predicted noise.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64),
        num_res_blocks: int = 1,
        noise_guard: float = 0.0,
        hu_window: Sequence[float] = (-1024.0, 3071.0),
        tissue_gate: Sequence[float] | None = None,
        noise_level_input: bool = False,
    ) -> None:
        super().__init__()
        d, in_channels, ch, blocks = self._parse("resunet", spatial_dims, in_channels, out_channels, channels,
                                                 num_res_blocks)
        self.set_guard(noise_guard, hu_window, d, "resunet", tissue_gate)
        extra = self.set_noise_level_input(noise_level_input, d, "resunet")
        self.head = nn.Sequential(conv(d)(in_channels + extra, ch[0], kernel_size=3, padding=1),
                                  nn.ReLU(inplace=True))
        self.encoders = nn.ModuleList(
            [nn.Sequential(*[ResBlock(d, c) for _ in range(blocks)]) for c in ch[:-1]]
        )
        self.downs = nn.ModuleList(
            [nn.Sequential(conv(d)(a, b, kernel_size=2, stride=2), nn.ReLU(inplace=True))
             for a, b in zip(ch[:-1], ch[1:])]
        )
        self.middle = nn.Sequential(*[ResBlock(d, ch[-1]) for _ in range(blocks)])
        self.ups = nn.ModuleList(
            [nn.Sequential(conv_transpose(d)(b, a, kernel_size=2, stride=2), nn.ReLU(inplace=True))
             for a, b in zip(ch[:-1], ch[1:])]
        )
        self.decoders = nn.ModuleList(
            [nn.Sequential(*[ResBlock(d, c) for _ in range(blocks)]) for c in ch[:-1]]
        )
        self.tail = conv(d)(ch[0], self.out_channels, kernel_size=3, padding=1)
        self.zero_tail()
