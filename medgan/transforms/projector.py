"""Parallel-beam CT geometry: a batched forward projector and filtered back-projection (FBP) in torch.

Both operators are precomputed sparse (CSR) matrices applied with torch SpMM, so a batch of slices costs
one sparse-dense product on any device. Measured on these machines (see ``../../scripts/bench_simulate.py``
and ``/work/shared/ANCHORS.md``), this beats scikit-image's rotate-and-interpolate ``radon``/``iradon`` by
more than an order of magnitude once the matrices are built, and building them is done once per geometry
(:func:`get_projector` caches them in memory).

Geometry (all lengths in pixels; the caller converts mm): a square ``N x N`` image whose rotation centre
is the array centre ``(N - 1) / 2`` (so a 90 degree rotation is an exact index permutation), views at
``theta_v = pi * v / views`` for ``v = 0 .. views - 1``, and ``detector_bins`` unit-spaced bins centred on
the rotation axis. Pixel ``[i, j]`` sits at ``x = j - c, y = i - c``; a ray at angle ``theta`` and detector
position ``t`` is the line ``x cos(theta) + y sin(theta) = t``.

- Forward projection: Joseph's method (step one pixel along the ray's dominant axis, linear
  interpolation across it, path length ``1 / max(|cos|, |sin|)`` per step). It has no Moire pattern,
  unlike a pixel-driven projector, which matters because the noise variance is ``exp(p)``.
- Back-projection: pixel-driven with linear interpolation on the detector, as ``skimage.iradon`` does, so
  the noise texture and sigma of FBP match the scikit-image reference.

Memory is halved by symmetry: when ``views`` is even, view ``v + views/2`` is view ``v`` of the image
rotated by 90 degrees, so only the first half of the views is stored and both halves are applied as one
SpMM with twice the columns.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import Literal

import torch

from medgan.errors import ConfigError

FilterName = Literal["ramp", "shepp-logan", "cosine", "hamming", "hann"]
FILTERS: tuple[str, ...] = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def min_detector_bins(size: int) -> int:
    """Smallest odd bin count whose detector covers the image diagonal plus the interpolation neighbour."""
    half = math.ceil((size - 1) / 2 * math.sqrt(2) + 1)
    return 2 * half + 1


def ramp_filter(num_bins: int, filter_name: str = "ramp", *, device: torch.device | None = None) -> torch.Tensor:
    """Frequency response of the FBP filter for ``num_bins`` zero-padded detector samples.

    Built from the discrete spatial Ram-Lak kernel (Kak & Slaney, eq. 3.61: ``h[0] = 1/4``,
    ``h[n odd] = -1/(pi n)^2``) rather than ``|f|`` sampled in frequency, which would leave a DC offset;
    windowed variants multiply it by the usual apodisation (``f`` in cycles per bin).

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
    return response.to(device=device, dtype=torch.float32)


def _csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    index_dtype = torch.int32 if val.numel() < 2**31 - 1 else torch.int64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta": it is what we rely on, knowingly
        return torch.sparse_csr_tensor(
            crow.to(index_dtype), col.to(index_dtype), val, size=shape, check_invariants=False
        )


