"""The whole experiment: :class:`ExperimentConfig`, its validation into one readable error line, and
saving the resolved configuration."""

from __future__ import annotations

import difflib
import os
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, SerializeAsAny, ValidationError, model_validator

from medgan.config.base import RECIPE_PARAMS, RecipeParams, _Section
from medgan.config.data import DataConfig
from medgan.config.training import (
    LoggingConfig,
    NetsConfig,
    OptimConfig,
    RunConfig,
    SchedulerConfig,
    TrainerConfig,
)
from medgan.config.validation import ValidationConfig
from medgan.errors import ConfigError


class ExperimentConfig(_Section):
    """A whole training run. Every section has defaults except ``recipe``, ``nets`` and ``data.root``."""

    seed: int = Field(0, description="seeds python, numpy, torch and the data pipeline")
    recipe: SerializeAsAny[RecipeParams]
    nets: NetsConfig
    data: DataConfig
    optim: OptimConfig = OptimConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    trainer: TrainerConfig = TrainerConfig()
    validation: ValidationConfig = ValidationConfig()
    logging: LoggingConfig = LoggingConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        self.recipe.check(self)
        return self


def validate_config(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a plain mapping; the first error becomes one :class:`ConfigError` line.

    The ``recipe:`` section is validated by the parameter model registered for its ``name``
    (:data:`RECIPE_PARAMS`), the rest by :class:`ExperimentConfig`.
    """
    section = raw.get("recipe")
    if not isinstance(section, dict) or "name" not in section:
        raise ConfigError("missing key 'recipe.name'" if isinstance(section, dict) or section is None
                          else f"config key 'recipe': got {section!r}; expected a mapping with a 'name'")
    if not isinstance(section["name"], str) or section["name"] not in RECIPE_PARAMS:
        raise ConfigError(f"recipe.name: got {section['name']!r}; allowed: {', '.join(RECIPE_PARAMS.names())}")
    params_model = RECIPE_PARAMS.get(section["name"])
    try:
        params = params_model.model_validate(section)
        return ExperimentConfig.model_validate({**raw, "recipe": params})
    except ValidationError as err:
        error = err.errors()[0]
        if err.title == params_model.__name__:
            error = {**error, "loc": ("recipe", *error["loc"])}
        raise ConfigError(_describe(error, raw)) from None


def validate_data(raw: dict[str, Any]) -> DataConfig:
    """Validate a ``data:`` section alone (the DataModule's settings); errors name ``data.<key>``."""
    try:
        return DataConfig.model_validate(raw)
    except ValidationError as err:
        error = err.errors()[0]
        raise ConfigError(_describe({**error, "loc": ("data", *error["loc"])}, {"data": raw})) from None


#: config keys renamed to MONAI's names (old dotted key -> new); net arguments have their own table,
#: :data:`medgan.nets.RENAMED_NET_ARGUMENTS`
RENAMED_KEYS: dict[str, str] = {"recipe.latent_dim": "recipe.latent_size"}


def _describe(error: dict[str, Any], raw: dict[str, Any]) -> str:
    loc = _schema_loc(error["loc"], raw)
    key = ".".join(str(p) for p in loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        if key in RENAMED_KEYS:
            return f"config key '{key}' is now called '{RENAMED_KEYS[key]}'"
        known = _fields_at(loc[:-1], raw)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f" (did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?)" if close else ""
        allowed = f"; allowed: {', '.join(known)}" if known and not close else ""
        return f"unknown key '{key}'{hint}{allowed}"
    if kind == "missing":
        return f"missing key '{key}'"
    msg = error["msg"].removeprefix("Value error, ")
    if not key or (kind == "value_error" and _fields_at(loc, raw)):
        return msg  # a section-level validator: its message names the keys itself
    value = error.get("input")
    shown = f"{value!r} ({type(value).__name__})" if not isinstance(value, dict) else "a mapping"
    return f"config key '{key}': got {shown}; {msg[0].lower() + msg[1:]}"


def _section_model(model: Any, name: Any, raw: dict[str, Any]) -> Any:
    """The model of field ``name`` of ``model`` (``None`` for a plain value), ``False`` if no such field."""
    if model is ExperimentConfig and name == "recipe":
        recipe_name = (raw.get("recipe") or {}).get("name") if isinstance(raw.get("recipe"), dict) else None
        return RECIPE_PARAMS.get(recipe_name) if recipe_name in RECIPE_PARAMS else None
    field = getattr(model, "model_fields", {}).get(name)
    if field is None:
        return False
    return next((a for a in (field.annotation, *typing.get_args(field.annotation))
                 if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _schema_loc(loc: tuple[Any, ...], raw: dict[str, Any]) -> tuple[Any, ...]:
    """The user's dotted path in an error location: walks the schema and keeps the parts that are keys a
    user can write (field names, list indices, keys of free mappings), skipping the labels validators add."""
    out: list[Any] = []
    model: Any = ExperimentConfig
    for part in loc:
        if model is None or isinstance(part, int):  # inside a free mapping / list: every part is the user's
            out.append(part)
            continue
        sub = _section_model(model, part, raw)
        if sub is False:
            if not out or part not in getattr(model, "model_fields", {}):
                # an unknown key is the user's; a validator's label (a union member's name) is not
                if isinstance(part, str) and _is_label(model, part):
                    continue
            out.append(part)
            model = None
            continue
        out.append(part)
        model = sub
    return tuple(out)


def _is_label(model: Any, part: str) -> bool:
    """Whether ``part`` names a type in the annotation of one of ``model``'s fields (a union member label)."""
    names = set()
    for field in getattr(model, "model_fields", {}).values():
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            names.add(getattr(arg, "__name__", str(arg)))
            names.update(getattr(a, "__name__", str(a)) for a in typing.get_args(arg))
    return part in names or "[" in part or part in ("none", "str", "int", "float", "bool")


def _fields_at(loc: tuple[Any, ...], raw: dict[str, Any]) -> list[str]:
    """Field names of the section at ``loc`` (walking the schema), for "did you mean"."""
    model: Any = ExperimentConfig
    for part in loc:
        model = _section_model(model, part, raw)
        if not model:
            return []
    return list(model.model_fields)


# ---------------------------------------------------------------------------------------------- saving


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Plain, YAML-safe mapping of the resolved configuration (defaults filled in)."""
    return cfg.model_dump(mode="json")


def save_config(cfg: ExperimentConfig, path: str | os.PathLike) -> Path:
    """Write the resolved configuration as YAML (through :func:`medgan.io.atomic.atomic_write`)."""
    from medgan.io.atomic import atomic_write

    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    return atomic_write(path, "# resolved medgan configuration (file + overrides + defaults)\n" + text)
