"""Model packages: what ``medgan-infer --model`` takes.

A package is a folder with ``model.safetensors`` (the weights of the nets needed at inference, no pickle)
and ``medgan.yaml`` (the manifest). Lightning ``.ckpt`` files are accepted too; they are loaded with
``torch.load(weights_only=True)`` and must hold the manifest under ``hyper_parameters["medgan_manifest"]``.

Manifest keys (``format_version`` 1):
    medgan_version:  version that wrote it
    recipe:          recipe name (``cyclegan``, ``pix2pix``, ``dae`` ...)
    nets:            {role: net config (``type`` + kwargs)}; weights are stored as ``<role>.<param>``
    infer_net:       the role run by ``medgan-infer`` (e.g. ``gen_low_to_full`` for CycleGAN)
    spatial_dims:    2 or 3
    input_mode:      ``2d`` | ``2.5d`` | ``3d``
    context_slices:  neighbours on each side for 2.5D (0 otherwise)
    scale:           in-plane up-sampling factor of the net (1 unless super-resolution)
    normalization:   :meth:`medgan.transforms.intensity.HUNormalizer.to_config`
    patch_size:      training patch size (a sensible inference ROI)
    description:     free text (goes into DICOM DerivationDescription)
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import yaml

from medgan import __version__
from medgan.errors import ConfigError, ModelPackageError, OutputExistsError
from medgan.io.atomic import staged_output

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "medgan.yaml"
REQUIRED_KEYS = ("format_version", "recipe", "nets", "infer_net", "spatial_dims", "normalization")


def make_manifest(
    recipe: str,
    nets: dict[str, dict[str, Any]],
    infer_net: str,
    spatial_dims: int,
    normalization: dict[str, Any],
    input_mode: str = "2d",
    context_slices: int = 0,
    scale: int = 1,
    patch_size: list[int] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """Assemble a manifest dict with the current format and medgan version."""
    return {
        "format_version": FORMAT_VERSION,
        "medgan_version": __version__,
        "recipe": recipe,
        "nets": nets,
        "infer_net": infer_net,
        "spatial_dims": int(spatial_dims),
        "input_mode": input_mode,
        "context_slices": int(context_slices),
        "scale": int(scale),
        "normalization": normalization,
        "patch_size": list(patch_size) if patch_size is not None else None,
        "description": description or f"medgan {__version__} {recipe}",
    }


def save_model_package(folder: str | os.PathLike, state_dict: dict[str, Any], manifest: dict[str, Any],
                       overwrite: bool = False) -> Path:
    """Write a package atomically: a temporary sibling folder is filled, re-read, then swapped into place.

    Args:
        folder: destination folder (created).
        state_dict: tensors keyed ``<role>.<param>``; made contiguous and saved with safetensors.
        manifest: from :func:`make_manifest`.
        overwrite: replace an existing package.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise OutputExistsError(f"{folder} exists; pass --overwrite to replace it")
    _check_manifest(manifest, folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with staged_output(folder) as staged:
        staged.mkdir()
        try:
            save_file(tensors, str(staged / WEIGHTS_FILE), metadata={"medgan_version": __version__})
        except SafetensorError as err:  # its I/O failures (a full disk) are not OSError
            raise OSError(errno.EIO, str(err)) from None
        (staged / MANIFEST_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        load_model_package(staged)  # re-read before reporting success
    # staged_output swaps the new folder in for the old one in one step: the package is never absent
    return folder


def load_model_package(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load ``(manifest, state_dict)`` from a package folder or a ``.ckpt``; never unpickles arbitrary objects.

    Raises:
        ModelPackageError: missing files, malformed or incompatible manifest.
    """
    path = Path(path)
    if not path.exists():
        raise ModelPackageError(f"model not found: {path}")
    if path.is_file() and path.suffix == ".ckpt":
        return _load_checkpoint(path)
    if path.is_file():
        if path.name not in (WEIGHTS_FILE, MANIFEST_FILE):
            raise ModelPackageError(
                f"model {path} is neither a package folder (with {WEIGHTS_FILE} and {MANIFEST_FILE}) nor a .ckpt"
            )
        path = path.parent
    missing = [n for n in (WEIGHTS_FILE, MANIFEST_FILE) if not (path / n).is_file()]
    if missing:
        raise ModelPackageError(f"model package {path} is missing {', '.join(missing)}")
    from medgan.config import read_config_text, safe_yaml

    try:  # the config's guards: size, UTF-8, and aliases counted before they expand (a "billion laughs")
        manifest = safe_yaml(read_config_text(path / MANIFEST_FILE), str(path / MANIFEST_FILE))
    except ConfigError as err:
        raise ModelPackageError(str(err)) from None
    _check_manifest(manifest, path)
    _rename_old_arguments(manifest)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError) as err:
        raise ModelPackageError(f"{path / WEIGHTS_FILE} is not a readable safetensors file: {err}") from err
    return manifest, state


def _load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import pickle

    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        detail = " ".join(str(err).split())
        if "WeightsUnpickler error:" in detail:  # torch's advice to drop weights_only is not ours to give
            detail = detail.split("WeightsUnpickler error:", 1)[1].split(" Check the documentation", 1)[0].strip()
        raise ModelPackageError(f"{path} is not a loadable checkpoint (loaded with weights_only=True): {detail}") from None
    manifest = (ckpt.get("hyper_parameters") or {}).get("medgan_manifest") if isinstance(ckpt, dict) else None
    if manifest is None:
        raise ModelPackageError(f"{path} holds no medgan manifest (hyper_parameters.medgan_manifest)")
    _check_manifest(manifest, path)
    _rename_old_arguments(manifest)
    roles = tuple(f"{role}." for role in manifest["nets"])
    state = {k: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith(roles)}
    return manifest, state


def _rename_old_arguments(manifest: dict[str, Any]) -> None:
    """Packages written before the nets took MONAI's argument names are read under the new names (a
    net's weights do not depend on its argument names)."""
    from medgan.nets import rename_net_config

    if isinstance(manifest["nets"], dict):
        manifest["nets"] = {role: rename_net_config(cfg) for role, cfg in manifest["nets"].items()}


def _check_manifest(manifest: Any, where: Path) -> None:
    if not isinstance(manifest, dict):
        raise ModelPackageError(f"{where}: manifest is not a mapping")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ModelPackageError(f"{where}: manifest lacks {', '.join(missing)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise ModelPackageError(
            f"{where}: model package format_version {manifest['format_version']} is not supported by medgan "
            f"{__version__} (expects {FORMAT_VERSION})"
        )
    if manifest["infer_net"] not in manifest["nets"]:
        raise ModelPackageError(f"{where}: infer_net '{manifest['infer_net']}' is not one of {list(manifest['nets'])}")
