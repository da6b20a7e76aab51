"""A name -> object registry per kind (nets, losses, recipes), in the BasicSR style.

Each entry may carry tags (``role="discriminator"``, ``input="noise"``, ``size_argument="num_downs"``):
what the rest of the package needs to know about an entry lives with its registration, not in tuples kept
elsewhere. :meth:`Registry.build` turns a YAML component (``{"type": name, **kwargs}``) into the object,
checking the keyword arguments first so a typo is a readable :class:`~medgan.errors.ConfigError`.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from medgan.errors import ConfigError

T = TypeVar("T")


class Registry:
    """Maps names to classes or factory functions.

    Args:
        kind: what the registry holds (``"nets"``, ``"losses"``, ...); used in error messages.
        plugins: modules that fill the registry when they are imported; imported on the first lookup, so
            the module that owns a registry need not import the modules that register into it.
        noun: one entry in messages (``"net"``); default ``kind``.
        renamed: arguments renamed since earlier versions (old -> new); :meth:`build` refuses an old name
            with the new one.

    Example:
        >>> NETS = Registry("nets", noun="net")
        >>> @NETS.register(role="discriminator")
        ... def tiny(width=4): ...
        >>> NETS.names(role="discriminator")
        ['tiny']
    """

    def __init__(self, kind: str, plugins: tuple[str, ...] = (), noun: str | None = None,
                 renamed: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.noun = noun or kind
        self.renamed = dict(renamed or {})
        self._items: dict[str, Any] = {}
        self._tags: dict[str, dict[str, Any]] = {}
        self._plugins = tuple(plugins)
        self._loaded = not self._plugins

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            import importlib

            for module in self._plugins:
                importlib.import_module(module)

    def register(self, name: str | None = None, **tags: Any) -> Callable[[T], T]:
        """Decorator that registers an object under ``name`` (default: its ``__name__``) with ``tags``."""

        def deco(obj: T) -> T:
            key = name or obj.__name__  # type: ignore[attr-defined]
            if key in self._items:
                raise KeyError(f"'{key}' is already registered in the '{self.kind}' registry")
            self._items[key] = obj
            self._tags[key] = dict(tags)
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` (e.g. an entry a test or a plugin registered for a while); unknown names are an error."""
        self._load()
        if name not in self._items:
            raise KeyError(f"'{name}' is not registered in the '{self.kind}' registry")
        del self._items[name], self._tags[name]

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

    def tags(self, name: str) -> dict[str, Any]:
        """The tags ``name`` was registered with (a copy; empty when none)."""
        self.get(name)
        return dict(self._tags[name])

    def names(self, **tags: Any) -> list[str]:
        """The registered names, sorted; with ``tags``, only those registered with all of them."""
        self._load()
        return sorted(k for k in self._items if all(self._tags[k].get(t, _MISSING) == v for t, v in tags.items()))

    def build(self, cfg: Mapping[str, Any] | str) -> Any:
        """Build ``{"type": <name>, **kwargs}`` (or just the name); ``cfg`` is not modified.

        Raises:
            KeyError: unknown ``type`` (the message lists the known names).
            ConfigError: (a ``ValueError``) missing ``type``, an unknown, renamed or missing argument (the
                message names it, with the new name or a close match), or a bad value the object refuses.
        """
        if isinstance(cfg, str):
            cfg = {"type": cfg}
        if not isinstance(cfg, Mapping) or not isinstance(cfg.get("type"), str):
            raise ConfigError(f"{self.noun} config needs a 'type' naming one of: {', '.join(self.names())}; "
                              f"got {cfg!r}")
        kwargs = copy.deepcopy(dict(cfg))
        name = kwargs.pop("type")
        factory = self.get(name)
        check_kwargs(self.noun, name, factory, kwargs, self.renamed)
        return factory(**kwargs)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)


_MISSING = object()


def _params(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {k: p for k, p in inspect.signature(factory).parameters.items() if k != "self"}


def renamed_to(key: str, factory: Callable[..., Any], renamed: Mapping[str, str]) -> str | None:
    """The new name of argument ``key`` if it is an old name of an argument ``factory`` takes, else ``None``."""
    new = renamed.get(key)
    params = _params(factory)
    return new if new is not None and key not in params and new in params else None


def check_kwargs(noun: str, name: str, factory: Callable[..., Any], kwargs: Mapping[str, Any],
                 renamed: Mapping[str, str] | None = None) -> None:
    """Raise ``ConfigError`` for an argument ``factory`` does not take (naming its new name when it is in
    ``renamed``, else a close match, if any) or for a required argument that is missing."""
    params = _params(factory)
    allowed = list(params)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                new = renamed_to(key, factory, renamed or {})
                if new is not None:
                    raise ConfigError(f"{noun} '{name}': argument '{key}' is now called '{new}'")
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"{noun} '{name}': unknown argument '{key}'{hint}; allowed: {', '.join(allowed)}")
    for key, p in params.items():
        required = p.default is inspect.Parameter.empty and p.kind not in (
            inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL
        )
        if required and key not in kwargs:
            raise ConfigError(f"{noun} '{name}': missing required argument '{key}'")
