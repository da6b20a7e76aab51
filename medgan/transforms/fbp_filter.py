"""FBP filters: the ramp (Ram-Lak) from its discrete spatial kernel, and the usual apodised variants.

``gaussian`` is the ramp times ``exp(-(f / cutoff)^2)`` (``f`` and ``cutoff`` in cycles per detector bin):
one continuous parameter that moves the noise power spectrum's peak from near Nyquist (large cutoff,
a sharp kernel) to low frequencies (small cutoff, a smooth kernel). The simulator fits it to a scan's own
noise texture (:mod:`medgan.transforms.dose_calibration`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from medgan.errors import ConfigError

FilterName = Literal["ramp", "shepp-logan", "cosine", "hamming", "hann", "gaussian"]
FILTERS: tuple[str, ...] = ("ramp", "shepp-logan", "cosine", "hamming", "hann", "gaussian")
DEFAULT_GAUSSIAN_CUTOFF = 0.25  # cycles per bin: about a "standard" soft-tissue kernel's texture


def ramp_filter(
    num_bins: int,
    filter_name: str = "ramp",
    *,
    device: torch.device | None = None,
    cutoff: float | None = None,
) -> torch.Tensor:
    """Frequency response of the FBP filter for ``num_bins`` zero-padded detector samples.

    Built from the discrete spatial Ram-Lak kernel (Kak & Slaney, eq. 3.61: ``h[0] = 1/4``,
    ``h[n odd] = -1/(pi n)^2``) rather than ``|f|`` sampled in frequency, which would leave a DC offset;
    windowed variants multiply it by the usual apodisation (``f`` in cycles per bin); ``cutoff`` is the
    ``gaussian`` filter's width in cycles per bin (default 0.25; ignored by the other filters).

    Returns:
        Real tensor ``(num_bins // 2 + 1,)`` to multiply an ``rfft`` of length ``num_bins`` with.
    """
    if filter_name not in FILTERS:
        raise ConfigError(f"filter: got '{filter_name}', allowed: {', '.join(FILTERS)}")
    n = torch.arange(num_bins, dtype=torch.float64)
    n = torch.minimum(n, num_bins - n)  # circular distance, so the kernel is symmetric
    kernel = torch.zeros(num_bins, dtype=torch.float64)
    kernel[0] = 0.25
    odd = n % 2 == 1
    kernel[odd] = -1.0 / (math.pi * n[odd]) ** 2
    response = torch.fft.rfft(kernel).real
    f = torch.fft.rfftfreq(num_bins, dtype=torch.float64)
    if filter_name == "shepp-logan":
        response = response * torch.sinc(f)
    elif filter_name == "cosine":
        response = response * torch.cos(math.pi * f)
    elif filter_name == "hamming":
        response = response * (0.54 + 0.46 * torch.cos(2 * math.pi * f))
    elif filter_name == "hann":
        response = response * torch.cos(math.pi * f) ** 2
    elif filter_name == "gaussian":
        width = DEFAULT_GAUSSIAN_CUTOFF if cutoff is None else float(cutoff)
        if not width > 0:
            raise ConfigError(f"filter cutoff: got {cutoff!r}, allowed: > 0 cycles per pixel")
        response = response * torch.exp(-((f / width) ** 2))
    return response.to(device=device, dtype=torch.float32)
