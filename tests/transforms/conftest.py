"""Fixtures of the simulation tests: generated, noise-free, tiny phantoms."""

from __future__ import annotations

import pytest
import torch

from tests.transforms.phantoms import water_cylinder


@pytest.fixture(scope="module")
def cylinder_stack() -> torch.Tensor:
    """Eight identical 128x128 water-cylinder slices: independent noise per slice gives sigma to ~1%."""
    return torch.from_numpy(water_cylinder())[None].repeat(8, 1, 1)


@pytest.fixture(autouse=True, scope="session")
def _private_operator_cache(tmp_path_factory) -> None:
    """Operators built by these tests go to a temporary folder, not the user's cache (512x512 ones are GBs)."""
    import os

    from medgan.transforms.projector_cache import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("operator_cache"))
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old
