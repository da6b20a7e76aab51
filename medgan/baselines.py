"""Classical denoisers beside the learned ones: BM3D, non-local means, bilateral, total variation, Gaussian.

Every filter works slice by slice on HU scaled to the benchmark's RMSE range, ``u = (HU + 1024) / 2924``
(values outside it are kept, not clipped, so the noise in air is not folded at -1024 HU; scanner padding
below -1500 HU is set to -1024 HU while filtering and restored after). The noise level ``sigma`` is estimated
from the input itself (:func:`estimate_noise_hu`) or given in HU, and every parameter follows a published
rule from it, never tuned on the target:

============  ==========================================================================================
``bm3d``      ``bm3d.bm3d(u, sigma_psd=sigma)``, default profile (Dabov et al. 2007; Makinen et al. 2020)
``nlm``       scikit-image ``denoise_nl_means``, ``h = 0.8 sigma``, ``sigma`` given, 5x5 patches, 13x13
              search, fast mode (scikit-image's recommendation for the fast mode with a known sigma)
``bilateral`` scikit-image ``denoise_bilateral``, ``sigma_color = 2 sigma``, ``sigma_spatial = 1.8`` px
              (Zhang & Gunturk, IEEE TIP 17(12) 2008: best range sigma about 2 x noise sigma, spatial
              sigma 1.5-2.1 px whatever the noise)
``tv``        scikit-image ``denoise_tv_chambolle``, weight by the discrepancy principle (Morozov): the
              largest weight whose residual ``u - f`` has the noise's standard deviation
``gaussian``  scikit-image ``gaussian``, width by the same discrepancy principle (a plain low-pass for
              reference)
============  ==========================================================================================

The noise estimate is Donoho's (the estimator of scikit-image's ``estimate_sigma``): the median absolute
coefficient of the finest diagonal ``db2`` wavelet band / 0.6745, taken per slice over soft tissue only (5x5
mean in [-100, 200] HU, eroded by 2 pixels, so edges, lung texture, air and padding do not count), and the
median over a case's slices. It measures the high-frequency part of CT noise, the part a white-noise model
such as BM3D's acts on; ``docs/evaluation.md`` compares it with the noise actually added by a simulation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from medgan.errors import ConfigError
from medgan.metrics import RMSE_HU_RANGE

#: HU per unit of the scale the filters work on (the benchmark's RMSE range, 2924 HU)
HU_SCALE = RMSE_HU_RANGE[1] - RMSE_HU_RANGE[0]
PADDING_HU = -1500.0  # below this a value is scanner padding outside the field of view, not a measurement
SOFT_TISSUE_HU = (-100.0, 200.0)  # 5x5 means in this range are soft tissue for the noise estimate


@dataclass(frozen=True)
class DenoiseContext:
    """What every filter may use: the input's noise standard deviation in HU."""

    sigma_hu: float


