"""RED-CNN (Chen et al. 2017, "Low-dose CT with a residual encoder-decoder convolutional neural network")
and a lighter residual CNN for CPU work.

RED-CNN: five 5×5 convolutions and five 5×5 transposed convolutions, 96 channels, stride 1, no padding
(each conv shrinks the image by 4, each transposed conv grows it back), ReLU, and three shortcuts: input ->
output, conv2 -> deconv3, conv4 -> deconv1. The paper's final ReLU is dropped by default because medgan's
inputs are normalised to [-1, 1] (a ReLU would clip the negative half); ``final_relu=True`` restores it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from medgan.nets._layers import (
    NORMS,
    centre_channel,
    check_residual_channels,
    conv,
    conv_transpose,
    norm_layer,
    parse_choice,
    parse_int,
    parse_spatial_dims,
)


class REDCNN(nn.Module):
    """Residual encoder-decoder CNN.

    Args:
        spatial_dims: 2 (paper) or 3.
        in_channels: 1, or ``2k+1`` for a 2.5D stack (the input shortcut then adds the centre slice).
        out_channels: 1 or ``in_channels``.
        feature_size: feature maps per layer (96 in the paper).
        kernel_size: 5 in the paper.
        final_relu: apply the paper's ReLU after the last shortcut (only for non-negative inputs).

    Input ``(B, in_channels, *spatial)`` normalised, each spatial size > ``5 * (kernel_size - 1)``;
    output ``(B, out_channels, *spatial)``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        feature_size: int = 96,
        kernel_size: int = 5,
        final_relu: bool = False,
    ) -> None:
        super().__init__()
        name = "redcnn"
        d = parse_spatial_dims(spatial_dims, name)
        in_channels = parse_int(in_channels, "in_channels", name)
        self.out_channels = parse_int(out_channels, "out_channels", name)
        ch = parse_int(feature_size, "feature_size", name)
        k = parse_int(kernel_size, "kernel_size", name)
        check_residual_channels(in_channels, self.out_channels, name)
        self.final_relu = bool(final_relu)
        self.encoder = nn.ModuleList(
            [conv(d)(in_channels if i == 0 else ch, ch, kernel_size=k) for i in range(5)]
        )
        self.decoder = nn.ModuleList(
            [conv_transpose(d)(ch, self.out_channels if i == 4 else ch, kernel_size=k) for i in range(5)]
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial)``."""
        shortcut_in = centre_channel(x, self.out_channels)
        out = self.relu(self.encoder[0](x))
        out = self.relu(self.encoder[1](out))
        shortcut_2 = out
        out = self.relu(self.encoder[2](out))
        out = self.relu(self.encoder[3](out))
        shortcut_4 = out
        out = self.relu(self.encoder[4](out))
        out = self.decoder[0](out) + shortcut_4
        out = self.decoder[1](self.relu(out))
        out = self.decoder[2](self.relu(out)) + shortcut_2
        out = self.decoder[3](self.relu(out))
        out = self.decoder[4](self.relu(out)) + shortcut_in
        return self.relu(out) if self.final_relu else out


class ResCNNLite(nn.Module):
    """A light residual denoiser in the DnCNN style (Zhang et al. 2017): conv3-ReLU, ``num_layers - 2``
    conv3-norm-ReLU blocks, conv3, and the prediction subtracted from the input (the net learns the noise).

    Zero padding keeps the size, so it runs on whole slices; with 32 channels and 8 layers it has 56,289
    parameters, 33× fewer than RED-CNN.

    Args:
        spatial_dims: 2 or 3.
        in_channels: 1 or a 2.5D stack ``2k+1``.
        out_channels: 1 or ``in_channels``.
        feature_size: feature maps per layer.
        num_layers: total conv layers (>= 2).
        norm: ``batch`` (DnCNN), ``instance`` or ``none``.

    Input/output ``(B, C, *spatial)`` normalised, any spatial size.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        feature_size: int = 32,
        num_layers: int = 8,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        name = "rescnn_lite"
        d = parse_spatial_dims(spatial_dims, name)
        in_channels = parse_int(in_channels, "in_channels", name)
        self.out_channels = parse_int(out_channels, "out_channels", name)
        ch = parse_int(feature_size, "feature_size", name)
        num_layers = parse_int(num_layers, "num_layers", name, minimum=2)
        norm = parse_choice(norm, "norm", NORMS, name)
        check_residual_channels(in_channels, self.out_channels, name)
        layers: list[nn.Module] = [conv(d)(in_channels, ch, kernel_size=3, padding=1), nn.ReLU(True)]
        for _ in range(num_layers - 2):
            layers += [
                conv(d)(ch, ch, kernel_size=3, padding=1, bias=norm != "batch"),
                norm_layer(norm, d, ch),
                nn.ReLU(True),
            ]
        layers.append(conv(d)(ch, self.out_channels, kernel_size=3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial)``: input (centre slice) minus predicted noise."""
        return centre_channel(x, self.out_channels) - self.body(x)
