"""Reading a configuration: guarded YAML (size, UTF-8, alias bombs), ``key.sub=value`` overrides, and
:func:`load_config`, which validates the result."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from medgan.config.experiment import ExperimentConfig, validate_config
from medgan.errors import ConfigError, MissingFileError

_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _coerce_scientific(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` as a string (it wants ``1.0e-4``); users mean a float."""
    if isinstance(value, str) and _SCIENTIFIC.match(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _coerce_scientific(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce_scientific(v) for v in value]
    return value


#: a config file larger than this is refused unread (the shipped ones are ~2 KB)
MAX_CONFIG_BYTES = 1 << 20
#: YAML nodes a document may expand to once its aliases are followed (a "billion laughs" reaches 10^9)
MAX_YAML_NODES = 100_000


def _expanded_nodes(root: yaml.Node, where: str) -> int:
    """How many nodes ``root`` becomes when every alias is expanded, computed on the composed graph (an
    alias is a shared node there, so this costs one visit per distinct node, not per expanded one).

    Raises:
        ConfigError: a recursive alias, or more than :data:`MAX_YAML_NODES` nodes.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_YAML_NODES:
                raise ConfigError(f"{where}: the YAML expands to more than {MAX_YAML_NODES} values through its "
                                  "aliases (&anchor / *alias); refused before expanding it")
            continue
        if key in open_nodes:
            raise ConfigError(f"{where}: the YAML has a recursive alias (an anchor used inside itself)")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def safe_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` of ``text`` after checking how far its aliases expand (see :func:`_expanded_nodes`).

    Raises:
        ConfigError: invalid YAML or an alias bomb, naming ``where``.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_nodes(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(err).split())}") from None
    finally:
        loader.dispose()


def read_config_text(path: Path) -> str:
    """The text of config file ``path``: at most :data:`MAX_CONFIG_BYTES`, UTF-8.

    Raises:
        ConfigError: too large, or not UTF-8 (naming the byte offset of the first bad byte).
    """
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size} bytes is too large for a config (limit {MAX_CONFIG_BYTES} bytes)")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                          "save the file as UTF-8") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``key.sub=value`` into ``(["key", "sub"], value)``; the value is parsed by ``yaml.safe_load``."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in parts):
        raise ConfigError(f"override '{text}' is not of the form key.sub=value (e.g. trainer.max_steps=100)")
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"override '{key}': value of {len(raw)} characters is too long")
    value = safe_yaml(raw, f"override '{key}' (value {raw[:40]!r})") if raw.strip() else None
    return parts, _coerce_scientific(value)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``key.sub=value`` set (intermediate mappings are created)."""
    import copy

    out = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"override '{text}': '{where}' is {child!r}, not a section with keys")
            node = child
        node[parts[-1]] = value
    return out


def load_config(path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read, override and validate a configuration.

    Args:
        path: YAML file (or ``None`` to start from ``base``).
        overrides: ``key.sub=value`` strings, applied in order after the file.
        base: a mapping used instead of / below the file (tests build configs inline with it).

    Raises:
        MissingFileError: the file does not exist.
        ConfigError: invalid YAML, unknown key (with a suggestion), wrong type or value.
    """
    raw: dict[str, Any] = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"config file not found: {path}")
        loaded = safe_yaml(read_config_text(path), str(path))
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(loaded).__name__}")
        raw.update(_coerce_scientific(loaded or {}))
    raw = apply_overrides(raw, list(overrides))
    return validate_config(raw)
