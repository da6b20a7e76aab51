"""``CTDataModule``: a prepared dataset folder as Lightning train / val / test loaders.

Train batches are random patches drawn with per-patient weights (:mod:`medgan.data.sampling`); val and
test batches are whole paired slices (2D/2.5D) or centred 3D patches, in a fixed order, for HU-window
metrics. The same ``seed`` gives the same batches, with any number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from medgan.config import DataConfig, validate_data
from medgan.data.datasets import CTSampleDataset, CTVolumeDataset, Pile
from medgan.data.sampling import PairSampler, ResumableLoader, patient_weights
from medgan.data.volumes import VolumeStore, parse_cache
from medgan.errors import ConfigError, InputError
from medgan.io.layout import CaseInfo, DatasetLayout, load_layout
from medgan.transforms.intensity import build_normalizer


class CTDataModule(pl.LightningDataModule):
    """Lightning DataModule over ``DATASET/{train,val,test}/{source,target}`` (see ``docs/data_layout.md``).

    Train batches are random patches (:class:`CTSampleDataset`, keys ``source``/``target`` normalised); val
    and test batches are whole cases in HU (:class:`CTVolumeDataset`, keys ``source_hu``/``target_hu``), so
    validation runs the inferer users run on what they give it.

    Args:
        data: the validated ``data:`` section (:class:`medgan.config.DataConfig`) - the only schema of these
            settings - or a dataset folder, in which case ``settings`` are ``data:`` keys validated the same way.
        seed: the sampling seed.
        settings: ``data:`` keys when ``data`` is a folder (``patch_size=[32, 32]``, ``cache="disk"`` ...).

    Raises:
        ConfigError: a setting the ``data:`` schema refuses, naming ``data.<key>``.
    """

    def __init__(self, data: DataConfig | str | os.PathLike, seed: int = 0, **settings: Any) -> None:
        super().__init__()
        if not isinstance(data, DataConfig):
            data = validate_data({**settings, "root": os.fspath(data)})
        elif settings:
            data = validate_data({**data.model_dump(), **settings})
        self.cfg = data
        self.seed = int(seed)
        self.root = data.root
        self.pairing, self.input_mode, self.context_slices = data.pairing, data.input_mode, data.context_slices
        self.patch_size, self.batch_size, self.scale = tuple(data.patch_size), data.batch_size, data.scale
        self.normalizer = build_normalizer(data.normalization)
        self.num_workers, self.cache, self.cache_dir = data.num_workers, data.cache, data.cache_dir
        self.samples_per_epoch, self.val_max_slices = data.samples_per_epoch, data.val_max_slices
        self.max_in_memory, self.patient_regex = data.max_in_memory, data.patient_regex
        if data.samples_per_volume is not None:
            self.samples_per_volume = data.samples_per_volume
        else:  # plain i.i.d. draws when every volume is in memory; else a volume read serves several samples
            self.samples_per_volume = 1 if parse_cache(data.cache, data.cache_dir) == "memory" else 8
        self.layout: DatasetLayout | None = None
        self.train_set: CTSampleDataset | None = None
        self.class_names: list[str] | None = None  # from labels.csv, when the dataset has one
        self._eval_sets: dict[str, CTVolumeDataset | None] = {}

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

    def _dataset(self, split: str, train: bool) -> CTSampleDataset | CTVolumeDataset | None:
        layout = self.layout
        assert layout is not None
        common = {
            "input_mode": self.input_mode,
            "context_slices": self.context_slices,
            "scale": self.scale,
            "normalizer": self.normalizer,
            "patch_size": self.patch_size,
        }

        if self.pairing == "single":
            cases = layout.cases(split, "target")
            if not cases:
                if train:
                    raise InputError(
                        f"data.root: no cases in {layout.root}/{split}/target (pairing 'single')"
                    )
                return None
            pile = self._pile(cases, "target", split)
            if not train:
                return CTVolumeDataset(pile, pile, input_mode=self.input_mode, max_slices=self._eval_slices())
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
        source, target = self._pile(cases, "source", split), self._pile(cases, "target", split)
        if not train:
            return CTVolumeDataset(source, target, input_mode=self.input_mode, max_slices=self._eval_slices())
        if self.cfg.sr_pairs is not None:
            return self._sr_pairs(target)
        if self.cfg.dose_pairs is not None:
            return self._dose_pairs(target)
        return CTSampleDataset(source, target, paired=True, **common)

    def _sr_pairs(self, target: Pile) -> Any:
        """On-the-fly SR pairs from the high-resolution training targets (``data.sr_pairs``)."""
        from medgan.data.sr_pairs import SRPairDataset

        if self.scale < 2 or self.input_mode == "3d":
            raise ConfigError(f"data.sr_pairs: needs data.scale >= 2 and input_mode '2d' or '2.5d', got scale "
                              f"{self.scale} and '{self.input_mode}'")
        samples = target.samples(self.input_mode)
        return SRPairDataset(target.store, samples, self.patch_size, self.scale, self.normalizer,
                             dict(self.cfg.sr_pairs), self.context_slices if self.input_mode == "2.5d" else 0,
                             seed=self.seed, patients=[target.cases[i].patient for i, _ in samples])

    def _dose_pairs(self, target: Pile) -> Any:
        """On-the-fly low-dose pairs from the full-dose training targets (``data.dose_pairs``)."""
        from medgan.data.augment import SimulatedPairDataset

        if self.scale != 1 or self.input_mode == "3d":
            raise ConfigError(f"data.dose_pairs: needs data.scale 1 and input_mode '2d' or '2.5d', got scale "
                              f"{self.scale} and '{self.input_mode}'")
        samples = target.samples(self.input_mode)
        return SimulatedPairDataset(target.store, samples, self.patch_size, self.normalizer,
                                    dict(self.cfg.dose_pairs), self.context_slices if self.input_mode == "2.5d" else 0,
                                    seed=self.seed, patients=[target.cases[i].patient for i, _ in samples])

    def _eval_slices(self) -> int | None:
        """Central slices kept per val/test case: ``val_max_slices``, but a 3D net sees at least a patch deep."""
        if self.val_max_slices is None or self.input_mode != "3d":
            return self.val_max_slices
        return max(self.val_max_slices, self.patch_size[2])

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
            self.class_names = self._apply_class_labels(self.layout)
            self.train_set = self._dataset("train", train=True)
        splits = {"fit": ["val"], "validate": ["val"], "test": ["test"], None: ["val", "test"]}.get(stage, [])
        for split in splits:
            if split not in self._eval_sets:
                self._eval_sets[split] = self._dataset(split, train=False)

    # -- loaders --------------------------------------------------------------------------------------------
    @staticmethod
    def _apply_class_labels(layout: DatasetLayout) -> list[str] | None:
        """Labels from ``labels.csv`` beside the dataset (:mod:`medgan.synthesis.classes`) replace those of
        dataset.json; returns the class names (label order), or ``None`` without the file."""
        from medgan.synthesis.classes import read_class_labels

        labels = read_class_labels(layout.root)
        if labels is None:
            return None
        for cases in layout.splits.values():
            for case in cases.values():
                case.label = labels.label_of(case.name)
        return list(labels.names)

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
        # a loader-owned generator: starting an epoch draws its worker seed from it, not from the global RNG
        return {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0,
                "generator": torch.Generator().manual_seed(self.seed)}

    def train_dataloader(self) -> ResumableLoader:
        sampler = self.train_sampler()
        return ResumableLoader(
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
