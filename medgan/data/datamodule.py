"""``CTDataModule``: a prepared dataset folder as Lightning train / val / test loaders.

Train batches are random patches drawn with per-patient weights (:mod:`medgan.data.sampling`); val and
test batches are whole paired slices (2D/2.5D) or centred 3D patches, in a fixed order, for HU-window
metrics. The same ``seed`` gives the same batches, with any number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from medgan.data.datasets import INPUT_MODES, CTSampleDataset, Pile
from medgan.data.sampling import PairSampler, patient_weights
from medgan.data.volumes import VolumeStore, parse_cache
from medgan.errors import ConfigError, InputError
from medgan.io.layout import CaseInfo, DatasetLayout, load_layout
from medgan.transforms.intensity import build_normalizer

PAIRINGS = ("paired", "unpaired", "single")


def _check_choice(key: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ConfigError(f"data.{key}: got {value!r}, allowed: {', '.join(repr(a) for a in allowed)}")


def _check_int(key: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(
            f"data.{key}: expected an integer >= {minimum}{' or null' if allow_none else ''}, got {value!r}"
        )


class CTDataModule(pl.LightningDataModule):
    """Lightning DataModule over ``DATASET/{train,val,test}/{source,target}`` (see ``docs/data_layout.md``).

    Args:
        root: the dataset folder.
        pairing: ``"paired"`` (matched by case name), ``"unpaired"`` (two independently shuffled piles) or
            ``"single"`` (target pile only; ``"source"`` and ``"target"`` hold the same image).
        patch_size: training patch in source voxels, (X, Y) for 2D/2.5D or (X, Y, Z) for 3D; smaller
            images are padded with air.
        batch_size: training batch size (val/test use 1: whole slices differ in size between cases).
        input_mode: ``"2d"``, ``"2.5d"`` (2·context_slices+1 source channels) or ``"3d"``.
        context_slices: neighbours on each side in 2.5D.
        normalization: :func:`medgan.transforms.intensity.build_normalizer` config (default window
            [-1024, 3071] HU -> [-1, 1]).
        scale: target/source in-plane ratio (super-resolution); 1 for dose pairs.
        num_workers: DataLoader worker processes (and threads that fill a memory cache).
        cache: ``False`` | ``True``/``"memory"`` | ``"disk"`` (see :mod:`medgan.data.volumes`).
        samples_per_epoch: training samples per epoch (default: one per training slice, or case in 3D).
        val_max_slices: at most this many evenly spaced slices per val/test case (default: all).
        seed: the sampling seed.
        cache_dir: folder of the ``"disk"`` cache.
        max_in_memory: volumes kept per process when ``cache`` is ``False`` or ``"disk"``.
        samples_per_volume: training samples taken from a volume each time one is picked (a TorchIO-style
            queue that keeps the per-sample probabilities exact); default 1 with the memory cache (plain
            i.i.d. draws), else 8 so that a volume read serves several samples.
        patient_regex: how to read the patient from a case name when ``dataset.json`` does not say.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        pairing: str = "paired",
        patch_size: Sequence[int] = (64, 64),
        batch_size: int = 1,
        input_mode: str = "2d",
        context_slices: int = 1,
        normalization: Mapping[str, Any] | None = None,
        scale: int = 1,
        num_workers: int = 0,
        cache: bool | str = False,
        samples_per_epoch: int | None = None,
        val_max_slices: int | None = None,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        max_in_memory: int = 4,
        patient_regex: str | None = None,
        samples_per_volume: int | None = None,
    ) -> None:
        super().__init__()
        _check_choice("pairing", pairing, PAIRINGS)
        _check_choice("input_mode", input_mode, INPUT_MODES)
        dims = 3 if input_mode == "3d" else 2
        patch = list(patch_size) if isinstance(patch_size, (list, tuple)) else None
        if patch is None or len(patch) != dims or not all(isinstance(p, int) and p >= 1 for p in patch):
            raise ConfigError(
                f"data.patch_size: input_mode '{input_mode}' needs {dims} positive integers, got {patch_size!r}"
            )
        _check_int("batch_size", batch_size, 1)
        _check_int("context_slices", context_slices, 0)
        _check_int("scale", scale, 1)
        _check_int("num_workers", num_workers, 0)
        _check_int("samples_per_epoch", samples_per_epoch, 1, allow_none=True)
        _check_int("val_max_slices", val_max_slices, 1, allow_none=True)
        _check_int("seed", seed, 0)
        _check_int("max_in_memory", max_in_memory, 1)
        _check_int("samples_per_volume", samples_per_volume, 1, allow_none=True)
        cache_mode = parse_cache(cache, cache_dir)
        if samples_per_volume is None:
            samples_per_volume = 1 if cache_mode == "memory" else 8
        self.samples_per_volume = samples_per_volume
        self.root = root
        self.pairing, self.input_mode, self.context_slices = pairing, input_mode, context_slices
        self.patch_size, self.batch_size, self.scale = tuple(patch), batch_size, scale
        self.normalizer = build_normalizer(normalization)
        self.num_workers, self.cache, self.cache_dir = num_workers, cache, cache_dir
        self.samples_per_epoch, self.val_max_slices, self.seed = samples_per_epoch, val_max_slices, seed
        self.max_in_memory, self.patient_regex = max_in_memory, patient_regex
        self.layout: DatasetLayout | None = None
        self.train_set: CTSampleDataset | None = None
        self._eval_sets: dict[str, CTSampleDataset] = {}

    # -- building -------------------------------------------------------------------------------------------
    def _pile(self, cases: Sequence[CaseInfo], role: str, split: str) -> Pile:
        cache_dir = None if self.cache_dir is None else os.path.join(os.fspath(self.cache_dir), split, role)
        store = VolumeStore(
            [getattr(c, role) for c in cases],
            cache=self.cache,
            cache_dir=cache_dir,
            max_in_memory=self.max_in_memory,
            num_workers=self.num_workers,
        )
        return Pile(store, list(cases))

    def _dataset(self, split: str, train: bool) -> CTSampleDataset | None:
        layout = self.layout
        assert layout is not None
        common = {
            "input_mode": self.input_mode,
            "context_slices": self.context_slices,
            "scale": self.scale,
            "normalizer": self.normalizer,
        }
        if train:
            common["patch_size"] = self.patch_size
        else:
            common["patch_size"] = self.patch_size if self.input_mode == "3d" else None
            common["max_slices"] = self.val_max_slices

        if self.pairing == "single":
            cases = layout.cases(split, "target")
            if not cases:
                if train:
                    raise InputError(
                        f"data.root: no cases in {layout.root}/{split}/target (pairing 'single')"
                    )
                return None
            pile = self._pile(cases, "target", split)
            return CTSampleDataset(pile, pile, paired=True, **{**common, "scale": 1})
        if train and self.pairing == "unpaired":
            sources, targets = layout.cases(split, "source"), layout.cases(split, "target")
            for role, cases in (("source", sources), ("target", targets)):
                if not cases:
                    raise InputError(
                        f"data.root: no cases in {layout.root}/{split}/{role} (pairing 'unpaired')"
                    )
            return CTSampleDataset(
                self._pile(sources, "source", split),
                self._pile(targets, "target", split),
                paired=False,
                **common,
            )
        # Paired training, and every evaluation: metrics need the matching full-dose / high-res slice.
        if train or self.pairing == "paired":
            layout.check_paired(split)
        cases = layout.paired(split)
        if not cases:
            if train:
                raise InputError(f"data.root: no paired cases in {layout.root}/{split}")
            return None
        return CTSampleDataset(
            self._pile(cases, "source", split), self._pile(cases, "target", split), paired=True, **common
        )

    def setup(self, stage: str | None = None) -> None:
        """Discover the layout and read the volumes the stage needs (idempotent)."""
        if self.layout is None:
            self.layout = load_layout(self.root, self.patient_regex)
            wanted = self.layout.manifest.get("scale")
            if self.pairing != "single" and isinstance(wanted, int) and wanted != self.scale:
                raise ConfigError(
                    f"data.scale: got {self.scale}, but {self.layout.root}/dataset.json says the dataset was "
                    f"prepared with scale {wanted}; set data.scale={wanted}"
                )
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._dataset("train", train=True)
        splits = {"fit": ["val"], "validate": ["val"], "test": ["test"], None: ["val", "test"]}.get(stage, [])
        for split in splits:
            if split not in self._eval_sets:
                self._eval_sets[split] = self._dataset(split, train=False)

    # -- loaders --------------------------------------------------------------------------------------------
    def train_sampler(self) -> PairSampler:
        """The seeded sampler of the training loader (per-patient weights; independent streams if unpaired)."""
        if self.train_set is None:
            self.setup("fit")
        ds = self.train_set
        assert ds is not None
        target_weights = None if ds.paired else patient_weights(ds.weights_patients("target"))
        return PairSampler(
            patient_weights(ds.weights_patients("source")),
            target_weights,
            num_samples=self.samples_per_epoch or len(ds),
            seed=self.seed,
            source_cases=[case for case, _ in ds.source_samples],
            target_cases=None if ds.paired else [case for case, _ in ds.target_samples],
            samples_per_volume=self.samples_per_volume,
            volumes_per_window=self.max_in_memory,
        )

    def _loader_kwargs(self) -> dict[str, Any]:
        return {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}

    def train_dataloader(self) -> DataLoader:
        sampler = self.train_sampler()
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=False,
            **self._loader_kwargs(),
        )

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in self._eval_sets:
            self.setup("validate" if split == "val" else "test")
        dataset = self._eval_sets.get(split)
        return DataLoader(
            dataset if dataset is not None else [], batch_size=1, shuffle=False, **self._loader_kwargs()
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
