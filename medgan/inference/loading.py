"""Turn a model package into the network that ``medgan-infer`` runs.

The package (``medgan/package.py``) names the role to run (``infer_net``); its weights are stored as
``<role>.<param>``. Loading never unpickles: packages are safetensors, ``.ckpt`` files go through
``torch.load(weights_only=True)`` inside :func:`medgan.package.load_model_package`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medgan.errors import ModelPackageError
from medgan.package import load_model_package

INPUT_MODES = ("2d", "2.5d", "3d")


def check_manifest_for_inference(manifest: dict[str, Any], where: str | os.PathLike) -> None:
    """Validate the inference-relevant manifest keys.

    Raises:
        ModelPackageError: naming the key, the bad value and what is allowed.
    """
    from medgan.nets import NETS

    net_type = (manifest.get("nets", {}).get(manifest.get("infer_net"), {}) or {}).get("type")
    # nets that map a noise vector (and a label) to an image: nothing for medgan-infer to feed them
    if net_type in NETS.names(input="noise"):
        raise ModelPackageError(f"{where}: the '{manifest.get('recipe')}' model runs a {net_type}, which makes images "
                                "from noise; medgan-infer needs an image-to-image model (denoising, SR, autoencoder)")
    mode = manifest.get("input_mode", "2d" if manifest["spatial_dims"] == 2 else "3d")
    if mode not in INPUT_MODES:
        raise ModelPackageError(f"{where}: manifest input_mode '{mode}' is not one of {list(INPUT_MODES)}")
    dims = manifest["spatial_dims"]
    if dims not in (2, 3) or (dims == 3) != (mode == "3d"):
        raise ModelPackageError(f"{where}: manifest spatial_dims {dims} does not fit input_mode '{mode}' "
                                "(2 for '2d'/'2.5d', 3 for '3d')")
    scale = manifest.get("scale", 1)
    if not isinstance(scale, int) or scale < 1:
        raise ModelPackageError(f"{where}: manifest scale {scale!r} must be an integer >= 1")
    context = manifest.get("context_slices", 0)
    if not isinstance(context, int) or context < 0 or (mode == "2.5d" and context < 1):
        raise ModelPackageError(f"{where}: manifest context_slices {context!r} must be an integer >= 0 "
                                "(>= 1 for input_mode '2.5d')")


def load_generator(model: str | os.PathLike | tuple[dict[str, Any], dict[str, Any]]
                   ) -> tuple[dict[str, Any], nn.Module]:
    """Load ``(manifest, net)`` for inference from a package folder, a ``.ckpt`` or ``(manifest, state)``.

    The net is built from ``manifest["nets"][manifest["infer_net"]]``, gets the ``<role>.`` weights (strict:
    a missing or unexpected tensor is an error) and is put in eval mode.

    Raises:
        ModelPackageError: missing files, incompatible version, unknown net type or mismatching weights.
    """
    if isinstance(model, tuple):
        manifest, state = model
        where: Any = "model"
    else:
        manifest, state = load_model_package(model)
        where = Path(model)
    check_manifest_for_inference(manifest, where)
    role = manifest["infer_net"]
    prefix = f"{role}."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    net = build_net_with_weights(dict(manifest["nets"][role]), weights, role, where)
    return manifest, net.eval()


def build_net_with_weights(cfg: dict[str, Any], weights: dict[str, torch.Tensor], role: str,
                           where: Any) -> nn.Module:
    """Build the net ``cfg`` of model-package role ``role`` and load its ``weights`` strictly (errors name
    ``where``, the package, and the role).

    The net is first built on the ``meta`` device and the stored tensors are assigned to it: the random
    initialisation that the weights would overwrite anyway costs seconds for a 50 M-parameter generator.
    A net that keeps anything on ``meta`` afterwards (a buffer outside the state dict) is built again
    normally.
    """
    def build(device: str | None) -> nn.Module:
        from medgan.nets import build_net

        try:
            if device is None:
                return build_net(cfg)
            with torch.device(device):
                return build_net(cfg)
        except KeyError as err:  # unknown registry name
            raise ModelPackageError(f"{where}: nets.{role}.type: {err.args[0]}") from err
        except (TypeError, ValueError) as err:
            raise ModelPackageError(f"{where}: nets.{role} cannot be built: {err}") from err

    def load(net: nn.Module, assign: bool) -> nn.Module:
        try:
            net.load_state_dict(weights, strict=True, assign=assign)
        except RuntimeError as err:
            first = " ".join(str(err).split())[:300]
            raise ModelPackageError(f"{where}: weights of '{role}' do not fit nets.{role}: {first}") from err
        return net

    try:
        net = load(build("meta"), assign=True)
    except ModelPackageError:
        raise
    except Exception:  # noqa: BLE001 - a net whose constructor cannot run on meta: build it normally
        net = None
    tensors = [] if net is None else [*net.parameters(), *net.buffers()]
    if net is None or any(t.is_meta for t in tensors):
        net = load(build(None), assign=False)
    return net


def first_output(out: Any) -> torch.Tensor:
    """The image of a net's output: VAEs return ``(recon, mu, logvar)``, dicts hold ``"image"``/first value."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return first_output(out[0])
    if isinstance(out, dict):
        return first_output(out.get("image", next(iter(out.values()))))
    raise TypeError(f"net returned {type(out).__name__}; expected a tensor, tuple or dict")


