"""A name -> object registry per kind (nets, losses, recipes), in the BasicSR style."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Registry:
    """Maps names to classes or factory functions.

    Args:
        kind: what the registry holds (``"nets"``, ``"losses"``, ...); used in error messages.
        plugins: modules that fill the registry when they are imported; imported on the first lookup, so
            the module that owns a registry need not import the modules that register into it.

    Example:
        >>> NETS = Registry("nets")
        >>> @NETS.register()
        ... def tiny(**kw): ...
        >>> NETS.get("tiny")
    """

    def __init__(self, kind: str, plugins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._plugins = tuple(plugins)
        self._loaded = not self._plugins

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            import importlib

            for module in self._plugins:
                importlib.import_module(module)

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator that registers an object under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            key = name or obj.__name__  # type: ignore[attr-defined]
            if key in self._items:
                raise KeyError(f"'{key}' is already registered in the '{self.kind}' registry")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``.

        Raises:
            KeyError: naming the unknown key, a close match if any, and every known name.
        """
        self._load()
        if name not in self._items:
            close = difflib.get_close_matches(str(name), self._items, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise KeyError(
                f"No object named '{name}' in '{self.kind}' registry{hint}; known: {', '.join(sorted(self._items))}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)
