"""The experiment configuration: a typed schema, YAML loading, ``key.sub=value`` overrides.

``medgan-train --config configs/ldct_cyclegan.yaml trainer.max_steps=4 data.patch_size=[64,64]`` goes
through :func:`load_config`: the YAML file is read with ``yaml.safe_load``, each override value is parsed
with ``yaml.safe_load`` too (so ``[64,64]`` is a list, ``true`` a bool, ``1e-4`` a float), the result is
validated against :class:`ExperimentConfig` (pydantic v2, unknown keys forbidden) and every problem is
reported as one :class:`~medgan.errors.ConfigError` naming the dotted key, the bad value and what is
allowed, with a "did you mean" for misspelt keys.

The schema is the single source of truth for ``docs/configuration.md`` (``scripts/gen_config_docs.py``).
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from medgan.errors import ConfigError, MissingFileError
from medgan.registry import Registry

# ---------------------------------------------------------------------------------------------- schema


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def check_component(value: dict[str, Any]) -> dict[str, Any]:
    """A net/loss config must name its registered ``type``."""
    if not isinstance(value.get("type"), str) or not value["type"]:
        raise ValueError(f"needs a 'type' naming a registered component, got keys {sorted(value)}")
    return value


#: ``type:`` + keyword arguments of a registered net or loss (MONAI argument names).
Component = Annotated[dict[str, Any], Field(json_schema_extra={"medgan_component": True})]


class RecipeParams(_Section):
    """Base of each recipe's ``recipe:`` section. A recipe registers its subclass in :data:`RECIPE_PARAMS`
    under every ``recipe.name`` it serves (``name: Literal[...]``); :meth:`check` adds checks that need
    other sections."""

    #: nets the recipe needs from ``nets:``
    needs: ClassVar[tuple[str, ...]] = ("generator",)
    name: str

    def check(self, cfg: ExperimentConfig) -> None:
        """Cross-section checks; raise ``ValueError`` whose message names the dotted keys."""
        for role in self.needs:
            if getattr(cfg.nets, role) is None:
                raise ValueError(f"nets.{role} is required by recipe '{self.name}'")


#: ``recipe.name`` -> its :class:`RecipeParams` subclass. Filled by :mod:`medgan.recipes.params` (torch-free),
#: which the registry imports on first lookup: the schema does not import the recipes.
RECIPE_PARAMS = Registry("recipes", plugins=("medgan.recipes.params",))


def recipe_classes() -> dict[str, type[RecipeParams]]:
    """Every registered ``recipe.name`` and its parameter model."""
    return {name: RECIPE_PARAMS.get(name) for name in RECIPE_PARAMS.names()}


class RunConfig(_Section):
    """Where a run writes: ``config.yaml``, ``checkpoints/``, ``model/``, ``samples/``, ``tb/``, ``metrics.csv``."""

    dir: str = Field("runs/experiment", description="run directory (created)")
    checkpoint_every: int | None = Field(
        None, ge=1, description="also refresh checkpoints/last.ckpt every N iterations (always at epoch end)"
    )


class DataConfig(_Section):
    """What :class:`medgan.data.CTDataModule` is built from (``DATASET/{train,val,test}/{source,target}``)."""

    root: str = Field(..., description="dataset folder made by `medgan-prepare`")
    pairing: Literal["paired", "unpaired", "single"] = Field(
        "paired", description="paired source/target, unpaired (CycleGAN) or single (target domain only)"
    )
    patch_size: list[int] = Field([64, 64], description="training patch, 2 ints (2D/2.5D) or 3 ints (3D)")
    batch_size: int = Field(1, ge=1, description="patches per optimiser step and device")
    input_mode: Literal["2d", "2.5d", "3d"] = Field("2d", description="axial slices, slabs or 3D patches")
    context_slices: int = Field(1, ge=0, description="2.5D: neighbouring slices on each side")
    normalization: dict[str, Any] | None = Field(
        None, description="HUNormalizer settings (default window [-1024, 3071] HU -> [-1, 1])"
    )
    scale: int = Field(1, ge=1, description="super-resolution factor (target patch = patch_size x scale)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    cache: bool | Literal["memory", "disk"] = Field(
        False, description="false: read on demand; true/'memory': keep decoded volumes in memory; 'disk': "
        "MONAI PersistentDataset under cache_dir")
    cache_dir: str | None = Field(None, description="folder of the 'disk' cache (required with cache: disk)")
    max_in_memory: int = Field(4, ge=1, description="volumes kept per process without the memory cache")
    samples_per_volume: int | None = Field(
        None, ge=1, description="training samples per volume read (default 1 with the memory cache, else 8)")
    patient_regex: str | None = Field(
        None, description="regex whose first group reads the patient from a case name (when dataset.json does not say)")
    samples_per_epoch: int | None = Field(None, ge=1, description="training patches per epoch (default: one per slice)")
    val_max_slices: int | None = Field(
        None, ge=1, description="validation: the central N slices of each case (default: the whole volume)")
    sr_pairs: dict[str, Any] | None = Field(
        None, description="super-resolution: make training pairs on the fly from the high-resolution targets at "
        "random pixel sizes (medgan.data.sr_pairs: pixel_range, resample_prob, max_size, noise_range, "
        "attenuation_jitter, flips); null: the prepared pairs as they are")
    dose_pairs: dict[str, Any] | None = Field(
        None, description="denoising: make training pairs on the fly from the full-dose targets, a calibrated "
        "projection-domain simulation at a random dose after random pixel size / slice thickness, attenuation "
        "jitter and flips (medgan.data.augment.pair_transforms: dose_range, pixel_range, thickness_range, "
        "size_multiple, max_size, attenuation_jitter, flips, simulator); null: the prepared pairs as they are")

    @field_validator("patch_size")
    @classmethod
    def _patch(cls, v: list[int]) -> list[int]:
        if len(v) not in (2, 3) or any(int(s) < 4 for s in v):
            raise ValueError(f"must be 2 or 3 sizes >= 4, got {v}")
        return v

    @model_validator(mode="after")
    def _dims_match_mode(self) -> DataConfig:
        want = 3 if self.input_mode == "3d" else 2
        if len(self.patch_size) != want:
            raise ValueError(
                f"data.patch_size {self.patch_size} has {len(self.patch_size)} sizes but data.input_mode "
                f"'{self.input_mode}' needs {want}"
            )
        if self.cache == "disk" and self.cache_dir is None:
            raise ValueError("data.cache_dir is required when data.cache is 'disk' (a folder for the cached tensors)")
        if self.patient_regex is not None:
            try:
                re.compile(self.patient_regex)
            except re.error as err:
                raise ValueError(f"data.patient_regex {self.patient_regex!r} is not a regular expression ({err})") from None
        return self


class NetsConfig(_Section):
    """Networks by role; each is ``type:`` (a name in ``medgan.nets.NETS``) + its keyword arguments."""

    generator: Component = Field(..., description="generator / autoencoder / denoiser (the net used at inference)")
    discriminator: Component | None = Field(None, description="discriminator of the adversarial recipes")

    @field_validator("generator", "discriminator")
    @classmethod
    def _has_type(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return v if v is None else check_component(v)


class OptimConfig(_Section):
    """Adam/AdamW for every net; the discriminator may get its own learning rate."""

    type: Literal["adam", "adamw"] = Field("adam", description="optimiser of every net")
    lr: float = Field(2e-4, gt=0, description="learning rate of the generator(s)")
    lr_d: float | None = Field(None, gt=0, description="learning rate of the discriminator(s) (default: lr)")
    betas: list[float] = Field([0.5, 0.999], description="Adam betas (2 floats)")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (adam) or decoupled decay (adamw)")

    @field_validator("betas")
    @classmethod
    def _two(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not all(0 <= b < 1 for b in v):
            raise ValueError(f"must be 2 floats in [0, 1), got {v}")
        return v


class SchedulerConfig(_Section):
    """Learning-rate schedule, stepped once per optimiser step over ``trainer.max_steps``."""

    type: Literal["constant", "linear_decay", "cosine", "step"] = Field(
        "constant", description="linear_decay: constant until decay_start, then linearly to 0 (CycleGAN)"
    )
    decay_start: float = Field(0.5, ge=0, le=1, description="fraction of training where linear decay starts")
    total_steps: int | None = Field(
        None, ge=1, description="length of the schedule (default trainer.max_steps); fix it to extend a run by resuming"
    )
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0")
    step_size: int = Field(1000, ge=1, description="step: decay every step_size steps")
    gamma: float = Field(0.5, gt=0, description="step: multiplier")

    def check_has_a_length(self, trainer: TrainerConfig) -> None:
        """Refuse a decaying schedule whose length nothing fixes: with only ``trainer.max_time`` set, the
        number of steps is unknown until the clock runs out.

        Raises:
            ConfigError: ``type`` is ``linear_decay`` or ``cosine``, ``total_steps`` is unset and the trainer
                ends by time alone.
        """
        by_time_only = trainer.max_steps <= 0 and trainer.max_epochs is None and trainer.max_time is not None
        if self.type in ("linear_decay", "cosine") and self.total_steps is None and by_time_only:
            raise ConfigError(
                f"scheduler.type={self.type} decays over a known number of steps, but only trainer.max_time "
                "ends this run: set trainer.max_steps or scheduler.total_steps"
            )


Precision = Literal["32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "64-true"]


class TrainerConfig(_Section):
    """Lightning ``Trainer`` settings (names as in Lightning)."""

    max_steps: int = Field(-1, ge=-1, description="optimiser steps (generator steps for GANs); -1: by epochs")
    max_epochs: int | None = Field(None, ge=1, description="epochs; set max_steps, max_epochs or max_time (none set is refused)")
    max_time: str | dict[str, int] | None = Field(
        None, description="wall-time limit as Lightning's 'DD:HH:MM:SS' or {days, hours, minutes, seconds}; "
        "training then ends like a normal end (last.ckpt, model/)")
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = Field("auto", description="auto: GPU when present")
    devices: int | str | list[int] = Field("auto", description="count, 'auto' or a list of GPU ids")
    num_nodes: int = Field(1, ge=1, description="machines for multi-node DDP (SLURM/torchrun)")
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp"] = "auto"
    precision: Precision = Field("32-true", description="'bf16-mixed' / '16-mixed' for AMP on GPU")
    gradient_clip_val: float | None = Field(None, gt=0, description="clip each net's gradient norm")
    accumulate_grad_batches: int = Field(1, ge=1, description="batches per optimiser step")
    val_check_interval: int | float | None = Field(
        None, description="validate every N training batches (int) or fraction of an epoch (float)"
    )
    check_val_every_n_epoch: int | None = Field(1, ge=1, description="validate every N epochs (when the interval is not an int)")
    limit_val_batches: int | float = Field(1.0, ge=0, description="validation batches (int) or fraction")
    num_sanity_val_steps: int = Field(0, ge=-1, description="validation batches run before training (catches bugs early)")
    log_every_n_steps: int = Field(10, ge=1, description="training-loss logging interval (iterations)")
    deterministic: bool | Literal["warn"] = Field(False, description="deterministic algorithms (slower)")
    benchmark: bool | None = Field(None, description="cudnn.benchmark")
    enable_progress_bar: bool = Field(True, description="tqdm progress bar with the losses")
    matmul_precision: Literal["highest", "high", "medium"] | None = Field(
        None, description="torch.set_float32_matmul_precision (TF32 on Ampere+ with 'high')"
    )

    @field_validator("max_time")
    @classmethod
    def _max_time(cls, v: str | dict[str, int] | None) -> str | dict[str, int] | None:
        if isinstance(v, str):
            if not re.fullmatch(r"\d{1,3}:\d{2}:\d{2}:\d{2}", v.strip()):
                raise ValueError(f"expected 'DD:HH:MM:SS' (e.g. 00:00:14:00 for 14 minutes), got {v!r}")
            return v.strip()
        if isinstance(v, dict):
            allowed = ("days", "hours", "minutes", "seconds")
            bad = [k for k in v if k not in allowed]
            if bad or any(int(x) < 0 for x in v.values()):
                raise ValueError(f"keys {allowed} with values >= 0, got {v!r}")
        return v

    def check_has_an_end(self) -> None:
        """Refuse a run with no end (checked when training starts, so partial configs still load).

        Raises:
            ConfigError: none of ``max_steps`` (> 0), ``max_epochs`` and ``max_time`` is set.
        """
        if self.max_steps <= 0 and self.max_epochs is None and self.max_time is None:
            raise ConfigError("set trainer.max_steps (> 0), trainer.max_epochs or trainer.max_time; none is set")

    def max_time_seconds(self) -> float | None:
        """``max_time`` in seconds (``None`` when unset)."""
        if self.max_time is None:
            return None
        if isinstance(self.max_time, dict):
            t = self.max_time
            return 86400.0 * t.get("days", 0) + 3600.0 * t.get("hours", 0) + 60.0 * t.get("minutes", 0) + t.get("seconds", 0)
        d, h, m, sec = (int(x) for x in self.max_time.split(":"))
        return 86400.0 * d + 3600.0 * h + 60.0 * m + sec


class Window(_Section):
    """An HU display/metric window."""

    center: float = Field(..., description="window centre (level), HU")
    width: float = Field(..., gt=0, description="window width, HU")


#: ldct-benchmark windows (Eulig et al. 2024): chest C-600/W1500, abdomen C50/W400, head C40/W80.
NAMED_WINDOWS: dict[str, tuple[float, float]] = {
    "chest": (-600.0, 1500.0),
    "abdomen": (50.0, 400.0),
    "head": (40.0, 80.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
}


def parse_window(text: str) -> tuple[float, float]:
    """A window given on a command line, ``chest`` (any :data:`NAMED_WINDOWS` name) or ``CENTER,WIDTH`` in
    HU, as ``(low, high)`` HU.

    Raises:
        ConfigError: neither a known name nor two numbers, or a width that is not positive.
    """
    if text in NAMED_WINDOWS:
        center, width = NAMED_WINDOWS[text]
    else:
        try:
            center, width = (float(v) for v in text.split(","))
        except ValueError:
            raise ConfigError(
                f"got '{text}', expected one of {sorted(NAMED_WINDOWS)} or CENTER,WIDTH in HU (e.g. 40,400)"
            ) from None
        if width <= 0:
            raise ConfigError(f"width must be > 0, got {width:g}")
    return center - width / 2, center + width / 2


class DiversityConfig(_Section):
    """Mode-collapse monitor of generative recipes: mean pairwise distance of outputs of a fixed batch."""

    enabled: bool | None = Field(None, description="default: on for dcgan/cgan/cyclegan/pix2pix/srgan")
    samples: int = Field(8, ge=2, description="fixed inputs (latent vectors or validation slices)")
    warn_fraction: float = Field(0.25, gt=0, le=1, description="warn when diversity < this x its first value")
    min_diversity: float = Field(1e-3, ge=0, description="collapse also when diversity <= this (normalised units)")
    on_collapse: Literal["warn", "restore"] = Field(
        "warn", description="warn, or also restore the last healthy state (weights + optimisers) and lower the lr")
    lr_factor: float = Field(0.5, gt=0, le=1, description="on_collapse=restore: learning rates are multiplied by this")


class ValidationConfig(_Section):
    """Validation metrics (in HU, ldct-benchmark protocol) and figures."""

    window: str | Window = Field("chest", description=f"metric window: one of {sorted(NAMED_WINDOWS)} or {{center, width}}")
    panel_window: str | Window | None = Field(None, description="window of the PNG panels (default: window)")
    panels: int = Field(1, ge=0, description="PNG panels per validation (0: none)")
    monitor: Literal["ssim", "psnr", "rmse", "unpaired_gain_db"] = Field(
        "ssim", description="metric that selects best.ckpt (unpaired_gain_db: CycleGAN, needs no target)")
    diversity: DiversityConfig = DiversityConfig()

    @field_validator("window", "panel_window")
    @classmethod
    def _named(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in NAMED_WINDOWS:
            raise ValueError(f"unknown window '{v}'; allowed: {sorted(NAMED_WINDOWS)} or {{center, width}}")
        return v

    def hu_window(self, which: str = "window") -> tuple[float, float]:
        """``(low, high)`` HU of the metric window (``which="window"``) or of the panels."""
        w = getattr(self, which) if which == "window" or self.panel_window is not None else self.window
        center, width = NAMED_WINDOWS[w] if isinstance(w, str) else (w.center, w.width)
        return center - width / 2, center + width / 2


class LoggingConfig(_Section):
    """Loggers (Lightning's): TensorBoard and CSV, both in run.dir."""

    tensorboard: bool = Field(True, description="TensorBoard event files under run.dir/tb")
    csv: bool = Field(True, description="run.dir/metrics.csv")


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


# ---------------------------------------------------------------------------------------------- loading

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
