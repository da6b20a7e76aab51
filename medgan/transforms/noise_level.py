"""How noisy is a CT scan? Noise sigma and noise power spectrum (NPS) measured on the scan itself.

Both measurements look only at *homogeneous soft tissue*, the way CT physicists measure noise on patient
images (Christianson et al. 2015, "Automated technique to measure noise in clinical CT examinations",
AJR 204(1):W93-W99: local standard deviations in small windows restricted to soft tissue, and the mode of
their distribution as the "global noise level"):

- :func:`estimate_noise_hu`: the standard deviation in windows of about 8 mm (:func:`window_pixels`; 15
  pixels when the pixel size is not given) (a least-squares plane
  is removed from each window first, so a smooth intensity gradient is not counted as noise), kept where
  the window's mean is soft tissue (-100 to 200 HU), no pixel of it is lung, air or bone (outside -400 to
  500 HU: an edge window) and the window is not a constant plateau (sd < 0.5 HU:
  lossy compression, quantisation, synthetic fills, which hold no noise measurement). The estimate is the
  *mode* of those windows' sds, computed as the median of the shortest interval that holds a third of
  them: edges and texture only add windows with larger sds, which the mode ignores, and on pure noise
  it equals the median (no selection bias). For several slices it is the median of the per-slice modes
  of the slices with at least half as many soft-tissue windows as the richest slice.
- :func:`difference_ratio`: the noise texture as ``Var(lag-2 differences) / Var(lag-1 differences)`` in the
  same windows (what the simulator fits its FBP filter to: anatomy barely changes it).
- :func:`scan_nps`: the radially averaged NPS from ``roi x roi`` regions of homogeneous soft tissue, each
  detrended by a least-squares plane (removing anatomy's slow variation), and
  :func:`nps_peak_frequency` its peak.

``reference`` arguments select the windows on another image: to measure the noise *added* by a
simulation with the same estimator, pass the difference image and the full-dose scan as reference.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SOFT_TISSUE_HU = (-100.0, 200.0)  # window means counted as soft tissue (fat edge to enhanced organs)
PLATEAU_HU = 0.5  # a window with a smaller sd is a constant plateau, not a noise measurement
EDGE_HU = (-400.0, 500.0)  # a window holding a pixel outside this range touches lung, air or bone
WINDOW = 15  # pixels, when the pixel size is not known
WINDOW_MM = 8.0  # window side in mm when it is: small enough to fit between structures on a chest slice
MIN_WINDOW_PX = 7  # ... but never fewer pixels than this (46 degrees of freedom per window sd)
MIN_WINDOWS = 8


def window_pixels(pixel_size_mm: float | None = None, window: int | None = None) -> int:
    """Window side in pixels: ``window`` if given, else ``WINDOW_MM`` in pixels of ``pixel_size_mm`` (odd,
    at least ``MIN_WINDOW_PX``), else ``WINDOW``.

    15 pixels are 7 mm on a 0.48 mm head slice but 45 mm on a 3 mm chest slice, where such windows
    straddle vessels, bronchi and organ boundaries; 8 mm gives 17 pixels at 0.48 mm, 11 at 0.76 mm and the
    7-pixel minimum (21 mm) at 3 mm.
    """
    if window is not None:
        if int(window) < 3:
            raise ValueError(f"window: got {window!r}, allowed: at least 3 pixels")
        return int(window)
    if pixel_size_mm is None:
        return WINDOW
    if not pixel_size_mm > 0:
        raise ValueError(f"pixel_size_mm: got {pixel_size_mm!r}, allowed: > 0")
    side = max(MIN_WINDOW_PX, int(round(WINDOW_MM / float(pixel_size_mm))))
    return side + 1 - side % 2  # odd: a centre pixel


def _as_slices(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    x = x.as_tensor() if hasattr(x, "as_tensor") else x
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"image: expected (H, W) or (N, H, W) slices in HU, got shape {tuple(x.shape)}")
    return x.float().cpu()


def window_stats(
    slices: torch.Tensor, window: int = WINDOW, stride: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and plane-detrended standard deviation of every ``window x window`` window.

    Args:
        slices: ``(N, H, W)`` HU.
        window: window side in pixels.
        stride: step between windows (default ``window // 3``: overlapping windows, more samples).

    Returns:
        ``(mean, sd)``, each ``(N, h, w)`` over the window grid; sd has ``window**2 - 3`` degrees of freedom.
    """
    stride = stride or max(1, window // 3)
    x = slices.float()[:, None]
    u = torch.arange(window, dtype=torch.float32) - (window - 1) / 2
    # separable: box sums along one axis, then a box or a ramp (u) along the other; much cheaper than
    # full window x window kernels (1, x, y: an orthogonal basis of the plane)
    rows = F.avg_pool2d(x, (window, 1), (stride, 1)) * window  # summed over y, every column
    cols = F.avg_pool2d(x, (1, window), (1, stride)) * window  # summed over x, every row
    total = F.avg_pool2d(rows, (1, window), (1, stride))[:, 0] * window
    sum_x = F.conv2d(rows, u.reshape(1, 1, 1, -1), stride=(1, stride))[:, 0]
    sum_y = F.conv2d(cols, u.reshape(1, 1, -1, 1), stride=(stride, 1))[:, 0]
    squares = F.avg_pool2d(x * x, window, stride)[:, 0] * (window * window)
    n = window * window
    suu = float((u**2).sum()) * window
    residual = squares - total**2 / n - (sum_x**2 + sum_y**2) / suu
    return total / n, (residual.clamp_min(0.0) / (n - 3)).sqrt()


def _shorth_mode(values: torch.Tensor, fraction: float = 1 / 3) -> float:
    """Median of the shortest interval holding ``fraction`` of the values: a robust mode."""
    v = torch.sort(values.flatten()).values
    k = max(1, int(round(fraction * v.numel())))
    widths = v[k - 1 :] - v[: v.numel() - k + 1]
    i = int(torch.argmin(widths))
    return float(v[i : i + k].median())


def homogeneous_windows(
    reference: torch.Tensor,
    window: int | None = None,
    stride: int | None = None,
    hu_range: tuple[float, float] = SOFT_TISSUE_HU,
    *,
    pixel_size_mm: float | None = None,
) -> torch.Tensor:
    """Boolean ``(N, h, w)`` mask of the windows of ``reference`` (HU) that are soft tissue and not plateaus.

    A window must also hold no lung or air pixel (< -400 HU) and no bone (> 500 HU): a window whose *mean*
    is soft tissue can straddle a lung or bone edge, and on slices through the lungs such edge windows
    outnumber the homogeneous ones (the chest CT's upper slabs read 160-260 HU of "noise" instead of ~20).
    """
    return homogeneous_window_stats(_as_slices(reference), window_pixels(pixel_size_mm, window), stride, hu_range)[0]


def homogeneous_window_stats(
    ref: torch.Tensor, window: int, stride: int | None, hu_range: tuple[float, float] = SOFT_TISSUE_HU
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`homogeneous_windows`' mask and the windows' detrended sds (:func:`window_stats`) of ``ref``
    ``(N, H, W)`` HU, both from one pass of the window statistics."""
    mean, sd = window_stats(ref, window, stride)
    stride = stride or max(1, window // 3)
    highest = F.max_pool2d(ref[:, None], window, stride)[:, 0]
    lowest = -F.max_pool2d(-ref[:, None], window, stride)[:, 0]
    mask = ((mean >= hu_range[0]) & (mean <= hu_range[1]) & (sd >= PLATEAU_HU)
            & (lowest > EDGE_HU[0]) & (highest < EDGE_HU[1]))
    return mask, sd


def noise_per_slice(
    image: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray | None = None,
    *,
    pixel_size_mm: float | None = None,
    window: int | None = None,
) -> dict[int, float]:
    """Noise sigma (HU) of each slice :func:`estimate_noise_hu` measures a volume on (:func:`rich_slices`
    of ``reference``), by slice index; the windows are found once for all slices."""
    img = _as_slices(image)
    ref = img if reference is None else _as_slices(reference)
    window = window_pixels(pixel_size_mm, window)
    mask, sd = homogeneous_window_stats(ref, window, None)
    if reference is not None:
        sd = window_stats(img, window)[1]
    return {i: _shorth_mode(sd[i][mask[i]]) for i in _rich_slices(mask)}


def estimate_noise_hu(
    image: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray | None = None,
    *,
    window: int | None = None,
    stride: int | None = None,
    hu_range: tuple[float, float] = SOFT_TISSUE_HU,
    pixel_size_mm: float | None = None,
) -> float:
    """Noise sigma (HU) of ``image`` in homogeneous soft tissue (see the module docstring for the method).

    Args:
        image: ``(H, W)`` or ``(N, H, W)`` HU.
        reference: the image that chooses the windows (default ``image``); pass the full-dose scan when
            ``image`` is the noise a simulation added to it.
        window, stride, hu_range: window side (pixels), step, and soft-tissue range of window means (HU).
        pixel_size_mm: in-plane pixel size; sizes the windows in mm (:func:`window_pixels`) when ``window``
            is not given.

    Raises:
        ValueError: fewer than 8 soft-tissue windows (no homogeneous tissue to measure on).
    """
    img = _as_slices(image)
    ref = img if reference is None else _as_slices(reference)
    if ref.shape != img.shape:
        raise ValueError(f"reference: shape {tuple(ref.shape)} differs from the image's {tuple(img.shape)}")
    window = window_pixels(pixel_size_mm, window)
    mask = homogeneous_windows(ref, window, stride, hu_range)
    if int(mask.sum()) < MIN_WINDOWS:
        raise ValueError(
            f"no homogeneous soft tissue to measure the noise on ({int(mask.sum())} {window}x{window} windows "
            f"with a mean in {hu_range[0]:g}..{hu_range[1]:g} HU); give the full-dose noise or the photons"
        )
    _, sd = window_stats(img, window, stride)
    rich = _rich_slices(mask)
    if len(rich) > 1:
        # one mode per slice, then their median: slices of a volume can differ in noise level, and one mode
        # of the pooled windows would jump between those levels
        return float(np.median([_shorth_mode(sd[i][mask[i]]) for i in rich]))
    return _shorth_mode(sd[mask])


def _rich_slices(mask: torch.Tensor) -> list[int]:
    """Slices holding at least half as many soft-tissue windows as the richest one (and at least 8).

    A slice through the lungs keeps a few dozen windows, nearly all on vessel and mediastinum edges: its
    mode would be structure, not noise.
    """
    counts = mask.sum((1, 2))
    threshold = max(MIN_WINDOWS, 0.5 * float(counts.max()))
    return [i for i in range(len(counts)) if counts[i] >= threshold]


def rich_slices(reference: torch.Tensor | np.ndarray, pixel_size_mm: float | None = None) -> list[int]:
    """Indices of the slices of ``reference`` (HU) that :func:`estimate_noise_hu` measures a volume on."""
    return _rich_slices(homogeneous_windows(_as_slices(reference), pixel_size_mm=pixel_size_mm))


def plateau_fraction(
    image: torch.Tensor | np.ndarray, window: int | None = None, pixel_size_mm: float | None = None
) -> float:
    """Share of soft-tissue windows that are constant plateaus (a sign of lossy compression or smoothing)."""
    mean, sd = window_stats(_as_slices(image), window_pixels(pixel_size_mm, window))
    soft = (mean >= SOFT_TISSUE_HU[0]) & (mean <= SOFT_TISSUE_HU[1])
    return float((soft & (sd < PLATEAU_HU)).sum()) / max(1, int(soft.sum()))


def difference_ratio(
    image: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray | None = None,
    *,
    window: int | None = None,
    pixel_size_mm: float | None = None,
) -> float:
    """Noise texture as one number: ``Var(x[i+2] - x[i]) / Var(x[i+1] - x[i])`` in homogeneous soft tissue.

    For noise with autocorrelation ``rho(k)`` the ratio is ``(1 - rho(2)) / (1 - rho(1))``: about 1 for
    white noise, below 1.3 for ramp-filtered (sharp-kernel) noise, towards 4 for smooth-kernel noise. Unlike
    the NPS peak it hardly sees anatomy: a structure smoother than the noise adds little to differences of
    neighbouring pixels. Horizontal and vertical differences are pooled per window (the windows of
    :func:`estimate_noise_hu`), and the median over windows is returned.
    """
    img = _as_slices(image)
    ref = img if reference is None else _as_slices(reference)
    window = window_pixels(pixel_size_mm, window)
    mask = homogeneous_windows(ref, window)
    if int(mask.sum()) < MIN_WINDOWS:
        raise ValueError(f"no homogeneous soft tissue to measure the noise texture on ({int(mask.sum())} windows)")
    x = img[:, None]
    h, w = x.shape[-2] - 2, x.shape[-1] - 2
    energy = []
    for lag in (1, 2):
        dx = (x[..., lag:] - x[..., :-lag])[..., :h, :w]
        dy = (x[..., lag:, :] - x[..., :-lag, :])[..., :h, :w]
        energy.append(F.avg_pool2d(dx**2 + dy**2, window, stride=max(1, window // 3))[:, 0])
    gh, gw = energy[0].shape[-2:]
    ratio = energy[1] / energy[0].clamp_min(1e-12)
    return float(ratio[mask[:, :gh, :gw]].median())


def noise_power_spectrum(noise: torch.Tensor | np.ndarray, bins: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged 2D noise power spectrum of ``(N, H, W)`` (or ``(H, W)``) zero-mean noise ROIs.

    Returns:
        ``(frequency in cycles/pixel at bin centres, power)``, each ``(bins,)`` up to Nyquist (0.5).
    """
    arr = np.asarray(noise, dtype=np.float64)
    arr = arr[None] if arr.ndim == 2 else arr
    arr = arr - arr.mean(axis=(-2, -1), keepdims=True)
    power = (np.abs(np.fft.fft2(arr)) ** 2).mean(0) / (arr.shape[-1] * arr.shape[-2])
    fy = np.fft.fftfreq(arr.shape[-2])[:, None]
    fx = np.fft.fftfreq(arr.shape[-1])[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    edges = np.linspace(0, 0.5, bins + 1)
    which = np.digitize(radius, edges) - 1
    mean = np.array([power[which == b].mean() if np.any(which == b) else np.nan for b in range(bins)])
    return (edges[:-1] + edges[1:]) / 2, mean


def _detrend(rois: torch.Tensor, order: int = 2) -> torch.Tensor:
    """Remove the least-squares polynomial of ``order`` (0 mean, 1 plane, 2 quadratic) from ``(K, R, R)`` ROIs.

    The usual NPS practice on patient images (ICRU Report 87, 2012; Solomon et al. 2015, Med. Phys.
    42(9):5304): subtracting a low-order surface takes the slow anatomical variation out of an ROI while
    keeping the noise above about ``(order + 1) / (2 R)`` cycles per pixel.
    """
    r = rois.shape[-1]
    u = torch.arange(r, dtype=torch.float64) - (r - 1) / 2
    y, x = torch.meshgrid(u, u, indexing="ij")
    terms = [torch.ones_like(x)]
    if order >= 1:
        terms += [x, y]
    if order >= 2:
        terms += [x * x, x * y, y * y]
    basis = torch.stack([t.reshape(-1) for t in terms], 1)  # (R*R, terms)
    flat = rois.double().reshape(len(rois), -1)
    coeff = torch.linalg.lstsq(basis, flat.T).solution  # (terms, K)
    return (flat - (basis @ coeff).T).reshape(rois.shape).float()


AIR_HU = (-1150.0, -850.0)  # air inside the field of view: above every scanner's padding, below lung


def homogeneous_rois(
    image: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray | None = None,
    roi: int = 32,
    max_sd_factor: float = 1.5,
    *,
    pixel_size_mm: float | None = None,
    order: int = 2,
    region: str = "soft",
) -> torch.Tensor:
    """Detrended ``(K, roi, roi)`` regions of ``image`` where ``reference`` is homogeneous.

    ``region="soft"``: the windows :func:`homogeneous_windows` accepts on ``reference`` (soft-tissue mean, no
    lung, air or bone pixel, not a plateau; here ``roi`` pixels wide on a half-overlapping grid) whose
    detrended sd is also at most ``max_sd_factor`` times the reference's noise sigma (no organ boundary
    inside). ``region="air"``: windows whose every reference pixel lies in ``AIR_HU`` (air inside the field
    of view, away from the body, the table and the padding outside the reconstruction circle) and whose
    detrended sd is at most twice the median of such windows: noise with no anatomy under it. The same
    regions are cut from ``image``, so the NPS of a simulation's added noise is measured where the
    full-dose scan's is. Each region is detrended by a polynomial of ``order`` (:func:`_detrend`).
    """
    if region not in ("soft", "air"):
        raise ValueError(f"region: got {region!r}, allowed: 'soft', 'air'")
    img = _as_slices(image)
    ref = img if reference is None else _as_slices(reference)
    step = max(1, roi // 2)
    if region == "soft":
        sigma = estimate_noise_hu(ref, pixel_size_mm=pixel_size_mm)
        keep = homogeneous_windows(ref, roi, step)
        keep &= window_stats(ref, roi, step)[1] <= max_sd_factor * sigma
    else:
        inside = ((ref >= AIR_HU[0]) & (ref <= AIR_HU[1])).float()[:, None]
        keep = F.avg_pool2d(inside, roi, step)[:, 0] >= 1.0
        sd = window_stats(ref, roi, step)[1]
        if bool(keep.any()):
            keep &= sd <= 2.0 * sd[keep].median()
    n, gy, gx = torch.nonzero(keep, as_tuple=True)
    if n.numel() == 0:
        return img.new_zeros((0, roi, roi))
    rows = (gy * step)[:, None] + torch.arange(roi)[None, :]
    cols = (gx * step)[:, None] + torch.arange(roi)[None, :]
    return _detrend(img[n[:, None, None], rows[:, :, None], cols[:, None, :]], order)


def scan_nps(
    image: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray | None = None,
    roi: int | None = None,
    pad: int = 4,
    *,
    pixel_size_mm: float | None = None,
    order: int = 2,
    region: str = "soft",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Radially averaged NPS of ``image`` over detrended homogeneous ROIs (:func:`homogeneous_rois`, in
    soft tissue or in air: ``region``).

    ROIs are ``roi`` pixels square (default 32, or 16 for slices smaller than 256), each zero-padded to
    ``pad * roi`` (finer frequency sampling of the same spectrum).

    Returns:
        ``(frequency in cycles/pixel, power, number of ROIs)``; empty arrays when no ROI qualifies.
    """
    if roi is None:
        roi = 32 if min(_as_slices(image).shape[-2:]) >= 256 else 16
    rois = homogeneous_rois(image, reference, roi, pixel_size_mm=pixel_size_mm, order=order, region=region)
    if len(rois) == 0:
        return np.zeros(0), np.zeros(0), 0
    return (*radial_power(rois, roi, pad), len(rois))


def radial_power(rois: torch.Tensor, roi: int, pad: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of detrended ``(K, roi, roi)`` ROIs zero-padded to ``pad * roi``.

    Returns:
        ``(frequency in cycles/pixel, power)``, in bins of ``1 / (pad * roi)`` up to Nyquist.
    """
    size = pad * roi
    power = (torch.fft.rfft2(rois.float(), s=(size, size)).abs() ** 2).mean(0).double().numpy() / (roi * roi)
    radius = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    edges = np.arange(0, 0.5 + 1e-9, 1.0 / size)
    which = np.digitize(radius, edges) - 1
    total = np.bincount(which.ravel(), power.ravel(), minlength=len(edges))[: len(edges) - 1]
    count = np.bincount(which.ravel(), minlength=len(edges))[: len(edges) - 1]
    return (edges[:-1] + edges[1:]) / 2, total / np.maximum(count, 1)


def nps_peak_frequency(freq: np.ndarray, power: np.ndarray) -> float:
    """Frequency of the NPS maximum (cycles/pixel), refined by a parabola through the top three samples."""
    if len(power) < 3:
        raise ValueError("power: need at least three NPS samples to find a peak")
    smooth = np.convolve(power, np.ones(3) / 3, mode="same")
    i = int(np.clip(np.argmax(smooth), 1, len(smooth) - 2))
    y0, y1, y2 = smooth[i - 1 : i + 2]
    denom = y0 - 2 * y1 + y2
    shift = 0.0 if denom >= 0 else 0.5 * (y0 - y2) / denom
    return float(freq[i] + np.clip(shift, -1, 1) * (freq[1] - freq[0]))