def _to_unit(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    padding = hu < PADDING_HU
    u = (np.where(padding, RMSE_HU_RANGE[0], hu).astype(np.float64) - RMSE_HU_RANGE[0]) / HU_SCALE
    return u, padding


def _from_unit(u: np.ndarray, original: np.ndarray, padding: np.ndarray) -> np.ndarray:
    return np.where(padding, original, u * HU_SCALE + RMSE_HU_RANGE[0]).astype(np.float32)


def slice_noise_hu(hu: np.ndarray) -> float:
    """Donoho's wavelet estimate of the noise standard deviation of one ``(H, W)`` HU slice, over soft tissue;
    NaN when fewer than 64 coefficients qualify."""
    import pywt
    from scipy import ndimage

    hu = np.asarray(hu, dtype=np.float64)
    hh = pywt.dwt2(hu, "db2", mode="symmetric")[1][2]  # finest diagonal detail band, half resolution
    local = ndimage.uniform_filter(hu, 5)
    soft = ndimage.binary_erosion((local > SOFT_TISSUE_HU[0]) & (local < SOFT_TISSUE_HU[1]), iterations=2)
    soft = soft[::2, ::2][: hh.shape[0], : hh.shape[1]]
    coeffs = hh[: soft.shape[0], : soft.shape[1]][soft]
    if coeffs.size < 64:
        return float("nan")
    return float(np.median(np.abs(coeffs)) / 0.6745)


def estimate_noise_hu(slices: np.ndarray) -> float:
    """Median over ``(N, H, W)`` HU slices of :func:`slice_noise_hu`.

    Raises:
        ValueError: no slice has enough body pixels to measure on.
    """
    values = [v for v in (slice_noise_hu(s) for s in np.asarray(slices)) if np.isfinite(v)]
    if not values:
        raise ValueError("cannot estimate the noise: no slice has enough soft tissue (-100..200 HU); give the sigma in HU")
    return float(np.median(values))


def _bm3d(u: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return np.asarray(bm3d.bm3d(u, sigma_psd=sigma), dtype=np.float64)


def _nlm(u: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(u, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True,
                            preserve_range=True)


def _bilateral(u: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_bilateral

    return denoise_bilateral(u, sigma_color=2.0 * sigma, sigma_spatial=1.8)


def _discrepancy(smooth: Callable[[np.ndarray, float], np.ndarray], u: np.ndarray, sigma: float,
                 low: float, high: float, steps: int = 8) -> np.ndarray:
    """Morozov's discrepancy principle: the strongest ``smooth(u, strength)`` (strength bisected on a log
    scale in ``[low, high]``) whose residual standard deviation does not exceed the noise ``sigma``."""
    log_low, log_high = np.log(low), np.log(high)
    best = u
    for _ in range(steps):
        mid = 0.5 * (log_low + log_high)
        out = smooth(u, float(np.exp(mid)))
        if np.std(out - u) > sigma:
            log_high = mid
        else:
            log_low, best = mid, out
    return best


def _tv(u: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    return _discrepancy(lambda x, w: denoise_tv_chambolle(x, weight=w), u, sigma, 0.05 * sigma, 50.0 * sigma)


def _gaussian(u: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.filters import gaussian

    return _discrepancy(lambda x, s: gaussian(x, sigma=s, preserve_range=True), u, sigma, 0.3, 5.0)


#: name -> filter of one slice in units of :data:`HU_SCALE`, given the noise sigma in those units
BASELINES: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "bm3d": _bm3d,
    "nlm": _nlm,
    "bilateral": _bilateral,
    "tv": _tv,
    "gaussian": _gaussian,
}


def parse_baselines(text: str | Sequence[str]) -> list[str]:
    """``"bm3d,nlm"`` -> ``["bm3d", "nlm"]``, checked against :data:`BASELINES` and for the ``bm3d`` package.

    Raises:
        ConfigError: an unknown name (the allowed ones listed). ModuleNotFoundError: ``bm3d`` without its
        package (the ``baselines`` extra).
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        raise ConfigError(f"--baselines: got {unknown or text!r}, allowed: a comma list of {', '.join(BASELINES)}")
    if "bm3d" in names:  # fail before any work; the CLI turns this into: pip install "medgan[baselines]"
        import bm3d  # noqa: F401
    return list(dict.fromkeys(names))


def run_baseline(name: str, slices: np.ndarray, context: DenoiseContext) -> np.ndarray:
    """Denoise ``(N, H, W)`` HU slices with the baseline ``name``; returns float32 HU, same shape."""
    if name not in BASELINES:
        raise ConfigError(f"baseline: got {name!r}, allowed: {', '.join(BASELINES)}")
    if not context.sigma_hu > 0:
        raise ConfigError(f"noise sigma: got {context.sigma_hu!r} HU, allowed: > 0")
    sigma = context.sigma_hu / HU_SCALE
    out = np.empty(np.shape(slices), dtype=np.float32)
    for i, hu in enumerate(np.asarray(slices, dtype=np.float32)):
        u, padding = _to_unit(hu)
        out[i] = _from_unit(BASELINES[name](u, sigma), hu, padding)
    return out
