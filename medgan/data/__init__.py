"""Datasets and the Lightning DataModule over the medgan dataset layout (``docs/data_layout.md``)."""

from medgan.data.datamodule import CTDataModule
from medgan.data.datasets import CTSampleDataset, Pile
from medgan.data.sampling import PairSampler, patient_weights
from medgan.data.volumes import VolumeStore

__all__ = ["CTDataModule", "CTSampleDataset", "PairSampler", "Pile", "VolumeStore", "patient_weights"]
