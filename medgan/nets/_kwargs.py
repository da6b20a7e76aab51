"""Keyword checking shared by ``build_net`` and ``build_loss``: YAML typos become readable errors."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from medgan.errors import ConfigError

#: net arguments renamed to MONAI's names (old -> new). An old name is refused with the new one; a model
#: package saved under an old name is read with the new one (:func:`rename_old_arguments`). ``channels`` was a
#: single base width in some nets; those take ``feature_size`` now, and ``channels`` is always one width per level.
RENAMED_NET_ARGUMENTS: dict[str, str] = {
    "n_layers": "num_layers",
    "n_blocks": "num_res_blocks",
    "num_blocks": "num_res_blocks",
    "blocks": "num_res_blocks",
    "middle_blocks": "num_middle_blocks",
    "upscale": "scale",
    "latent_dim": "latent_size",
    "channels": "feature_size",
}


def _params(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {k: p for k, p in inspect.signature(factory).parameters.items() if k != "self"}


def _renamed(key: str, params: Mapping[str, inspect.Parameter], renamed: Mapping[str, str]) -> str | None:
    """The new name of ``key`` if it is an old name of an argument ``params`` takes, else ``None``."""
    new = renamed.get(key)
    return new if new is not None and key not in params and new in params else None


def check_kwargs(kind: str, name: str, factory: Callable[..., Any], kwargs: dict[str, Any],
                 renamed: Mapping[str, str] | None = None) -> None:
    """Raise ``ConfigError`` for an argument ``factory`` does not take (naming its new name when it is in
    ``renamed``, else a close match, if any) or for a required argument that is missing."""
    params = _params(factory)
    allowed = list(params)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                new = _renamed(key, params, renamed or {})
                if new is not None:
                    raise ConfigError(f"{kind} '{name}': argument '{key}' is now called '{new}'")
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(
                    f"{kind} '{name}': unknown argument '{key}'{hint}; allowed: {', '.join(allowed)}"
                )
    for key, p in params.items():
        required = p.default is inspect.Parameter.empty and p.kind not in (
            inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL
        )
        if required and key not in kwargs:
            raise ConfigError(f"{kind} '{name}': missing required argument '{key}'")


def rename_old_arguments(factory: Callable[..., Any], kwargs: dict[str, Any],
                         renamed: Mapping[str, str] = RENAMED_NET_ARGUMENTS) -> dict[str, Any]:
    """``kwargs`` with old argument names replaced by the names ``factory`` takes now (a new dict).

    For model packages written before a rename: the weights do not depend on argument names, so a stored
    net is read under the new names instead of being refused.
    """
    params = _params(factory)
    return {(_renamed(key, params, renamed) or key): value for key, value in kwargs.items()}
