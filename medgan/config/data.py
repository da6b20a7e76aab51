"""The ``data:`` section: the dataset, patches, caching and on-the-fly pair making."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from medgan.config.base import _Section


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
        "jitter and flips (medgan.data.augment.pair_transforms: dose_range, pixel_range, thickness_range, upsample, "
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
