"""Transforms on CT volumes: HU normalisation with exact inverses, dose simulation, SR degradations."""

from medgan.transforms.degrade import DegradeForSRd, degrade_for_sr
from medgan.transforms.intensity import HUNormalizer, NormalizeHUd, build_normalizer, fit_zscore
from medgan.transforms.lowdose import RandSimulateLowDosed, SimulateLowDosed, simulate_low_dose
from medgan.transforms.projector import ParallelBeamProjector
from medgan.transforms.projector_cache import get_projector

__all__ = [
    "DegradeForSRd",
    "HUNormalizer",
    "NormalizeHUd",
    "ParallelBeamProjector",
    "RandSimulateLowDosed",
    "SimulateLowDosed",
    "build_normalizer",
    "degrade_for_sr",
    "fit_zscore",
    "get_projector",
    "simulate_low_dose",
]
