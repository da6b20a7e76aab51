"""ONNX export of a model package's generator, self-describing for ``medgan-infer --backend onnx``.

The exported graph takes ``image`` ``(B, C, *spatial)`` normalised float32 with dynamic batch and spatial
axes. The manifest (YAML), the net's input-size multiple and its per-axis scale are stored in the ONNX
``metadata_props``, so an ``.onnx`` file alone is a complete ``--model`` for the onnx backend.
Export uses PyTorch's TorchScript-based exporter (``dynamo=False``): the dynamo exporter needs
``onnxscript``, which medgan does not depend on.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from medgan.errors import ModelPackageError, OutputExistsError
from medgan.inference.loading import (
    check_manifest_for_inference,
    first_output,
    fixed_size,
    in_channels,
    load_generator,
    net_geometry,
)
from medgan.io.atomic import staged_output
from medgan.package import FORMAT_VERSION, REQUIRED_KEYS

DEFAULT_OPSET = 17
META_MANIFEST = "medgan_manifest"
META_MULTIPLE = "medgan_size_multiple"
META_SCALES = "medgan_scales"
META_FIXED = "medgan_fixed_size"


class _ImageOnly(nn.Module):
    """Exports only the image output (a VAE's ``(recon, mu, logvar)`` becomes ``recon``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return first_output(self.net(image))


def export_bytes(manifest: dict[str, Any], net: nn.Module, multiple: int, scales: tuple[int, ...],
                 opset: int = DEFAULT_OPSET) -> bytes:
    """Serialise ``net`` (CPU, eval) to ONNX bytes with the medgan metadata attached.

    Spatial axes are dynamic unless the net has a fixed input size (dense layers, ``img_size``).
    """
    import onnx

    dims = int(manifest["spatial_dims"])
    fixed = fixed_size(net)
    side = -(-(64 if dims == 2 else 32) // multiple) * multiple
    example = torch.zeros((1, in_channels(manifest)) + (fixed or (side,) * dims))
    axes = {0: "batch", **({} if fixed else {2 + i: f"spatial{i}" for i in range(dims)})}
    out_axes = {0: "batch", **({} if fixed else {2 + i: f"out_spatial{i}" for i in range(dims)})}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's constant-folding notes are not actionable
        torch.onnx.export(_ImageOnly(net.cpu().eval()), (example,), buf, dynamo=False, opset_version=int(opset),
                          input_names=["image"], output_names=["output"],
                          dynamic_axes={"image": axes, "output": out_axes})
    model = onnx.load_from_string(buf.getvalue())
    meta = {META_MANIFEST: yaml.safe_dump(manifest, sort_keys=False), META_MULTIPLE: str(multiple),
            META_SCALES: ",".join(str(s) for s in scales)}
    if fixed:
        meta[META_FIXED] = ",".join(str(s) for s in fixed)
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_onnx(model: str | os.PathLike, out: str | os.PathLike, opset: int = DEFAULT_OPSET,
                overwrite: bool = False) -> Path:
    """Export a model package (or ``.ckpt``) to ``out`` atomically (temporary sibling, re-read, rename).

    Raises:
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
        ModelPackageError: the package cannot be loaded.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    if not 7 <= int(opset) <= 21:
        raise ModelPackageError(f"--opset {opset}: allowed 7..21 (default {DEFAULT_OPSET})")
    manifest, net = load_generator(model)
    multiple, scales, _ = net_geometry(net, manifest)
    data = export_bytes(manifest, net, multiple, scales, opset)
    with staged_output(out) as staged:
        staged.write_bytes(data)
        read_onnx(staged)  # re-read before reporting success
    return out


def read_onnx(path: str | os.PathLike
              ) -> tuple[dict[str, Any], bytes, int, tuple[int, ...], tuple[int, ...] | None]:
    """Read an exported file: ``(manifest, onnx bytes, size multiple, per-axis scales, fixed size or None)``.

    Raises:
        ModelPackageError: not an ONNX file, or one without medgan metadata.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelPackageError(f"model not found: {path}")
    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except Exception as err:  # noqa: BLE001 - onnx raises protobuf DecodeError and others
        raise ModelPackageError(f"{path} is not a readable ONNX file: {err}") from err
    props = {p.key: p.value for p in model.metadata_props}
    if META_MANIFEST not in props:
        raise ModelPackageError(f"{path} has no medgan metadata ({META_MANIFEST}); export it with medgan-export")
    manifest = yaml.safe_load(props[META_MANIFEST])
    if not isinstance(manifest, dict) or any(k not in manifest for k in REQUIRED_KEYS):
        raise ModelPackageError(f"{path}: embedded manifest lacks one of {list(REQUIRED_KEYS)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise ModelPackageError(f"{path}: model format_version {manifest['format_version']} is not supported "
                                f"(expects {FORMAT_VERSION}); re-export it with this medgan")
    check_manifest_for_inference(manifest, path)
    scales = tuple(int(s) for s in props.get(META_SCALES, "1").split(","))
    fixed = tuple(int(s) for s in props[META_FIXED].split(",")) if META_FIXED in props else None
    return manifest, data, int(props.get(META_MULTIPLE, "1")), scales, fixed
