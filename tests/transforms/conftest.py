"""Fixtures of the simulation tests: generated, noise-free, tiny phantoms."""

from __future__ import annotations

import pytest
import torch

from tests.transforms.phantoms import water_cylinder


@pytest.fixture(scope="module")
def cylinder_stack() -> torch.Tensor:
    """Eight identical 128x128 water-cylinder slices: independent noise per slice gives sigma to ~1%."""
    return torch.from_numpy(water_cylinder())[None].repeat(8, 1, 1)
