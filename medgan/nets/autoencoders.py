"""The autoencoder family: undercomplete, overcomplete, sparse, deep (fully connected), convolutional,
denoising, variational.

The fully connected ones (Goodfellow et al. 2016, ch. 14) flatten a fixed-size patch ``img_size`` and are
meant for patch-wise training and sliding-window inference (the ROI is ``img_size``). The convolutional
ones are MONAI's ``AutoEncoder`` / ``VarAutoEncoder``; :class:`DenoisingAutoEncoder` adds the input
corruption of Vincent et al. 2008 and :class:`VAE` adapts ``VarAutoEncoder`` to medgan's normalised
range (no sigmoid) and to the ``(recon, mu, logvar)`` return contract.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.nets import AutoEncoder, VarAutoEncoder

from medgan.errors import ConfigError
from medgan.nets._layers import parse_float, parse_int, parse_size, parse_spatial_dims


def _monai_net(net: str, cls: type[nn.Module], **kwargs: object) -> nn.Module:
    """Build a MONAI net, turning its argument errors into a ``ConfigError`` that names our net."""
    try:
        return cls(**kwargs)
    except Exception as err:  # MONAI raises ValueError/TypeError, numpy ufunc errors for a str kernel_size
        message = " ".join(str(err).split())  # one line: the CLI prints it as is
        raise ConfigError(f"net '{net}': bad argument ({type(err).__name__}: {message})") from err


def _parse_widths(value: object, name: str, net: str) -> tuple[int, ...]:
    if not isinstance(value, Sequence) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ConfigError(f"net '{net}': {name}={value!r} must be a list of positive integers")
    return tuple(int(v) for v in value)


class MLPAutoEncoder(nn.Module):
    """Fully connected autoencoder on a flattened patch.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        img_size: patch size (int or one int per spatial dim); inputs must have exactly this size.
        latent_size: units of the code layer.
        hidden: widths of the hidden layers between input and code (mirrored in the decoder).
        code_activation: ``none`` (linear code), ``relu`` or ``sigmoid`` (needed by the KL sparsity penalty).

    The code of the last forward pass is kept in ``last_code`` ``(B, latent_size)`` for the ``sparsity``
    loss. Input ``(B, in_channels, *img_size)`` normalised; output ``(B, out_channels, *img_size)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        img_size: int | Sequence[int],
        latent_size: int,
        hidden: Sequence[int] = (),
        code_activation: str = "none",
        name: str = "ae_deep",
    ) -> None:
        super().__init__()
        d = parse_spatial_dims(spatial_dims, name)
        in_channels = parse_int(in_channels, "in_channels", name)
        self.out_channels = parse_int(out_channels, "out_channels", name)
        self.img_size = parse_size(img_size, "img_size", d, name)
        latent_size = parse_int(latent_size, "latent_size", name)
        hidden = _parse_widths(hidden, "hidden", name)
        acts = {"none": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
        if code_activation not in acts:
            raise ConfigError(f"net '{name}': code_activation={code_activation!r}; allowed: {', '.join(acts)}")
        self.in_features = in_channels * math.prod(self.img_size)
        widths = [self.in_features, *hidden, latent_size]
        enc: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.ReLU(True)]
        enc[-1] = acts[code_activation]()
        self.encoder = nn.Sequential(*enc)
        out_widths = [latent_size, *hidden[::-1], self.out_channels * math.prod(self.img_size)]
        dec: list[nn.Module] = []
        for a, b in zip(out_widths[:-1], out_widths[1:]):
            dec += [nn.Linear(a, b), nn.ReLU(True)]
        self.decoder = nn.Sequential(*dec[:-1])  # linear output: the normalised range is signed
        self.last_code: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *img_size)`` -> ``(B, C_out, *img_size)``; stores the code in ``last_code``."""
        if tuple(x.shape[2:]) != self.img_size:
            raise ValueError(f"input spatial size {tuple(x.shape[2:])} != img_size {self.img_size}")
        self.last_code = self.encoder(x)
        return self.decoder(self.last_code).reshape(x.shape[0], self.out_channels, *self.img_size)


def ae_undercomplete(
    spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, img_size: int | Sequence[int] = 64,
    latent_size: int = 128,
) -> MLPAutoEncoder:
    """One code layer narrower than the input: the bottleneck forces a compressed representation."""
    net = MLPAutoEncoder(spatial_dims, in_channels, out_channels, img_size, latent_size, name="ae_undercomplete")
    if latent_size >= net.in_features:
        raise ConfigError(
            f"net 'ae_undercomplete': latent_size={latent_size} must be < the input size {net.in_features}"
        )
    return net


def ae_overcomplete(
    spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, img_size: int | Sequence[int] = 64,
    latent_size: int | None = None,
) -> MLPAutoEncoder:
    """A code wider than the input (default 2×); it can copy its input, so train it with noise
    (denoising) or a sparsity penalty."""
    numel = in_channels * math.prod(parse_size(img_size, "img_size", spatial_dims, "ae_overcomplete"))
    latent_size = 2 * numel if latent_size is None else latent_size
    if not isinstance(latent_size, int) or latent_size <= numel:
        raise ConfigError(f"net 'ae_overcomplete': latent_size={latent_size} must be > the input size {numel}")
    return MLPAutoEncoder(spatial_dims, in_channels, out_channels, img_size, latent_size, name="ae_overcomplete")


def ae_sparse(
    spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, img_size: int | Sequence[int] = 64,
    latent_size: int = 256, hidden: Sequence[int] = (),
) -> MLPAutoEncoder:
    """Sigmoid code whose activity (``last_code``) the ``sparsity`` loss penalises (Ng 2011)."""
    return MLPAutoEncoder(spatial_dims, in_channels, out_channels, img_size, latent_size, hidden,
                          code_activation="sigmoid", name="ae_sparse")


def ae_deep(
    spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, img_size: int | Sequence[int] = 64,
    latent_size: int = 64, hidden: Sequence[int] = (512, 256),
) -> MLPAutoEncoder:
    """Several hidden layers on each side (Hinton & Salakhutdinov 2006)."""
    return MLPAutoEncoder(spatial_dims, in_channels, out_channels, img_size, latent_size, hidden, name="ae_deep")


def ae_conv(
    spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, channels: Sequence[int] = (16, 32, 64),
    strides: Sequence[int] = (2, 2, 2), kernel_size: int = 3, num_res_units: int = 0, act: str = "prelu",
    norm: str = "instance", dropout: float | None = None,
) -> nn.Module:
    """MONAI ``AutoEncoder``: strided conv encoder, transposed-conv decoder, no skips; any input size
    divisible by ``prod(strides)``; ``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial)``, linear output."""
    name = "ae_conv"
    return _monai_net(
        name, AutoEncoder,
        spatial_dims=parse_spatial_dims(spatial_dims, name),
        in_channels=parse_int(in_channels, "in_channels", name),
        out_channels=parse_int(out_channels, "out_channels", name),
        channels=_parse_widths(channels, "channels", name),
        strides=_parse_widths(strides, "strides", name),
        kernel_size=kernel_size, num_res_units=num_res_units, act=act, norm=norm, dropout=dropout,
    )


class DenoisingAutoEncoder(nn.Module):
    """Convolutional denoising autoencoder (Vincent et al. 2008): MONAI ``AutoEncoder`` trained to map a
    corrupted input to the clean one.

    For LDCT the corruption is the low dose itself (``noise_std=0``); ``noise_std > 0`` adds Gaussian
    noise of that std (normalised units) to the input in training mode only, for single-domain training.

    Args: as :func:`ae_conv`, plus ``noise_std``. Input/output ``(B, C, *spatial)`` normalised.
    """

    def __init__(
        self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128), strides: Sequence[int] = (2, 2, 2), kernel_size: int = 3,
        num_res_units: int = 1, act: str = "prelu", norm: str = "instance", dropout: float | None = None,
        noise_std: float = 0.0,
    ) -> None:
        super().__init__()
        self.noise_std = parse_float(noise_std, "noise_std", "dae")
        self.net = ae_conv(spatial_dims, in_channels, out_channels, channels, strides, kernel_size,
                           num_res_units, act, norm, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial)`` -> ``(B, C_out, *spatial)``."""
        if self.training and self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        return self.net(x)


