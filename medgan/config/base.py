"""The parts every section of the schema shares: the strict section base, net/loss components and the
``recipe:`` section's base with the registry of recipe parameter models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from medgan.registry import Registry

if TYPE_CHECKING:
    from medgan.config.experiment import ExperimentConfig


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
