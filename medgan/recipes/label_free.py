"""Validation that needs no full-dose target: is the denoiser removing noise and leaving anatomy alone?

Measured on a validation case from the low-dose input and the output alone (both ``(1, X, Y, Z)`` HU,
axial slices on the last axis):

- ``noise_hu`` / ``input_noise_hu``: noise sigma in homogeneous soft tissue
  (:func:`medgan.transforms.noise_level.estimate_noise_hu`, the mode of plane-detrended local sds, after
  Christianson et al. 2015) in windows of about 10 mm (15 pixels at 0.7 mm; at least 5), chosen on the
  *input* so both are measured in the same places;
- ``lowfreq_hu``: RMS of ``blur(output) - blur(input)`` (Gaussian, ``sigma`` pixels): what the net changed
  at the scale of anatomy (a shifted edge, a biased organ) rather than at the scale of noise;
- ``edge_ratio``: mean gradient magnitude of the blurred output over that of the blurred input at the
  input's strongest 5 % edges: 1 keeps edges, < 1 blurs them, > 1 sharpens them;
- ``cycle_hu`` (recipes that have a backward generator): mean absolute ``F(G(x)) - x``.

The selection criterion ``unpaired_gain_db = 10 log10(input_noise^2 / (noise^2 + lowfreq^2))`` is an
estimate of the PSNR gain without a target: the output's error is its residual noise plus what it changed
in the anatomy, and the low-frequency change is the part of the latter that can be seen without a target.
It is > 0 when the net removes more noise than it adds structure change.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EDGE_QUANTILE = 0.95
WINDOW_MM = 10.0  # noise windows: 15 pixels at 0.7 mm, as the estimator's default


def _slices(volume_hu: torch.Tensor) -> torch.Tensor:
    """``(1, X, Y, Z)`` (or ``(X, Y, Z)``) -> ``(Z, 1, X, Y)`` float32."""
    v = volume_hu[0] if volume_hu.dim() == 4 else volume_hu
    return v.detach().float().cpu().permute(2, 0, 1)[:, None]


def _blur(slices: torch.Tensor, sigma: float) -> torch.Tensor:
    from monai.networks.layers import GaussianFilter

    return GaussianFilter(2, sigma)(slices)


def _gradient_magnitude(slices: torch.Tensor) -> torch.Tensor:
    gx = F.pad(slices[..., 1:, :] - slices[..., :-1, :], (0, 0, 0, 1))
    gy = F.pad(slices[..., :, 1:] - slices[..., :, :-1], (0, 1))
    return torch.sqrt(gx**2 + gy**2)


def noise_window(pixel_mm: float) -> int:
    """The odd window side (pixels) that spans about :data:`WINDOW_MM` at ``pixel_mm``, at least 5."""
    return max(5, int(round(WINDOW_MM / pixel_mm)) | 1)


def label_free_scores(output_hu: torch.Tensor, input_hu: torch.Tensor, sigma: float = 2.0,
                      pixel_mm: float = 0.7) -> dict[str, float]:
    """The label-free measures of the module docstring for one case.

    Args:
        output_hu: the denoised case ``(1, X, Y, Z)`` HU.
        input_hu: the low-dose input ``(1, X, Y, Z)`` HU on the same grid.
        sigma: the Gaussian blur of ``lowfreq_hu`` and ``edge_ratio``, in pixels.
        pixel_mm: in-plane pixel size, sizes the noise windows.

    Returns:
        ``{noise_hu, input_noise_hu, lowfreq_hu, edge_ratio, unpaired_gain_db}``; the noise values (and the
        gain) are NaN when the case has no homogeneous soft tissue to measure on.
    """
    from medgan.transforms.noise_level import estimate_noise_hu

    out, inp = _slices(output_hu), _slices(input_hu)
    if out.shape != inp.shape:
        raise ValueError(f"output {tuple(out.shape)} and input {tuple(inp.shape)} differ: label-free scores need one grid")
    try:
        window = noise_window(pixel_mm)
        noise = estimate_noise_hu(out[:, 0], reference=inp[:, 0], window=window)
        input_noise = estimate_noise_hu(inp[:, 0], window=window)
    except ValueError:  # no soft tissue in this case
        noise = input_noise = math.nan
    blur_out, blur_in = _blur(out, sigma), _blur(inp, sigma)
    lowfreq = float((blur_out - blur_in).pow(2).mean().sqrt())
    grad_out, grad_in = _gradient_magnitude(blur_out), _gradient_magnitude(blur_in)
    edges = grad_in >= torch.quantile(grad_in.flatten()[:: max(1, grad_in.numel() // 500_000)], EDGE_QUANTILE)
    edge_ratio = float(grad_out[edges].mean() / grad_in[edges].mean().clamp_min(1e-6))
    gain = 10 * math.log10(input_noise**2 / max(noise**2 + lowfreq**2, 1e-12)) if input_noise > 0 else math.nan
    return {"noise_hu": noise, "input_noise_hu": input_noise, "lowfreq_hu": lowfreq, "edge_ratio": edge_ratio,
            "unpaired_gain_db": gain}


def cycle_error_hu(reconstructed_hu: torch.Tensor, input_hu: torch.Tensor) -> float:
    """Mean absolute ``F(G(x)) - x`` in HU (both ``(1, X, Y, Z)``)."""
    return float((reconstructed_hu.float() - input_hu.float()).abs().mean())


#: HU ranges of window means whose noise the CycleGAN's noise term matches, one term each: the soft-tissue
#: range of :mod:`medgan.transforms.noise_level`. Measured and left out: lung (its windows hold vessels and
#: texture that differ between patients more than the noise between doses: 130 vs 28 HU between the demo's
#: two piles, 37 vs 32 HU between the doses of one slab) and air (asking for air's noise-free level too
#: made the validation RMSE worse as soft-tissue noise fell). A window holding a pixel more than
#: :data:`EDGE_MARGIN_HU` outside its range is an edge.
NOISE_CLASSES_HU = ((-100.0, 200.0),)
#: HU added to both sigmas of the noise term's log ratio, so a noise-free class (air) is a finite target
NOISE_FLOOR_HU = 5.0
EDGE_MARGIN_HU = 300.0  # soft tissue's -100..200 -> the -400..500 edge limits of transforms.noise_level


def class_noise(image_hu: torch.Tensor, reference_hu: torch.Tensor, hu_range: tuple[float, float],
                window: int = 5, quantile: float = 0.3, min_windows: int = 16) -> torch.Tensor | None:
    """Differentiable noise sigma (HU) of a training batch in one tissue class, for a loss that asks for a
    noise level.

    Windows (``window`` pixels a side, stride 1) are chosen on ``reference_hu``: mean within ``hu_range``,
    no pixel more than :data:`EDGE_MARGIN_HU` outside it, and a standard deviation at most the ``quantile``
    of those windows' (the most homogeneous ones: edges and texture only add larger sds, as the mode of
    :mod:`medgan.transforms.noise_level` ignores them). The result is the RMS of ``image_hu``'s standard
    deviation over the chosen windows, so every chosen pixel gets a gradient (a single quantile value would
    pass it to one window). Choosing on the reference measures a generator where its input was homogeneous.

    Args:
        image_hu: ``(B, 1, *spatial)`` HU, 2D or 3D; gradients flow through it.
        reference_hu: the same shape; selects the windows (no gradient).
        hu_range: ``(low, high)`` HU of the class's window means.
        window: window side in pixels.
        quantile: the most homogeneous fraction of the class's windows is measured.
        min_windows: fewer class windows than this return ``None`` (the class is not in the patch).

    Returns:
        A scalar tensor in HU, or ``None``.
    """
    pool = F.avg_pool3d if image_hu.dim() == 5 else F.avg_pool2d

    def local_var(x: torch.Tensor) -> torch.Tensor:
        return (pool(x**2, window, stride=1) - pool(x, window, stride=1) ** 2).clamp_min(1e-3)

    lo, hi = hu_range
    with torch.no_grad():
        ref = reference_hu.detach()
        mean_ref = pool(ref, window, stride=1)
        outside = (ref < lo - EDGE_MARGIN_HU) | (ref > hi + EDGE_MARGIN_HU)
        keep = (mean_ref >= lo) & (mean_ref <= hi) & ~(pool(outside.float(), window, stride=1) > 0)
        if int(keep.sum()) < min_windows:
            return None
        var_ref = local_var(ref)
        keep &= var_ref <= torch.quantile(var_ref[keep], quantile)
    return local_var(image_hu)[keep].mean().sqrt()