class VAE(nn.Module):
    """Variational autoencoder (Kingma & Welling 2014) on MONAI's ``VarAutoEncoder``.

    Args:
        spatial_dims: 2 or 3.
        in_channels / out_channels: image channels.
        img_size: patch size (the dense latent layers fix it); divisible by ``prod(strides)``.
        latent_size: length of z.
        channels, strides, kernel_size, num_res_units, act, norm, dropout: MONAI ``VarAutoEncoder`` args.
        use_mean_at_inference: decode mu instead of a sample in eval mode (deterministic anomaly maps).

    ``forward(x)`` returns ``(recon, mu, logvar)``: recon ``(B, C_out, *img_size)`` (linear, no
    sigmoid, since inputs are normalised to [-1, 1]); mu, logvar ``(B, latent_size)``.
    """

    def __init__(
        self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1,
        img_size: int | Sequence[int] = 64, latent_size: int = 64, channels: Sequence[int] = (16, 32, 64),
        strides: Sequence[int] = (2, 2, 2), kernel_size: int = 3, num_res_units: int = 0, act: str = "prelu",
        norm: str = "instance", dropout: float | None = None, use_mean_at_inference: bool = True,
    ) -> None:
        super().__init__()
        name = "vae"
        d = parse_spatial_dims(spatial_dims, name)
        self.img_size = parse_size(img_size, "img_size", d, name)
        self.net = _monai_net(
            name, VarAutoEncoder,
            spatial_dims=d,
            in_shape=(parse_int(in_channels, "in_channels", name), *self.img_size),
            out_channels=parse_int(out_channels, "out_channels", name),
            latent_size=parse_int(latent_size, "latent_size", name),
            channels=_parse_widths(channels, "channels", name),
            strides=_parse_widths(strides, "strides", name),
            kernel_size=kernel_size, num_res_units=num_res_units, act=act, norm=norm, dropout=dropout,
            use_sigmoid=False, use_mean_at_inference=use_mean_at_inference,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, C_in, *img_size)`` -> ``(recon, mu, logvar)``."""
        recon, mu, logvar, _ = self.net(x)
        return recon, mu, logvar
