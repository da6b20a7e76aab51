"""ResNet image-to-image generator of CycleGAN (Zhu et al. 2017, after Johnson et al. 2016).

Layer for layer the ``ResnetGenerator`` of the authors' pytorch-CycleGAN-and-pix2pix code
(``models/networks.py``), so that the 9-block, 64-channel, 3->3 channel net has their 11,378,179
parameters; generalised to 3D by swapping the conv / norm / padding classes.

``residual=True`` turns it into a correction net for denoising: output = input + the net's output, no
tanh, and the last convolution starts at zero, so the untrained generator is exactly the identity and
training moves away from the input only as far as the losses ask. Learning the correction rather than the
image is how CT denoisers are built (RED-CNN's shortcut, DnCNN's noise prediction); the zero start is the
zero-initialised last layer of a residual branch of Goyal et al. 2017 (arXiv:1706.02677) and Fixup
(Zhang, Dauphin and Ma, ICLR 2019).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from medgan.errors import ConfigError
from medgan.nets._layers import (
    NORMS,
    PADDINGS,
    centre_channel,
    check_residual_channels,
    conv,
    conv_bias,
    conv_transpose,
    norm_layer,
    pad_layer,
    parse_choice,
    parse_float,
    parse_int,
    parse_spatial_dims,
)

NAME = "resnet_generator"


class ResnetBlock(nn.Module):
    """pad-conv3-norm-ReLU-(dropout)-pad-conv3-norm, plus the identity."""

    def __init__(self, spatial_dims: int, channels: int, padding_type: str, norm: str, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for second in (False, True):
            pads, p = pad_layer(padding_type, spatial_dims, 1)
            layers += pads
            layers += [
                conv(spatial_dims)(channels, channels, kernel_size=3, padding=p, bias=conv_bias(norm)),
                norm_layer(norm, spatial_dims, channels),
            ]
            if not second:
                layers.append(nn.ReLU(True))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-C, two stride-2 downsamplings, ``num_res_blocks`` residual blocks, two transposed-conv upsamplings,
    c7s1-out, tanh.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (1 for CT; ``2k+1`` for 2.5D stacks).
        out_channels: output channels.
        feature_size: base width (the reference's ``ngf``, 64).
        num_res_blocks: residual blocks at 1/4 resolution (9 for 256² images, 6 for 128²).
        norm: ``instance`` (CycleGAN), ``batch`` or ``none``.
        dropout: dropout probability inside the residual blocks (reference: 0.5 if ``use_dropout``).
        padding_type: ``reflect`` (reference), ``replicate`` or ``zero``.
        residual: add the input (its centre slice for a 2.5D stack) to the output, drop the tanh and
            zero the last convolution, so the untrained net is the identity (default ``False``: the
            reference net).

    Input ``(B, in_channels, *spatial)`` normalised, each spatial size divisible by 4; output
    ``(B, out_channels, *spatial)``: in [-1, 1] (tanh), or unbounded with ``residual``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        feature_size: int = 64,
        num_res_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        padding_type: str = "reflect",
        residual: bool = False,
    ) -> None:
        super().__init__()
        d = parse_spatial_dims(spatial_dims, NAME)
        in_channels = parse_int(in_channels, "in_channels", NAME)
        out_channels = parse_int(out_channels, "out_channels", NAME)
        ch = parse_int(feature_size, "feature_size", NAME)
        num_res_blocks = parse_int(num_res_blocks, "num_res_blocks", NAME, minimum=0)
        norm = parse_choice(norm, "norm", NORMS, NAME)
        dropout = parse_float(dropout, "dropout", NAME, 0.0, 1.0)
        padding_type = parse_choice(padding_type, "padding_type", PADDINGS, NAME)
        if not isinstance(residual, bool):
            raise ConfigError(f"net '{NAME}': residual must be true or false, got {residual!r}")
        if residual:
            check_residual_channels(in_channels, out_channels, NAME)
        self.residual = residual
        self.out_channels = out_channels
        bias = conv_bias(norm)

        pads, p = pad_layer(padding_type, d, 3)
        layers: list[nn.Module] = [
            *pads,
            conv(d)(in_channels, ch, kernel_size=7, padding=p, bias=bias),
            norm_layer(norm, d, ch),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                conv(d)(ch * mult, ch * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                norm_layer(norm, d, ch * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(d, ch * 4, padding_type, norm, dropout) for _ in range(num_res_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                conv_transpose(d)(
                    ch * mult, ch * mult // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                norm_layer(norm, d, ch * mult // 2),
                nn.ReLU(True),
            ]
        pads, p = pad_layer(padding_type, d, 3)
        last = conv(d)(ch, out_channels, kernel_size=7, padding=p)
        layers += [*pads, last]
        if residual:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        else:
            layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial)``: tanh range, or input + correction."""
        if self.residual:
            return centre_channel(x, self.out_channels) + self.model(x)
        return self.model(x)