class ParallelBeamProjector:
    """Precomputed parallel-beam forward projector and FBP for square ``size x size`` slices.

    Args:
        size: image side ``N`` in pixels.
        views: number of projection angles over 180 degrees.
        detector_bins: number of unit-width detector bins; default (and minimum) :func:`min_detector_bins`.
        device: where the matrices live and the products run.
        symmetric: store half the views and use the 90 degree rotation (needs an even ``views``).

    Line integrals are in "attenuation per pixel x pixels": project ``mu * pixel_size`` to get the
    dimensionless ``p`` of Beer-Lambert's law, and FBP returns the same units per pixel.
    """

    def __init__(
        self,
        size: int,
        views: int = 720,
        detector_bins: int | None = None,
        device: torch.device | str | None = None,
        symmetric: bool = True,
    ) -> None:
        if size < 2:
            raise ConfigError(f"size: got {size}, allowed: an image side of at least 2 pixels")
        if views < 2:
            raise ConfigError(f"views: got {views}, allowed: at least 2 projection angles")
        min_bins = min_detector_bins(size)
        if detector_bins is None:
            detector_bins = min_bins
        if detector_bins < min_bins:
            raise ConfigError(
                f"detector_bins: got {detector_bins} for a {size}x{size} image, allowed: >= {min_bins} "
                "(the detector must cover the image diagonal)"
            )
        self.size = int(size)
        self.views = int(views)
        self.detector_bins = int(detector_bins)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.groups = 2 if symmetric and views % 2 == 0 else 1
        self.stored_views = self.views // self.groups
        angles = torch.arange(self.stored_views, dtype=torch.float64) * math.pi / self.views
        self._cos, self._sin = torch.cos(angles), torch.sin(angles)
        self._fp = self._build_forward()
        self._bp = self._build_backward()
        self._filters: dict[tuple[str, int], torch.Tensor] = {}

    @property
    def nbytes(self) -> int:
        """Memory held by the two sparse matrices."""
        total = 0
        for m in (self._fp, self._bp):
            total += sum(t.numel() * t.element_size() for t in (m.crow_indices(), m.col_indices(), m.values()))
        return total

    # ------------------------------------------------------------------ construction
    def _build_forward(self) -> torch.Tensor:
        """Joseph's projector: rows = (view, bin) rays, columns = pixels ``i * N + j``.

        Vectorised over chunks of views (few large tensor ops: a per-view loop of small ops is slow when
        the cores are shared).
        """
        n, nb, nv = self.size, self.detector_bins, self.stored_views
        c = (n - 1) / 2
        t = (torch.arange(nb, dtype=torch.float64) - (nb - 1) / 2)[None, :, None, None]  # (1, D, 1, 1)
        steps = (torch.arange(n, dtype=torch.float64) - c)[None, None, :, None]  # coordinate along the step axis
        step_idx = torch.arange(n)[None, None, :, None]
        offsets = torch.tensor([0, 1])
        chunk = max(1, 2**23 // (nb * n * 2))
        counts, cols, vals = [], [], []
        for v0 in range(0, nv, chunk):
            cos, sin = self._cos[v0 : v0 + chunk], self._sin[v0 : v0 + chunk]
            along_x = sin.abs() >= cos.abs()  # the ray runs closer to the x axis: step over columns
            a = torch.where(along_x, cos, sin)[:, None, None, None]
            b = torch.where(along_x, sin, cos)[:, None, None, None]
            # solve x cos + y sin = t for the fractional index across the stepping axis: (V, D, N, 1)
            across = (t - steps * a) / b + c
            lower = torch.floor(across)
            frac = (across - lower).float()
            idx = lower.long() + offsets  # (V, D, N, 2): the two interpolation neighbours
            weight = torch.cat([1.0 - frac, frac], -1) / b.abs().float()  # path length per step is 1/|b|
            keep = (idx >= 0) & (idx < n) & (weight > 0)
            # stepping over columns, `across` is the row i; over rows, it is the column j
            pix = torch.where(along_x[:, None, None, None], idx * n + step_idx, step_idx * n + idx)
            ray = torch.arange(cos.numel() * nb).reshape(-1, nb, 1, 1).expand_as(pix)
            # CSR wants each ray's columns sorted: (ray, row, neighbour) order already is for row-stepping
            # views; column-stepping views need a sort by pixel index within the ray
            key = (ray * (n * n) + pix)[keep]
            order = torch.argsort(key)
            cols.append(pix[keep][order].int())
            vals.append(weight[keep][order])
            counts.append(keep.sum(dim=(2, 3)).reshape(-1))
        crow = torch.zeros(nv * nb + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(torch.cat(counts), 0)
        return _csr(crow, torch.cat(cols), torch.cat(vals), (nv * nb, n * n)).to(self.device)

    def _build_backward(self) -> torch.Tensor:
        """Pixel-driven back-projector: rows = pixels, two entries per stored view (linear interpolation)."""
        n, nb, nv = self.size, self.detector_bins, self.stored_views
        c = (n - 1) / 2
        coords = torch.arange(n, dtype=torch.float64) - c
        y, x = torch.meshgrid(coords, coords, indexing="ij")
        x, y = x.reshape(-1, 1), y.reshape(-1, 1)
        col = torch.empty((n * n, nv, 2), dtype=torch.int64 if nv * nb >= 2**31 else torch.int32)
        val = torch.empty((n * n, nv, 2), dtype=torch.float32)
        chunk = max(1, 2**24 // (n * n))
        for v0 in range(0, nv, chunk):
            v1 = min(nv, v0 + chunk)
            u = x * self._cos[v0:v1] + y * self._sin[v0:v1] + (nb - 1) / 2  # (N*N, chunk) bin coordinate
            lower = torch.floor(u)
            frac = (u - lower).float()
            base = lower.long() + torch.arange(v0, v1)[None, :] * nb
            col[:, v0:v1, 0] = base
            col[:, v0:v1, 1] = base + 1
            val[:, v0:v1, 0] = 1.0 - frac
            val[:, v0:v1, 1] = frac
        crow = torch.arange(n * n + 1, dtype=torch.int64) * (2 * nv)
        return _csr(crow, col.reshape(-1), val.reshape(-1), (n * n, nv * nb)).to(self.device)

    # ------------------------------------------------------------------ application
    def _rotate_image(self, img: torch.Tensor) -> torch.Tensor:
        """``img`` composed with a +90 degree rotation: views ``v + V/2`` of ``img`` = views ``v`` of this."""
        return img.flip(-1).transpose(-2, -1)

    def _unrotate_image(self, img: torch.Tensor) -> torch.Tensor:
        """Adjoint of :meth:`_rotate_image` (an index permutation, so also its inverse)."""
        return img.transpose(-2, -1).flip(-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Line integrals of a batch of slices.

        Args:
            images: ``(B, N, N)`` attenuation per pixel (``mu * pixel_size``), any float dtype.

        Returns:
            Sinograms ``(B, views, detector_bins)`` float32.
        """
        b = self._check_images(images)
        stack = [images] if self.groups == 1 else [images, self._rotate_image(images)]
        x = torch.cat(stack, 0).reshape(self.groups * b, -1).to(self._fp.device, torch.float32)
        sino = (self._fp @ x.T.contiguous()).T  # (groups*B, stored_views*D)
        sino = sino.reshape(self.groups, b, self.stored_views, self.detector_bins)
        return sino.permute(1, 0, 2, 3).reshape(b, self.views, self.detector_bins)

    def backproject(self, sinograms: torch.Tensor) -> torch.Tensor:
        """Unfiltered back-projection (sum over views, linear interpolation on the detector).

        Args:
            sinograms: ``(B, views, detector_bins)``.

        Returns:
            ``(B, N, N)`` float32 (not scaled by ``pi / views``; :meth:`fbp` does that).
        """
        if sinograms.ndim != 3 or sinograms.shape[1:] != (self.views, self.detector_bins):
            raise ValueError(
                f"sinograms: expected shape (B, {self.views}, {self.detector_bins}), got {tuple(sinograms.shape)}"
            )
        b = sinograms.shape[0]
        s = sinograms.to(self._bp.device, torch.float32).reshape(b, self.groups, self.stored_views * self.detector_bins)
        s = s.permute(1, 0, 2).reshape(self.groups * b, -1)
        img = (self._bp @ s.T.contiguous()).T.reshape(self.groups, b, self.size, self.size)
        out = img[0]
        if self.groups == 2:
            out = out + self._unrotate_image(img[1])
        return out

    def filter(self, sinograms: torch.Tensor, filter_name: str = "ramp") -> torch.Tensor:
        """Ramp-type filtering along the detector with zero padding to a power of two >= 2 bins (no wrap)."""
        padded = max(64, 2 ** math.ceil(math.log2(2 * self.detector_bins)))
        key = (filter_name, padded)
        if key not in self._filters:
            self._filters[key] = ramp_filter(padded, filter_name, device=sinograms.device)
        spectrum = torch.fft.rfft(sinograms.float(), n=padded, dim=-1) * self._filters[key].to(sinograms.device)
        return torch.fft.irfft(spectrum, n=padded, dim=-1)[..., : self.detector_bins]

    def fbp(self, sinograms: torch.Tensor, filter_name: str = "ramp") -> torch.Tensor:
        """Filtered back-projection of ``(B, views, detector_bins)`` line integrals -> ``(B, N, N)``."""
        return self.backproject(self.filter(sinograms, filter_name)) * (math.pi / self.views)

    def _check_images(self, images: torch.Tensor) -> int:
        if images.ndim != 3 or images.shape[1:] != (self.size, self.size):
            raise ValueError(f"images: expected shape (B, {self.size}, {self.size}), got {tuple(images.shape)}")
        return images.shape[0]


_CACHE: OrderedDict[tuple, ParallelBeamProjector] = OrderedDict()
_CACHE_SIZE = 2  # a 512x512, 720-view projector holds ~3 GB: keep few


def get_projector(
    size: int, views: int = 720, detector_bins: int | None = None, device: torch.device | str | None = None
) -> ParallelBeamProjector:
    """A cached :class:`ParallelBeamProjector` (built once per geometry and device, least recently used kept)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    bins = detector_bins if detector_bins is not None else min_detector_bins(size)
    key = (int(size), int(views), int(bins), str(dev))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    projector = ParallelBeamProjector(size, views, bins, dev)
    _CACHE[key] = projector
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return projector


def clear_projector_cache() -> None:
    """Free the cached operators (they can hold gigabytes at 512x512)."""
    _CACHE.clear()
