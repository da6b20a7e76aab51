"""U-Net generator of Pix2Pix (Isola et al. 2017).

The ``UnetGenerator`` / ``UnetSkipConnectionBlock`` of the authors' pytorch-CycleGAN-and-pix2pix code,
built recursively from the innermost block outwards; with ``num_downs=8``, 64 base channels, batch norm
and 3->3 channels it has the 54.414 M parameters the reference prints. Generalised to 3D and to
``num_downs`` < 5 (the reference needs >= 5) by capping the width multiplier at 8 per level.

MONAI's ``UNet`` / ``BasicUNet`` are different nets (one activation type throughout instead of
LeakyReLU down / ReLU up, no norm-free outermost and innermost downsampling, no tanh, no Pix2Pix dropout
levels), so reproducing the published Pix2Pix model needs this one.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from medgan.nets._layers import (
    NORMS,
    conv,
    conv_bias,
    conv_transpose,
    norm_layer,
    parse_choice,
    parse_float,
    parse_int,
    parse_spatial_dims,
)

NAME = "unet_generator"


class UnetSkipBlock(nn.Module):
    """One level: down (LeakyReLU, conv4 s2, norm) -> ``submodule`` -> up (ReLU, convT4 s2, norm),
    output concatenated with the input on channels (except the outermost level).
    """

    def __init__(
        self,
        spatial_dims: int,
        outer_channels: int,
        inner_channels: int,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        d = spatial_dims
        self.outermost = outermost
        bias = conv_bias(norm)
        in_channels = outer_channels if in_channels is None else in_channels
        down_conv = conv(d)(in_channels, inner_channels, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            up_conv = conv_transpose(d)(inner_channels * 2, outer_channels, kernel_size=4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = conv_transpose(d)(
                inner_channels, outer_channels, kernel_size=4, stride=2, padding=1, bias=bias
            )
            layers = [
                nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, norm_layer(norm, d, outer_channels)
            ]
        else:
            up_conv = conv_transpose(d)(
                inner_channels * 2, outer_channels, kernel_size=4, stride=2, padding=1, bias=bias
            )
            layers = [
                nn.LeakyReLU(0.2, True),
                down_conv,
                norm_layer(norm, d, inner_channels),
                submodule,
                nn.ReLU(True),
                up_conv,
                norm_layer(norm, d, outer_channels),
            ]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The in-place LeakyReLU at the start of self.model activates x itself, so the skip carries the
        # activated input, exactly as in the reference (x is always a fresh conv/norm output here).
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """Pix2Pix U-Net: ``num_downs`` stride-2 levels with skip connections, tanh output.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        num_downs: number of halvings; each spatial size must be divisible by ``2**num_downs``
            (8 for 256² images = the reference ``unet_256``, 7 for ``unet_128``).
        feature_size: base width (the reference's ``ngf``, 64); level widths are ``feature_size * min(2**i, 8)``.
        norm: ``batch`` (Pix2Pix), ``instance`` or ``none``.
        dropout: dropout probability in the inner 8x-width levels (Pix2Pix: 0.5, its only noise source).

    Input ``(B, in_channels, *spatial)`` normalised; output ``(B, out_channels, *spatial)`` in [-1, 1].
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        num_downs: int = 8,
        feature_size: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        d = parse_spatial_dims(spatial_dims, NAME)
        in_channels = parse_int(in_channels, "in_channels", NAME)
        out_channels = parse_int(out_channels, "out_channels", NAME)
        num_downs = parse_int(num_downs, "num_downs", NAME, minimum=2)
        ch = parse_int(feature_size, "feature_size", NAME)
        norm = parse_choice(norm, "norm", NORMS, NAME)
        dropout = parse_float(dropout, "dropout", NAME, 0.0, 1.0)
        self.num_downs = num_downs

        def width(level: int) -> int:  # inner width of level `level` (0 = outermost)
            return ch * min(2**level, 8)

        block = UnetSkipBlock(d, width(num_downs - 2), width(num_downs - 1), innermost=True, norm=norm)
        for level in range(num_downs - 2, 0, -1):
            # the reference puts dropout only in the levels between two 8x-wide levels
            use_dropout = dropout if width(level - 1) == ch * 8 else 0.0
            block = UnetSkipBlock(d, width(level - 1), width(level), submodule=block, norm=norm,
                                  dropout=use_dropout)
        self.model = UnetSkipBlock(
            d, out_channels, ch, in_channels=in_channels, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial)``, tanh range."""
        return self.model(x)
