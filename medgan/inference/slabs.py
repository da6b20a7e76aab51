"""Whole-volume inference in bounded memory: slabs of slices through MONAI's sliding window.

A volume ``(X, Y, Z)`` in HU is cut along Z into slabs. For 2D/2.5D nets a slab's slices become the
batch of :func:`monai.inferers.sliding_window_inference` (2.5D: neighbour slices as channels, edges
replicate-padded), so every window of every slice is batched together. For 3D nets a slab is one
``(1, 1, X, Y, Zs)`` input with a halo of half a window in Z on each side, and only the slab's own
slices are kept. Only one slab's normalised copy and the window buffers exist at a time; the HU output
is filled in place, so memory is the input + the output + one slab.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from monai.inferers import sliding_window_inference
from tqdm.auto import tqdm

from medgan.data.patches import stack_context
from medgan.errors import ConfigError
from medgan.transforms.intensity import HUNormalizer

BLEND_MODES = ("gaussian", "constant")


class _WindowMismatch(Exception):
    """The net did not map a window of unverified size to ``roi · scales``: find its size multiple."""


def round_up(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``n``."""
    return -(-n // multiple) * multiple


def slab_ranges(n: int, slab: int) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``slab`` slices covering ``range(n)``."""
    for start in range(0, n, slab):
        yield start, min(start + slab, n)


def gaussian_weights(roi: Sequence[int], sigma_scale: float = 0.125) -> torch.Tensor:
    """Separable Gaussian window weights ``(1, 1, *roi)``, sigma = ``sigma_scale · roi`` per axis, peak 1.

    MONAI's own map is clamped from below at ``max(min, 1e-3)``; in 2D/3D the product of the axes' tails
    falls under that floor along the image borders, where every window then gets the same weight and a
    voxel at one window's padded edge counts as much as one at another window's centre. Without the clamp
    the weights stay a product of 1D Gaussians (smallest ~1e-11 at 3D corners, well inside float32).
    """
    grids = []
    for n in roi:
        x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2.0
        grids.append(torch.exp(-0.5 * (x / (sigma_scale * n)) ** 2))
    w = grids[0]
    for g in grids[1:]:
        w = w[..., None] * g
    return w.float()[None, None]


class SlabInferer:
    """Runs a network over a whole HU volume, slab by slab, with Gaussian-blended sliding windows.

    Args:
        network: normalised ``(B, C, *roi)`` → ``(B, 1, *roi·scales)``; see :mod:`medgan.inference.backends`.
        normalizer: HU ↔ normalised map of the model (forward before the net, inverse after).
        input_mode: ``"2d"``, ``"2.5d"`` or ``"3d"``.
        context_slices: neighbours on each side for ``"2.5d"``.
        scales: the net's factor per spatial axis (2 entries for 2D nets, 3 for 3D).
        multiple: every window side is a multiple of this (the net's stride product); ``None`` = unknown:
            the real windows are run as they are and their outputs checked; when the net does not map
            them to ``roi · scales`` (or fails on them), ``probe()`` is called for the multiple and the
            slab is run again (probing every candidate costs several forward passes of a large net;
            checking the real windows costs nothing extra when they fit).
        probe: returns the net's size multiple; needed when ``multiple`` is ``None``.
        fixed_roi: the net takes exactly ``roi_size`` (dense layers, e.g. an MLP autoencoder or a VAE):
            windows are never resized; smaller images are padded up to it.
        roi_size: window size per net axis; ``None`` = the whole slice (2D) / whole slab (3D), rounded up to
            ``multiple``; larger than the image is clipped to the (rounded) image size.
        overlap: fraction of a window shared with its neighbour (MONAI ``overlap``).
        blend: ``"gaussian"`` (seam-free weighting, sigma = 0.125·roi) or ``"constant"`` (plain average).
        batch_size: windows per forward pass.
        slab_slices: slices per slab (bounds memory); for 3D the halo comes on top.
        progress: show a tqdm bar over slices.
    """

    def __init__(
        self,
        network: Callable[[torch.Tensor], torch.Tensor],
        normalizer: HUNormalizer,
        input_mode: str = "2d",
        context_slices: int = 0,
        scales: Sequence[int] = (1, 1),
        multiple: int | None = 1,
        probe: Callable[[], int] | None = None,
        fixed_roi: bool = False,
        roi_size: Sequence[int] | None = None,
        overlap: float = 0.25,
        blend: str = "gaussian",
        batch_size: int = 4,
        slab_slices: int = 32,
        progress: bool = False,
    ) -> None:
        if blend not in BLEND_MODES:
            raise ConfigError(f"--blend: got '{blend}', allowed: {list(BLEND_MODES)}")
        if not 0.0 <= overlap < 1.0:
            raise ConfigError(f"--overlap must be in [0, 1), got {overlap}")
        if batch_size < 1 or slab_slices < 1:
            raise ConfigError(f"--batch-size and slab size must be >= 1, got {batch_size} and {slab_slices}")
        dims = 3 if input_mode == "3d" else 2
        if roi_size is not None and (len(roi_size) != dims or min(roi_size) < 1):
            raise ConfigError(f"roi_size must be {dims} positive ints for input_mode '{input_mode}', got {roi_size}")
        self.network = network
        self.normalizer = normalizer
        self.input_mode = input_mode
        self.context = context_slices if input_mode == "2.5d" else 0
        self.scales = tuple(int(s) for s in scales)
        if multiple is None and probe is None:
            raise ValueError("SlabInferer needs a size multiple or a probe that finds it")
        self.multiple = None if multiple is None else int(multiple)
        self.probe = probe
        if fixed_roi and roi_size is None:
            raise ValueError("fixed_roi needs roi_size (the net's input size)")
        self.fixed_roi = fixed_roi
        self._fitting: set[tuple[int, ...]] = set()
        self.roi_size = None if roi_size is None else tuple(int(r) for r in roi_size)
        self.overlap = float(overlap)
        self.blend = blend
        self.batch_size = int(batch_size)
        self.slab_slices = int(slab_slices)
        self.progress = progress
        self._weights: dict[tuple[int, ...], torch.Tensor] = {}

    @property
    def in_channels(self) -> int:
        return 2 * self.context + 1

    def _checked(self, roi: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
        """The network, checking that it maps each ``roi`` window to ``roi · scales`` (not yet known to fit).

        The first real batch is the test: a separate trial forward on zeros would double the work of a
        one-slice file. A mismatch or a shape error raises :class:`_WindowMismatch`.
        """
        want = tuple(r * s for r, s in zip(roi, self.scales))

        def run(x: torch.Tensor) -> torch.Tensor:
            try:
                y = self.network(x)
            except (RuntimeError, ValueError) as err:
                raise _WindowMismatch from err
            if tuple(y.shape[2:]) != want:
                raise _WindowMismatch
            return y

        return run

    def _roi(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        if self.fixed_roi:
            return self.roi_size  # type: ignore[return-value]
        if self.multiple is None:
            shape = tuple(int(n) for n in image_shape)
            return shape if self.roi_size is None else tuple(min(r, n) for r, n in zip(self.roi_size, shape))
        full = [round_up(n, self.multiple) for n in image_shape]
        if self.roi_size is None:
            return tuple(full)
        return tuple(min(round_up(r, self.multiple), f) for r, f in zip(self.roi_size, full))

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        roi = self._roi(x.shape[2:])
        weights = None
        if self.blend == "gaussian":
            if roi not in self._weights:
                self._weights[roi] = gaussian_weights(roi)
            weights = self._weights[roi]
        unverified = self.multiple is None and not self.fixed_roi and roi not in self._fitting
        network = self._checked(roi) if unverified else self.network
        # inference_mode, not only no_grad: no version counters or view tracking on any tensor of the
        # windows (MONAI's in-place blending then runs on inference tensors, which is allowed inside)
        try:
            with torch.inference_mode():
                y = sliding_window_inference(
                    x, roi, self.batch_size, network, overlap=self.overlap,
                    mode=self.blend, padding_mode="replicate", roi_weight_map=weights,
                )
        except _WindowMismatch:
            self.multiple = int(self.probe())  # type: ignore[misc]
            return self._windows(x)
        if unverified:
            self._fitting.add(roi)
        return y

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int, int]:
        """``(X, Y, Z)`` of the result for an input of spatial ``shape``."""
        scales = self.scales if len(self.scales) == 3 else (*self.scales, 1)
        return tuple(n * s for n, s in zip(shape, scales))  # type: ignore[return-value]

    def __call__(self, hu: torch.Tensor) -> torch.Tensor:
        """Infer ``hu`` ``(X, Y, Z)`` float32 HU; returns ``(X·s, Y·s, Z·s_z)`` float32 HU on the CPU."""
        if hu.ndim != 3:
            raise ValueError(f"expected an (X, Y, Z) volume, got shape {tuple(hu.shape)}")
        hu = hu.float()
        out = torch.empty(self.output_shape(hu.shape), dtype=torch.float32)
        n = hu.shape[-1]
        bar = tqdm(total=n, unit="slice", desc="slices", disable=not self.progress, leave=False)
        try:
            for start, stop in slab_ranges(n, self.slab_slices):
                if self.input_mode == "3d":
                    self._slab_3d(hu, out, start, stop)
                else:
                    self._slab_2d(hu, out, start, stop)
                bar.update(stop - start)
        finally:
            bar.close()
        return out

    def _slab_2d(self, hu: torch.Tensor, out: torch.Tensor, start: int, stop: int) -> None:
        x = self.normalizer.forward(stack_context(hu, start, stop, self.context))  # (S, C, X, Y)
        y = self._windows(x.contiguous())  # (S, 1, X·s, Y·s)
        out[:, :, start:stop] = self.normalizer.inverse(y[:, 0].float()).permute(1, 2, 0)

    def _slab_3d(self, hu: torch.Tensor, out: torch.Tensor, start: int, stop: int) -> None:
        n = hu.shape[-1]
        roi_z = self.roi_size[2] if self.roi_size is not None else self.slab_slices
        # A halo of half a window lets the kept slices see the same context as in one-piece inference.
        halo = 0 if stop - start >= n else round_up(roi_z, self.multiple or 1) // 2
        lo, hi = max(0, start - halo), min(n, stop + halo)
        x = self.normalizer.forward(hu[:, :, lo:hi])[None, None]
        y = self._windows(x.contiguous())[0, 0]
        sz = self.scales[2]
        kept = y[:, :, (start - lo) * sz:(stop - lo) * sz]
        out[:, :, start * sz:stop * sz] = self.normalizer.inverse(kept.float())
