"""A recipe's nets built from ``nets:`` and checked against the data, with one-line config errors.

A net that does not fit its patch (a U-Net deeper than the patch allows, an SR net whose output is not
``patch x scale``) would otherwise fail on the first batch with a message from deep inside torch.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from medgan.errors import ConfigError

if TYPE_CHECKING:
    from medgan.config import ExperimentConfig



def check_unet_depth(key: str, cfg: dict[str, Any], patch: list[int]) -> None:
    """``unet_generator`` halves every side ``num_downs`` times: each side must be a multiple of 2**num_downs."""
    depth = cfg.get("num_downs", 8)
    if isinstance(depth, int) and any(p % 2**depth for p in patch):
        fits = max(d for d in range(0, depth + 1) if all(p % 2**d == 0 for p in patch))
        raise ConfigError(
            f"nets.{key}.num_downs={depth} needs every data.patch_size side divisible by 2**{depth}={2**depth}, "
            f"got data.patch_size={patch}; use num_downs <= {fits} or a larger patch")


def check_forward(key: str, cfg: dict[str, Any], net: nn.Module, shape: tuple[int, ...],
                  expected: tuple[int, ...] | None, what: str) -> None:
    """Run ``net`` once on zeros of ``shape`` ``(1, C, *spatial)`` (eval mode, no grad, global RNG untouched)
    and refuse it when it fails or, if ``expected`` is given, returns other spatial sizes.

    Args:
        key: ``nets.<key>`` for the message.
        cfg: the net's config (its ``type`` picks the argument the message names).
        net: the built net.
        shape: the input shape.
        expected: the output spatial shape it must give (``None``: any).
        what: the data that sets ``shape`` (``data.patch_size=[64, 64]``), for the message.
    """
    from medgan.inference.loading import first_output
    from medgan.nets import NETS

    # the net argument that sets its size requirement (a registry tag), named in the error
    hint = NETS.tags(cfg["type"]).get("size_argument") if cfg.get("type") in NETS else None
    arg = f"nets.{key}.{hint}={cfg[hint]!r}" if hint in cfg else f"nets.{key} ({cfg.get('type')})"
    was_training = net.training
    net.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = first_output(net(torch.zeros(shape)))
    except (RuntimeError, ValueError, IndexError) as err:
        reason = " ".join(str(err).split())[:160]
        raise ConfigError(f"{arg} does not fit {what}: a {list(shape[2:])} input fails ({reason})") from None
    finally:
        net.train(was_training)
    if expected is not None and tuple(out.shape[2:]) != tuple(expected):
        raise ConfigError(f"{arg} does not fit {what}: a {list(shape[2:])} input gives {list(out.shape[2:])}, "
                          f"the target is {list(expected)}")


def build_fitting_net(cfg: ExperimentConfig, key: str, fill: dict[str, Any],
                      check_shape: tuple[int, ...] | None = None,
                      check_output: tuple[int, ...] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``nets.<key>`` with ``fill`` (arguments the data layout dictates: ``spatial_dims``,
    ``in_channels`` ..., set when the net takes them; a conflicting configured value is refused), then run
    the depth and forward checks. Returns the net and its complete config (for the model package).

    Raises:
        ConfigError: unknown type, conflicting or bad argument, or a net that does not fit the data.
    """
    from medgan.nets import NETS, build_net

    net_cfg = dict(getattr(cfg.nets, key))
    try:
        factory = NETS.get(net_cfg["type"])
    except KeyError as err:
        raise ConfigError(f"nets.{key}.type: {err.args[0]}") from None
    params = inspect.signature(factory).parameters
    for name, value in fill.items():
        if name not in params:
            continue
        if name in net_cfg and net_cfg[name] != value:
            raise ConfigError(
                f"nets.{key}.{name}={net_cfg[name]!r} does not fit the data: the recipe '{cfg.recipe.name}' with "
                f"data.input_mode='{cfg.data.input_mode}' needs {value!r} (remove the key to let it be set)")
        net_cfg[name] = value
    patch = list(cfg.data.patch_size)
    if net_cfg["type"] == "unet_generator":
        check_unet_depth(key, net_cfg, patch)
    try:
        net = build_net(net_cfg)
    except (ConfigError, TypeError, ValueError) as err:
        raise ConfigError(f"nets.{key}: {err}") from None
    if check_shape is not None:
        what = f"data.patch_size={patch}" + (f" x data.scale={cfg.data.scale}" if cfg.data.scale > 1 else "")
        check_forward(key, net_cfg, net, check_shape, check_output, what)
    return net, net_cfg
