"""Net arguments renamed to MONAI's names, and reading stored net configs that use the old ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from medgan.registry import renamed_to

#: net arguments renamed to MONAI's names (old -> new). An old name is refused with the new one
#: (:meth:`medgan.registry.Registry.build`); a model package saved under an old name is read with the new one
#: (:func:`rename_old_arguments`). ``channels`` was a single base width in some nets; those take
#: ``feature_size`` now, and ``channels`` is always one width per level.
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


def rename_old_arguments(factory: Callable[..., Any], kwargs: Mapping[str, Any],
                         renamed: Mapping[str, str] = RENAMED_NET_ARGUMENTS) -> dict[str, Any]:
    """``kwargs`` with old argument names replaced by the names ``factory`` takes now (a new dict).

    For model packages written before a rename: the weights do not depend on argument names, so a stored
    net is read under the new names instead of being refused.
    """
    return {(renamed_to(key, factory, renamed) or key): value for key, value in kwargs.items()}
