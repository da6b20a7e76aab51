"""Anomaly maps: per-voxel reconstruction error of an autoencoder of normal anatomy, in HU.

An AE/VAE trained on normal scans only (``configs/anomaly_ae.yaml``, ``configs/anomaly_vae.yaml``)
reconstructs normal tissue well and anything it never saw poorly, so ``|scan - reconstruction|`` is high
on anomalies. The reconstruction runs through :class:`medgan.inference.Predictor` (sliding windows over the
whole scan, the package's normalisation); a VAE decodes its mean ``mu`` so maps are deterministic.
The error is smoothed with a Gaussian of ``sigma_mm`` (isolated noisy voxels are not anomalies) and set to
0 outside the body, where the table, air and the field-of-view edge carry errors of no interest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor

from medgan.errors import ConfigError, ModelPackageError
from medgan.io.geometry import voxel_spacing

#: Recipes whose package reconstructs its input (``dae`` trained with ``pairing: single``, ``vae``).
ANOMALY_RECIPES = ("dae", "vae")
#: Autoencoder nets of the zoo (a package of any recipe running one of them is accepted too).
AUTOENCODER_NETS = ("ae_undercomplete", "ae_overcomplete", "ae_sparse", "ae_deep", "ae_conv", "dae", "vae",
                    "anomaly_restorer")


def body_mask(hu: torch.Tensor | np.ndarray, threshold_hu: float = -500.0) -> np.ndarray:
    """The patient's body: voxels above ``threshold_hu``, largest 3D connected component, holes (lungs,
    airways) filled slice by slice.

    Args:
        hu: ``(1, X, Y, Z)`` or ``(X, Y, Z)`` HU.
        threshold_hu: tissue/air boundary (default -500 HU, between air at -1000 and fat at -100).

    Returns:
        ``(X, Y, Z)`` bool.
    """
    from scipy import ndimage

    data = hu.detach().cpu().numpy() if isinstance(hu, torch.Tensor) else np.asarray(hu)
    data = data.reshape(data.shape[-3:])
    tissue = data > threshold_hu
    labels, count = ndimage.label(tissue)
    if count == 0:
        return tissue
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    for k in range(body.shape[2]):  # lungs are closed in an axial slice, not always in 3D (open airways)
        body[:, :, k] = ndimage.binary_fill_holes(body[:, :, k])
    return body


def body_region(hu: torch.Tensor, body_hu: float | None) -> torch.Tensor:
    """``(1, X, Y, Z)`` bool :func:`body_mask` of a ``(1, X, Y, Z)`` scan; every voxel for ``body_hu=None``."""
    if body_hu is None:
        return torch.ones(tuple(hu.shape), dtype=torch.bool)
    return torch.from_numpy(body_mask(hu, body_hu))[None]


def as_map(values: torch.Tensor, volume: torch.Tensor, description: str) -> MetaTensor:
    """``(1, X, Y, Z)`` float32 map with the scan's affine and meta, tagged with the model that made it."""
    affine = volume.affine if isinstance(volume, MetaTensor) else torch.eye(4, dtype=torch.float64)
    meta = dict(volume.meta) if isinstance(volume, MetaTensor) else {}
    meta.pop("affine", None)
    meta["medgan_model"] = description
    return MetaTensor(torch.as_tensor(values).float().contiguous(), affine=torch.as_tensor(affine, dtype=torch.float64),
                      meta=meta)


def smooth_mm(volume: torch.Tensor, affine: torch.Tensor | np.ndarray, sigma_mm: float) -> torch.Tensor:
    """``(1, X, Y, Z)`` float32 ``volume`` smoothed by MONAI's Gaussian of ``sigma_mm`` (per axis in voxels from
    the affine's spacing); returned unchanged (as float32) for ``sigma_mm == 0``."""
    from monai.transforms import GaussianSmooth

    volume = torch.as_tensor(volume).float()
    if sigma_mm <= 0:
        return volume
    spacing = voxel_spacing(affine)
    return torch.as_tensor(GaussianSmooth(sigma=[sigma_mm / s for s in spacing])(volume)).float()


#: which deviations count: ``both`` (|scan - restoration|), ``bright`` (scan above it), ``dark`` (below)
POLARITIES = ("both", "bright", "dark")


def parse_polarity(polarity: str) -> str:
    if polarity not in POLARITIES:
        raise ConfigError(f"polarity: got '{polarity}', allowed: {', '.join(POLARITIES)}")
    return polarity


def signed_residual(difference: torch.Tensor, polarity: str = "both") -> torch.Tensor:
    """``scan - restoration`` -> the residual that counts: its magnitude, its positive or its negative part."""
    if polarity == "bright":
        return difference.clamp(min=0)
    if polarity == "dark":
        return (-difference).clamp(min=0)
    return difference.abs()


