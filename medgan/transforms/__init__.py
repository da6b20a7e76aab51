"""Transforms on CT volumes: HU normalisation with exact inverses, dose simulation, SR degradations."""

from medgan.transforms.intensity import HUNormalizer, NormalizeHUd, build_normalizer

__all__ = ["HUNormalizer", "NormalizeHUd", "build_normalizer"]
