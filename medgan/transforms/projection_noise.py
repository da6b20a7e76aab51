"""The noise model of the low-dose simulation: log-domain noise of a dose-``a`` acquisition, per ray.

Noise in the projections, with ``I0`` photons per ray at full dose, dose fraction ``a`` and electronic
noise variance ``sigma_e^2`` (counts^2):

- ``absolute`` (input is noise-free, e.g. a phantom): ``y = Poisson(a I0 exp(-p)) + N(0, sigma_e^2)``,
  ``p_LD = -ln(max(y, 1) / (a I0))``.
- ``relative`` (input is a real scan acquired at dose 1 with ``I0``): only the *extra* noise is added.
  Yu et al. 2012 (J. Comput. Assist. Tomogr. 36(4):477-487) add to the scaled full-dose counts ``a I``
  (``I = I0 exp(-p)`` estimated from the image's own projection) the count variance
  ``a (1 - a) I + (1 - a^2) sigma_e^2``, so the total is that of an acquisition at dose ``a``
  (``a I0 e^-p + sigma_e^2``). medgan adds it in the post-log form (the same variance divided by
  ``(a I)^2``, Gaussian, zero mean), which Yu et al. and Zeng et al. 2015 (IEEE TNS 62(5):2226) give as
  equivalent at clinical counts: a calibrated budget can be low in counts per thin ray, where the log of
  a pre-log draw would shift the mean (tens of HU at 10% dose on real head scans, measured).
"""

from __future__ import annotations

import math

import torch

from medgan.errors import ConfigError

__all__ = ["MIN_COUNTS", "MODES", "MU_WATER_PER_MM", "PADDING_HU", "projection_noise"]

MU_WATER_PER_MM = 0.0192  # linear attenuation of water (1/mm) at an effective energy of about 70 keV
MIN_COUNTS = 1.0  # counts floor before the log: photon starvation gives streaks, never inf
# The most the log of a detector reading floored at MIN_COUNTS can vary: Poisson counts plus Gaussian
# electronic noise (sigma_e^2 = 10), simulated for means from 0.01 to 1000 counts, peak at ~0.64 near 5
# counts and fall to ~0.35 in full starvation. The first-order variance below grows as 1/counts^2 instead.
MAX_LOG_VARIANCE = 0.65
MODES = ("relative", "absolute")
PADDING_HU = -1500.0  # below this a value is scanner padding (outside the field of view), not tissue or air


def _parse_dose(dose: float, name: str = "dose") -> float:
    if isinstance(dose, bool) or not isinstance(dose, (int, float)) or not (0.0 < float(dose) <= 1.0):
        raise ConfigError(f"{name}: got {dose!r}, allowed: a dose fraction in (0, 1] (0.25 = quarter dose)")
    return float(dose)


def _parse_positive(value: float, name: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        allowed = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name}: got {value!r}, allowed: a finite number {allowed}")
    return float(value)


def _parse_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"mode: got {mode!r}, allowed: 'relative' (real full-dose scans), 'absolute' (noise-free)")
    return mode


def projection_noise(
    p: torch.Tensor,
    dose: float,
    *,
    photons: float = 1e5,
    electronic_noise: float = 10.0,
    mode: str = "relative",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The log-domain noise ``p_LD - p`` for line integrals ``p`` (any shape, dimensionless).

    Args:
        p: noise-free (absolute) or full-dose (relative) line integrals.
        dose: dose fraction ``a`` in (0, 1].
        photons: ``I0``, incident photons per ray at full dose.
        electronic_noise: variance ``sigma_e^2`` of the additive Gaussian detector noise, in counts^2.
        mode: ``"absolute"`` (Poisson counts, then the log) or ``"relative"`` (the extra noise, post-log
            Gaussian; see the module docstring).
        generator: torch generator on ``p``'s device, for reproducible draws.

    Returns:
        Tensor shaped like ``p`` (float32).
    """
    p = p.float().clamp(0.0, 50.0)  # negative line integrals are interpolation ripple around air
    full = photons * torch.exp(-p)  # expected full-dose counts I0 exp(-p)
    expected = dose * full
    if mode == "absolute":
        counts = torch.poisson(expected, generator=generator)
        if electronic_noise > 0:
            counts = counts + math.sqrt(electronic_noise) * torch.randn(p.shape, generator=generator, device=p.device)
        # -ln(y / (a I0)) - p  ==  ln(a I0 e^-p) - ln(y), computed without forming p_LD to keep precision
        return torch.log(expected) - torch.log(counts.clamp_min(MIN_COUNTS))
    if dose == 1.0:
        return torch.zeros_like(p)
    # Yu et al.'s extra count variance, carried through the log to first order (zero mean: no HU shift),
    # capped where photon starvation makes the first order meaningless: at a few counts it asked for log
    # variances in the thousands, and a starved slab came out with +-10,000 HU streaks
    extra_var = (dose * (1.0 - dose) * full + (1.0 - dose**2) * electronic_noise) / expected.square()
    extra_var = extra_var.clamp_max(MAX_LOG_VARIANCE)
    return torch.sqrt(extra_var) * torch.randn(p.shape, generator=generator, device=p.device)
