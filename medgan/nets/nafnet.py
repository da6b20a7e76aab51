"""NAFNet-style denoiser (Chen et al., ECCV 2022, "Simple Baselines for Image Restoration"), light and
for 2D or 3D.

Each block: channel LayerNorm -> 1x1 conv to 2c -> depthwise 3x3 -> SimpleGate (halves channels by a
product) -> 1x1 conv, added with a learnt per-channel scale that starts at zero; then the same with a
gated 1x1 feed-forward. No activation functions. Strided 2x2 convs go down, 1x1 conv + pixel shuffle (2D)
or a 2x2 transposed conv (3D) come up, encoder features are added. The paper's simplified channel
attention pools over the whole image, which differs between training patches and whole-slice inference;
it is off by default (``attention=True`` turns it on). The net predicts the noise: output = input - noise,
and an untrained net is the identity (the last conv and every block scale start at zero).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from medgan.nets._layers import conv, conv_transpose, parse_int
from medgan.nets.resunet import UShapedDenoiser


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each voxel of ``(B, C, *spatial)`` (NAFNet's ``LayerNorm2d``)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """Split the channels in two halves and multiply them (NAFNet's nonlinearity)."""
    a, b = x.chunk(2, dim=1)
    return a * b


class NAFBlock(nn.Module):
    """One NAFNet block on ``channels`` features."""

    def __init__(self, spatial_dims: int, channels: int, attention: bool = False) -> None:
        super().__init__()
        d, c = spatial_dims, channels
        self.norm1 = ChannelLayerNorm(c)
        self.expand = conv(d)(c, 2 * c, kernel_size=1)
        self.depthwise = conv(d)(2 * c, 2 * c, kernel_size=3, padding=1, groups=2 * c)
        pool = nn.AdaptiveAvgPool2d(1) if d == 2 else nn.AdaptiveAvgPool3d(1)
        self.attention = nn.Sequential(pool, conv(d)(c, c, kernel_size=1)) if attention else None
        self.project = conv(d)(c, c, kernel_size=1)
        self.norm2 = ChannelLayerNorm(c)
        self.ffn_in = conv(d)(c, 2 * c, kernel_size=1)
        self.ffn_out = conv(d)(c, c, kernel_size=1)
        shape = (1, c) + (1,) * d
        self.beta = nn.Parameter(torch.zeros(shape))
        self.gamma = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = simple_gate(self.depthwise(self.expand(self.norm1(x))))
        if self.attention is not None:
            y = y * self.attention(y)
        x = x + self.beta * self.project(y)
        y = self.ffn_out(simple_gate(self.ffn_in(self.norm2(x))))
        return x + self.gamma * y


class NAFNet(UShapedDenoiser):
    """NAFNet-style U-shaped denoiser predicting the noise.

    Args:
        spatial_dims: 2 or 3.
        in_channels: 1, or ``2k+1`` for a 2.5D stack (the centre slice is denoised).
        out_channels: 1 or ``in_channels``.
        channels: features per level, e.g. ``(16, 32, 64)`` (sizes are padded to multiples of 2**(levels-1)).
        num_res_blocks: NAF blocks per level on the way down and up.
        num_middle_blocks: NAF blocks at the lowest resolution.
        attention: the paper's simplified channel attention (global pooling; off by default).
        noise_guard, hu_window, tissue_gate: the noise-level guard at inference and the tissue gate, as
            :class:`medgan.nets.resunet.ResUNet`.

    Input ``(B, in_channels, *spatial)`` normalised; output ``(B, out_channels, *spatial)``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64),
        num_res_blocks: int = 1,
        num_middle_blocks: int = 1,
        attention: bool = False,
        noise_guard: float = 0.0,
        hu_window: Sequence[float] = (-1024.0, 3071.0),
        tissue_gate: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        d, in_channels, ch, blocks = self._parse("nafnet", spatial_dims, in_channels, out_channels, channels,
                                                 num_res_blocks)
        self.set_guard(noise_guard, hu_window, d, "nafnet", tissue_gate)
        num_middle_blocks = parse_int(num_middle_blocks, "num_middle_blocks", "nafnet", minimum=0)
        attention = bool(attention)
        self.head = conv(d)(in_channels, ch[0], kernel_size=3, padding=1)
        self.encoders = nn.ModuleList(
            [nn.Sequential(*[NAFBlock(d, c, attention) for _ in range(blocks)]) for c in ch[:-1]]
        )
        self.downs = nn.ModuleList([conv(d)(a, b, kernel_size=2, stride=2) for a, b in zip(ch[:-1], ch[1:])])
        self.middle = nn.Sequential(*[NAFBlock(d, ch[-1], attention) for _ in range(num_middle_blocks)])
        if d == 2:
            self.ups = nn.ModuleList(
                [nn.Sequential(conv(d)(b, 4 * a, kernel_size=1, bias=False), nn.PixelShuffle(2))
                 for a, b in zip(ch[:-1], ch[1:])]
            )
        else:  # pixel shuffle is 2D only
            self.ups = nn.ModuleList(
                [conv_transpose(d)(b, a, kernel_size=2, stride=2) for a, b in zip(ch[:-1], ch[1:])]
            )
        self.decoders = nn.ModuleList(
            [nn.Sequential(*[NAFBlock(d, c, attention) for _ in range(blocks)]) for c in ch[:-1]]
        )
        self.tail = conv(d)(ch[0], self.out_channels, kernel_size=3, padding=1)
        self.zero_tail()