def model_fingerprint(model: str | os.PathLike | tuple) -> str:
    """SHA-256 of a package's weights file (or a ``.ckpt``), to tie thresholds to the model they fit.

    ``""`` for an in-memory ``(manifest, state)`` model.
    """
    if isinstance(model, tuple):
        return ""
    path = Path(model)
    if path.is_dir():
        path = path / "model.safetensors"
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class AnomalyResult:
    """What :meth:`AnomalyMapper.compute` gives for one scan (all ``(1, X, Y, Z)`` on the scan's grid).

    Attributes:
        map: float32 HU error, smoothed, 0 outside ``body``; meta and affine of the scan.
        reconstruction: float32 HU reconstruction by the autoencoder.
        body: bool region in which the map is defined.
    """

    map: MetaTensor
    reconstruction: MetaTensor
    body: torch.Tensor


class AnomalyMapper:
    """Reconstruction-error maps from an AE/VAE model package.

    Args:
        model: a package folder, a ``.ckpt`` or an in-memory ``(manifest, state_dict)``.
        sigma_mm: Gaussian smoothing of the error, in mm (0: none).
        body_hu: HU threshold of :func:`body_mask` (``None``: the whole volume counts).
        polarity: ``both`` | ``bright`` | ``dark`` (:func:`signed_residual`).
        **predictor_kw: ``device``, ``batch_size``, ``overlap``, ``roi_size``, ``progress`` ... of
            :class:`medgan.inference.Predictor`.

    Raises:
        ModelPackageError: the package is not an autoencoder (recipe not in :data:`ANOMALY_RECIPES` and net
            not in :data:`AUTOENCODER_NETS`), or cannot be loaded.
    """

    def __init__(self, model: str | os.PathLike | tuple[dict[str, Any], dict[str, Any]], *,
                 sigma_mm: float = 1.0, body_hu: float | None = -500.0, polarity: str = "both",
                 **predictor_kw: Any) -> None:
        from medgan.inference import Predictor
        from medgan.package import load_model_package

        manifest, state = model if isinstance(model, tuple) else load_model_package(model)
        role = manifest["infer_net"]
        net_cfg = dict(manifest["nets"][role])
        if manifest["recipe"] not in ANOMALY_RECIPES and net_cfg.get("type") not in AUTOENCODER_NETS:
            raise ModelPackageError(
                f"--model {model if not isinstance(model, tuple) else 'model'}: recipe '{manifest['recipe']}' "
                f"(net '{net_cfg.get('type')}') is not an autoencoder; anomaly maps need a package of recipe "
                f"{' or '.join(ANOMALY_RECIPES)} (e.g. trained with configs/anomaly_ae.yaml)"
            )
        if net_cfg.get("type") == "vae":
            # decode mu, not a sample of z: the same scan must always give the same map
            manifest = {**manifest, "nets": {**manifest["nets"], role: {**net_cfg, "use_mean_at_inference": True}}}
        if sigma_mm < 0:
            raise ModelPackageError(f"sigma_mm: got {sigma_mm}; must be >= 0")
        self.sigma_mm = float(sigma_mm)
        self.body_hu = body_hu
        self.polarity = parse_polarity(polarity)
        self.predictor = Predictor((manifest, state), **predictor_kw)
        self.manifest = manifest
        self.fingerprint = model_fingerprint(model)

    @property
    def description(self) -> str:
        """The model's description (for DICOM AlgorithmName, thresholds files and figures)."""
        return self.predictor.description

    def _hu_range(self) -> tuple[float, float]:
        norm = self.predictor.normalizer
        if norm.type == "window":
            return norm.hu_min, norm.hu_max
        return -float("inf"), float("inf")

    def compute(self, volume: MetaTensor) -> AnomalyResult:
        """Map one scan.

        Args:
            volume: ``(1, X, Y, Z)`` HU as :func:`medgan.io.read_volume` returns; not modified.

        Returns:
            :class:`AnomalyResult`; the map is ``|clip(scan) - clip(reconstruction)|`` in HU, both clipped to
            the normalisation window (the net cannot represent HU outside it, which is no anomaly).
        """
        recon = self.predictor.predict(volume)
        low, high = self._hu_range()
        scan = volume.as_tensor() if isinstance(volume, MetaTensor) else torch.as_tensor(volume)
        # both clipped to the window: an untrained or diverging net can output far beyond it
        error = signed_residual(scan.float().clamp(low, high) - recon.as_tensor().float().clamp(low, high),
                                self.polarity)
        affine = volume.affine if isinstance(volume, MetaTensor) else torch.eye(4, dtype=torch.float64)
        error = smooth_mm(error, affine, self.sigma_mm)
        body = body_region(scan, self.body_hu)
        anomaly = as_map(torch.where(body, error, torch.zeros(())), volume, self.description)
        return AnomalyResult(map=anomaly, reconstruction=recon, body=body)

    __call__ = compute
