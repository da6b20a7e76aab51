"""The experiment configuration: a typed schema, YAML loading, ``key.sub=value`` overrides.

``medgan-train --config configs/ldct_cyclegan.yaml trainer.max_steps=4 data.patch_size=[64,64]`` goes
through :func:`load_config`: the YAML file is read with ``yaml.safe_load``, each override value is parsed
with ``yaml.safe_load`` too (so ``[64,64]`` is a list, ``true`` a bool, ``1e-4`` a float), the result is
validated against :class:`ExperimentConfig` (pydantic v2, unknown keys forbidden) and every problem is
reported as one :class:`~medgan.errors.ConfigError` naming the dotted key, the bad value and what is
allowed, with a "did you mean" for misspelt keys.

The schema is the single source of truth for ``docs/configuration.md`` (``scripts/gen_config_docs.py``).
One module per concept: :mod:`~medgan.config.base` (section base, components, recipe parameters),
:mod:`~medgan.config.data`, :mod:`~medgan.config.training` (run, nets, optimiser, schedule, trainer,
logging), :mod:`~medgan.config.validation` (metric windows), :mod:`~medgan.config.experiment` (the whole
config, its error messages, saving) and :mod:`~medgan.config.loading` (YAML, overrides). Import from
``medgan.config``.
"""

from __future__ import annotations

from medgan.config.base import RECIPE_PARAMS, Component, RecipeParams, check_component, recipe_classes
from medgan.config.data import DataConfig
from medgan.config.experiment import (
    RENAMED_KEYS,
    ExperimentConfig,
    config_to_dict,
    save_config,
    validate_config,
    validate_data,
)
from medgan.config.loading import (
    MAX_CONFIG_BYTES,
    MAX_YAML_NODES,
    apply_overrides,
    load_config,
    parse_override,
    read_config_text,
    safe_yaml,
)
from medgan.config.training import (
    LoggingConfig,
    NetsConfig,
    OptimConfig,
    Precision,
    RunConfig,
    SchedulerConfig,
    TrainerConfig,
)
from medgan.config.validation import NAMED_WINDOWS, DiversityConfig, ValidationConfig, Window, parse_window

__all__ = [
    "RECIPE_PARAMS", "Component", "RecipeParams", "check_component", "recipe_classes",
    "DataConfig", "RunConfig", "NetsConfig", "OptimConfig", "SchedulerConfig", "Precision", "TrainerConfig",
    "LoggingConfig", "Window", "NAMED_WINDOWS", "parse_window", "DiversityConfig", "ValidationConfig",
    "ExperimentConfig", "RENAMED_KEYS", "validate_config", "validate_data", "config_to_dict", "save_config",
    "MAX_CONFIG_BYTES", "MAX_YAML_NODES", "safe_yaml", "read_config_text", "parse_override", "apply_overrides",
    "load_config",
]
