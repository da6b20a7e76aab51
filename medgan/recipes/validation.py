"""Validation on what users run: whole validation cases through ``medgan-infer``'s inferer, scored in HU.

Each validation batch is one case (:class:`medgan.data.CTVolumeDataset`: ``source_hu``, ``target_hu``,
``affine``). The recipe's package (the manifest and weights that ``model/`` would hold) is loaded into a
:class:`medgan.inference.Predictor`, exactly as ``medgan-infer --model`` loads a package, and run over
the whole case: same slab inferer, windows, blending, orientation handling. The result is scored by
:func:`medgan.metrics.windowed_metrics` (per axial slice, mean per case) against the target, and so is the
input (interpolated to the target grid for super-resolution), so the gain over the input is logged too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medgan.metrics import windowed_metrics


class VolumeValidator:
    """Runs and scores one validation case at a time for a recipe.

    Args:
        window: ``(low, high)`` HU of the metric window.
        patch_size: the training patch (source voxels); sizes the crops handed to the diversity monitor.
        scale: the SR factor (1 for dose pairs).
        diversity_samples: how many crops of each output the diversity monitor gets.
    """

    def __init__(self, window: tuple[float, float], patch_size: list[int], scale: int,
                 diversity_samples: int) -> None:
        self.window = window
        self.patch_size = list(patch_size)
        self.scale = int(scale)
        self.diversity_samples = int(diversity_samples)
        self.predictor: Any = None

    def start(self, manifest: dict[str, Any], state: dict[str, torch.Tensor], device: torch.device) -> None:
        """Load the package ``(manifest, state)`` as ``medgan-infer`` does (call at each validation start)."""
        from medgan.inference.predictor import Predictor

        dev = device if device.type in ("cpu", "cuda") else torch.device("cpu")
        # building the net must not draw from the global RNG: training continues from the same stream
        # whether or not a validation ran in between (resume relies on it)
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            self.predictor = Predictor((manifest, {k: v.detach() for k, v in state.items()}), device=dev)

    def stop(self) -> None:
        self.predictor = None

    def infer(self, batch: dict[str, Any]) -> torch.Tensor:
        """The whole case ``batch`` (one case) through the inferer -> ``(1, X', Y', Z')`` float32 HU (CPU)."""
        from monai.data import MetaTensor

        if self.predictor is None:
            raise RuntimeError("VolumeValidator.start() was not called before infer()")
        source = MetaTensor(batch["source_hu"][0].detach().cpu(), affine=batch["affine"][0].detach().cpu())
        with torch.random.fork_rng(devices=[]):
            return self.predictor.predict(source).as_tensor()

    def input_on_target_grid(self, source_hu: torch.Tensor, target_shape: tuple[int, ...]) -> torch.Tensor:
        """The input ``(1, X, Y, Z)`` HU on the target grid: itself, or bicubic in-plane / trilinear (SR)."""
        if tuple(source_hu.shape[1:]) == tuple(target_shape):
            return source_hu
        if source_hu.shape[-1] == target_shape[-1]:  # in-plane SR: bicubic per slice
            slices = source_hu.permute(3, 0, 1, 2)  # (Z, 1, X, Y)
            up = F.interpolate(slices, size=target_shape[:2], mode="bicubic", align_corners=False)
            return up.permute(1, 2, 3, 0)
        return F.interpolate(source_hu[None], size=target_shape, mode="trilinear", align_corners=False)[0]

    def score(self, output_hu: torch.Tensor, batch: dict[str, Any]) -> dict[str, float]:
        """``{psnr, ssim, rmse, input_psnr, input_ssim, input_rmse}`` of the case (mean over its slices)."""
        target = batch["target_hu"][0].detach().cpu().float()
        source = self.input_on_target_grid(batch["source_hu"][0].detach().cpu().float(), tuple(target.shape[1:]))
        out = windowed_metrics(output_hu[None], target[None], self.window)
        base = windowed_metrics(source[None], target[None], self.window)
        return {**{k: float(v[0]) for k, v in out.items()}, **{f"input_{k}": float(v[0]) for k, v in base.items()}}

    def panel_row(self, output_hu: torch.Tensor, batch: dict[str, Any], with_target: bool = True) -> dict[str, np.ndarray]:
        """The centre slice of input, output (and target) in HU, for the validation panel."""
        def centre(v: torch.Tensor) -> np.ndarray:
            return v[..., v.shape[-1] // 2].detach().cpu().float().numpy()

        row = {"input": centre(batch["source_hu"][0]), "output": centre(output_hu)}
        if with_target:
            row["target"] = centre(batch["target_hu"][0])
        return row

    def diversity_crops(self, output_norm: torch.Tensor) -> torch.Tensor:
        """Up to ``diversity_samples`` centred training-size crops of the output ``(1, X, Y, Z)``
        (normalised): evenly spaced slices in 2D, the centre patch in 3D -> ``(N, 1, *patch·scale)``."""
        size = [p * self.scale for p in self.patch_size]
        vol = output_norm[0]
        if len(size) == 3:
            starts = [max((n - s) // 2, 0) for n, s in zip(vol.shape, size)]
            crop = vol[starts[0]:starts[0] + size[0], starts[1]:starts[1] + size[1], starts[2]:starts[2] + size[2]]
            return crop[None, None]
        zs = np.unique(np.linspace(0, vol.shape[-1] - 1, min(self.diversity_samples, vol.shape[-1])).round().astype(int))
        x0, y0 = max((vol.shape[0] - size[0]) // 2, 0), max((vol.shape[1] - size[1]) // 2, 0)
        return vol[x0:x0 + size[0], y0:y0 + size[1], zs].permute(2, 0, 1)[:, None]
