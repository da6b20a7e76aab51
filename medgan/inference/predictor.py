"""``Predictor``: a model package applied to a whole CT volume, HU in → HU out, geometry kept.

>>> from medgan.io import read_volume, write_volume
>>> pred = Predictor("runs/cyclegan/model")
>>> full = pred.predict(read_volume("low_dose_series/"))      # MetaTensor (1, X, Y, Z) HU
>>> write_volume(full, "denoised/", reference=low, description=pred.description)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor

from medgan.data.orientation import reorient
from medgan.errors import ConfigError, InputError, ModelPackageError
from medgan.inference.backends import OnnxBackend, TorchBackend, resolve_device
from medgan.inference.geometry import upscaled_affine
from medgan.inference.loading import fixed_size, in_channels, load_generator, net_geometry, probe_net
from medgan.inference.onnx_export import export_bytes, read_onnx
from medgan.inference.slabs import SlabInferer
from medgan.io.geometry import voxel_spacing
from medgan.transforms.intensity import build_normalizer

ModelSource = str | os.PathLike | tuple[dict[str, Any], dict[str, Any]]
BACKENDS = ("torch", "onnx")


class Predictor:
    """Runs the generator of a model package over volumes with sliding windows and Gaussian blending.

    Args:
        model: a package folder (``model.safetensors`` + ``medgan.yaml``), a Lightning ``.ckpt``, an ``.onnx``
            file written by ``medgan-export`` (onnx backend only) or an in-memory ``(manifest, state_dict)``.
        device: ``"auto"`` | ``"cpu"`` | ``"cuda[:N]"`` (torch backend).
        batch_size: windows per forward pass.
        overlap: window overlap fraction in ``[0, 1)``.
        blend: ``"gaussian"`` or ``"constant"`` weighting of overlapping windows.
        roi_size: window size: ``None`` = whole slices for 2D/2.5D nets and the package's ``patch_size``
            (else 64³) for 3D nets; ``"patch"`` = the package's ``patch_size``; ``"full"`` = whole slices /
            whole slabs; or explicit ints (2 for 2D/2.5D, 3 for 3D).
        backend: ``"torch"`` or ``"onnx"`` (onnxruntime; a package is exported in memory first).
        precision: torch backend: ``"auto"`` (fp16 autocast on CUDA, float32 elsewhere), ``"32"``, ``"bf16"``
            or ``"16"``; the onnx backend runs the exported float32 graph.
        slab_slices: slices processed at once; bounds memory on long volumes.
        progress: tqdm bar over slices.
    """

    def __init__(
        self,
        model: ModelSource,
        *,
        device: str | torch.device = "auto",
        batch_size: int = 4,
        overlap: float = 0.25,
        blend: str = "gaussian",
        roi_size: str | Sequence[int] | None = None,
        backend: str = "torch",
        precision: str = "auto",
        slab_slices: int = 32,
        progress: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"--backend: got '{backend}', allowed: {list(BACKENDS)}")
        if backend == "onnx" and precision not in ("auto", "32"):
            raise ConfigError(f"--precision {precision}: the onnx backend runs float32; use --backend torch")
        is_onnx_file = not isinstance(model, tuple) and Path(model).suffix == ".onnx"
        if is_onnx_file and backend != "onnx":
            raise ConfigError(f"--model {model} is an ONNX file; it runs with --backend onnx only")
        probe = None
        if is_onnx_file:
            self.manifest, data, multiple, scales, fixed = read_onnx(model)
            network: Any = OnnxBackend(data)
        elif backend == "onnx":
            self.manifest, net = load_generator(model)
            multiple, scales, fixed = net_geometry(net, self.manifest)
            network = OnnxBackend(export_bytes(self.manifest, net, multiple, scales))
        else:
            self.manifest, net = load_generator(model)
            fixed = fixed_size(net)
            network = TorchBackend(net, resolve_device(device), precision=precision)
            # The size multiple is found lazily (see SlabInferer): the real window shape is tried first.
            scale = self.manifest["nets"][self.manifest["infer_net"]].get("scale")  # per-axis SR factors
            multiple, scales = None, (tuple(scale) if isinstance(scale, list)
                                      else (int(self.manifest.get("scale", 1)),) * self.spatial_dims)
            probe = self._prober(net, scales)
            if fixed:
                multiple, scales = 1, (1,) * self.spatial_dims
        self.backend = network
        self.fixed_size = fixed
        self.scales = tuple(scales)
        self.normalizer = build_normalizer(self.manifest["normalization"])
        self.inferer = SlabInferer(
            network, self.normalizer, input_mode=self.input_mode,
            context_slices=int(self.manifest.get("context_slices", 0)), scales=self.scales,
            multiple=multiple, probe=probe, fixed_roi=fixed is not None, roi_size=self._parse_roi(roi_size, fixed),
            overlap=overlap, blend=blend,
            batch_size=batch_size, slab_slices=slab_slices, progress=progress,
        )

    def _prober(self, net: torch.nn.Module, scales: tuple[int, ...]) -> Callable[[], int]:
        def probe() -> int:
            multiple, found = probe_net(net, in_channels(self.manifest), self.spatial_dims)
            if tuple(found) != tuple(scales):
                raise ModelPackageError(f"the net scales its input by {found}, but the manifest says scale "
                                        f"{self.manifest.get('scale', 1)}")
            return multiple

        return probe

    @property
    def multiple(self) -> int | None:
        """The net's input-size multiple once it was needed (``None`` while every window fitted as is)."""
        return self.inferer.multiple

    @property
    def spatial_dims(self) -> int:
        return int(self.manifest["spatial_dims"])

    @property
    def input_mode(self) -> str:
        return str(self.manifest.get("input_mode") or ("3d" if self.spatial_dims == 3 else "2d"))

    @property
    def description(self) -> str:
        """Text for DICOM DerivationDescription / SeriesDescription (names the model and medgan version)."""
        m = self.manifest
        return m.get("description") or f"medgan {m.get('medgan_version', '')} {m['recipe']} {m['infer_net']}"

    def _parse_roi(self, roi: str | Sequence[int] | None, fixed: tuple[int, ...] | None = None
                   ) -> tuple[int, ...] | None:
        dims = 3 if self.input_mode == "3d" else 2
        if fixed is not None:  # dense layers: the net takes exactly this window
            if roi not in (None, "full", "patch") and tuple(int(r) for r in roi) != fixed:  # type: ignore[union-attr]
                raise ConfigError(f"--roi-size {roi}: this model only takes windows of its img_size {list(fixed)}")
            return fixed
        patch = self.manifest.get("patch_size")
        if roi is None:
            roi = "full" if dims == 2 else ("patch" if patch else [64, 64, 64])
        if roi == "full":
            return None
        if roi == "patch":
            if not patch:
                raise ConfigError("--roi-size patch: the model package has no patch_size; use 'full' or N,N")
            roi = list(patch)[-dims:]
        if isinstance(roi, str) or len(roi) != dims:
            raise ConfigError(f"--roi-size: got {roi!r}; allowed 'full', 'patch' or {dims} ints for a "
                              f"'{self.input_mode}' model")
        return tuple(int(r) for r in roi)

    def predict(self, volume: torch.Tensor) -> MetaTensor:
        """Apply the model to one volume.

        Args:
            volume: ``(1, X, Y, Z)`` HU, a :class:`MetaTensor` as :func:`medgan.io.read_volume` returns (a plain
                tensor gets an identity affine). Not modified.

        Returns:
            ``(1, X·s, Y·s, Z·s_z)`` float32 HU MetaTensor; meta copied from the input (DICOM headers
            included, so writers can derive a series), ``affine`` recomputed for super-resolution so the
            result overlays the input in world coordinates.
        """
        if volume.ndim != 4 or volume.shape[0] != 1:
            raise InputError(f"expected a (1, X, Y, Z) volume, got shape {tuple(volume.shape)}")
        hu = volume.as_tensor() if isinstance(volume, MetaTensor) else volume
        src_affine = volume.affine if isinstance(volume, MetaTensor) else torch.eye(4, dtype=torch.float64)
        # The net runs on the voxel order it was trained on (medgan.data.orientation); the result goes back
        # to the input's own order, so files keep their layout and every voxel its world position.
        stored_codes = "".join(nib.aff2axcodes(np.asarray(src_affine, dtype=np.float64)))
        canonical_hu, canonical_affine = reorient(hu.detach().cpu(), src_affine)
        out = self.inferer(canonical_hu[0])
        scales3 = (*self.scales, 1) if len(self.scales) == 2 else self.scales
        if any(s != 1 for s in scales3):
            canonical_affine = torch.as_tensor(upscaled_affine(canonical_affine, scales3), dtype=torch.float64)
        elif self.normalizer.type == "window":
            # below the window's floor (the -3024 HU fill outside a scanner's field of view) there is no
            # anatomy: keep the input there instead of the floor the net's range allows
            outside = canonical_hu[0] < self.normalizer.hu_min
            out = torch.where(outside, canonical_hu[0].to(out.dtype), out)
        out_t, out_affine = reorient(out[None], canonical_affine, stored_codes)
        out, affine = out_t[0], out_affine.numpy()
        meta = dict(volume.meta) if isinstance(volume, MetaTensor) else {}
        for key in ("affine", "original_affine"):
            meta.pop(key, None)
        meta["spatial_shape"] = np.asarray(out.shape)
        if "pixdim" in meta:  # keep MONAI's spacing entry truthful after super-resolution
            meta["pixdim"] = np.concatenate([[1.0], voxel_spacing(affine), np.ones(4)])
        meta["medgan_model"] = self.description
        return MetaTensor(out[None], affine=torch.as_tensor(affine, dtype=torch.float64), meta=meta)
