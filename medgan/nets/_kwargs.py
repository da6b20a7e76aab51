"""Keyword checking shared by ``build_net`` and ``build_loss``: YAML typos become readable errors."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from medgan.errors import ConfigError


def check_kwargs(kind: str, name: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Raise ``ConfigError`` for an argument ``factory`` does not take (with a close match, if any) or
    for a required argument that is missing."""
    params = {k: p for k, p in inspect.signature(factory).parameters.items() if k != "self"}
    allowed = list(params)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
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
