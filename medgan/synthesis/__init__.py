"""Synthetic CT: sampling trained generative models, mixing synthetic with real training data, Deep Dream.

The names below are imported on first use, so the command-line front ends can name this package without
loading torch for ``--help``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_HOMES = {
    "GenerativeModel": "sampling",
    "load_generative": "sampling",
    "write_samples": "sampling",
    "dream": "dream",
    "list_layers": "dream",
}
__all__ = ["GenerativeModel", "dream", "list_layers", "load_generative", "write_samples"]

if TYPE_CHECKING:
    from medgan.synthesis.dream import dream, list_layers
    from medgan.synthesis.sampling import GenerativeModel, load_generative, write_samples


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'medgan.synthesis' has no attribute '{name}'")
    value = getattr(import_module(f"medgan.synthesis.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