def in_channels(manifest: dict[str, Any]) -> int:
    """Channels the net expects: ``2·context + 1`` for 2.5D, else the net config's ``in_channels`` (or 1)."""
    if manifest.get("input_mode") == "2.5d":
        return 2 * int(manifest["context_slices"]) + 1
    return int(manifest["nets"][manifest["infer_net"]].get("in_channels", 1))


def fixed_size(net: nn.Module) -> tuple[int, ...] | None:
    """The exact input size of nets with dense layers (their ``img_size``), else ``None``."""
    size = getattr(net, "img_size", None)
    return None if size is None else tuple(int(s) for s in size)


def net_geometry(net: nn.Module, manifest: dict[str, Any]) -> tuple[int, tuple[int, ...], tuple[int, ...] | None]:
    """``(size multiple, per-axis scales, fixed input size or None)`` of a net, probing when needed."""
    fixed = fixed_size(net)
    dims = int(manifest["spatial_dims"])
    if fixed is not None:
        return 1, (1,) * dims, fixed
    multiple, scales = probe_net(net, in_channels(manifest), dims)
    return multiple, scales, None


@torch.no_grad()
def probe_net(net: nn.Module, in_channels: int, spatial_dims: int, limit: int = 512) -> tuple[int, tuple[int, ...]]:
    """Find the input-size multiple a net needs and the factor by which it scales each spatial axis.

    Nets with ``k`` stride-2 stages need multiples of ``2**k``, and which they are is not in the manifest.
    For each power of two ``m`` two sizes are tried on a zero image (``s`` and ``s + m``, ``s >= 32`` in 2D,
    ``>= 16`` in 3D); the first ``m`` for which both give an output of ``size · f`` per axis (the same
    integer ``f`` for both sizes) wins. Inputs are padded up to this multiple before inference.

    Returns:
        ``(multiple, scales)`` with one integer scale per spatial axis of the net (e.g. ``(2, 2)`` for ×2 SR).

    Raises:
        ModelPackageError: no multiple up to ``limit`` works.
    """
    base = 32 if spatial_dims == 2 else 16
    param = next(iter(net.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    m = 1
    while m <= limit:
        s = m * -(-base // m)
        found: list[tuple[int, ...]] = []
        for size in (s, s + m):
            x = torch.zeros((1, in_channels) + (size,) * spatial_dims, device=device)
            try:
                y = first_output(net(x))
            except (RuntimeError, ValueError):
                break
            out = tuple(y.shape[2:])
            if len(out) != spatial_dims or any(o % size for o in out):
                break
            found.append(tuple(o // size for o in out))
        if len(found) == 2 and found[0] == found[1] and min(found[0]) >= 1:
            return m, found[0]
        m *= 2
    raise ModelPackageError(f"the net does not map sizes that are multiples of any power of two up to {limit} "
                            f"to a whole multiple of themselves (in_channels={in_channels}, spatial_dims={spatial_dims})")
