"""A tiny in-memory DataModule with the batch contract of ``medgan.data.CTDataModule``: training patches
(normalised) and whole validation cases (HU).

Each sample is a smooth random "anatomy" in HU plus noise on the source (the low-dose stand-in), drawn
from a generator seeded by the sample index, so batches do not depend on the global RNG.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from medgan.data.sampling import PairSampler, ResumableLoader
from medgan.transforms.intensity import HUNormalizer


class _Synthetic(Dataset):
    def __init__(self, n: int, patch: list[int], channels: int, scale: int, offset: int) -> None:
        self.n, self.patch, self.channels, self.scale, self.offset = n, patch, channels, scale, offset
        self.norm = HUNormalizer()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict:
        i = key[0] if isinstance(key, tuple) else key  # PairSampler keys: (source, target, crop seed)
        g = torch.Generator().manual_seed(1000 * self.offset + i)
        hi = [s * self.scale for s in self.patch]
        coarse = torch.rand(1, 1, *[max(s // 4, 2) for s in hi], generator=g) * 1500 - 1000
        mode = "trilinear" if len(hi) == 3 else "bilinear"
        full = F.interpolate(coarse, size=hi, mode=mode, align_corners=False)[0]
        low = full if self.scale == 1 else F.avg_pool2d(full, self.scale) if len(hi) == 2 else F.avg_pool3d(full, self.scale)
        low = low.repeat(self.channels, *[1] * len(hi)) + 80 * torch.randn(self.channels, *self.patch, generator=g)
        return {"source": self.norm(low).float(), "target": self.norm(full).float(), "case": f"case{i % 2}",
                "label": torch.tensor(i % 2), "slice_frac": torch.tensor(i / max(self.n - 1, 1))}


class _SyntheticCases(Dataset):
    """Whole cases ``(1, X, Y, Z)`` in HU, as :class:`medgan.data.CTVolumeDataset` gives them."""

    def __init__(self, n: int, patch: list[int], scale: int, depth: int = 3) -> None:
        self.n, self.patch, self.scale, self.depth = n, patch, scale, depth

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(5000 + i)
        size = self.patch if len(self.patch) == 3 else [*self.patch, self.depth]
        hi = [s * self.scale for s in size[:2]] + [size[2] * (self.scale if len(self.patch) == 3 else 1)]
        coarse = torch.rand(1, 1, *[max(s // 4, 2) for s in hi], generator=g) * 1500 - 1000
        full = F.interpolate(coarse, size=hi, mode="trilinear", align_corners=False)[0]
        low = full if self.scale == 1 else F.interpolate(full[None], size=size, mode="area")[0]
        low = low + 80 * torch.randn(low.shape, generator=g)
        return {"source_hu": low.float(), "target_hu": full.float(), "affine": torch.eye(4, dtype=torch.float64),
                "case": f"case{i}", "label": torch.tensor(i % 2)}


class SyntheticCTDataModule(pl.LightningDataModule):
    def __init__(self, patch_size=(16, 16), input_mode="2d", context_slices=1, scale=1, batch_size=1,
                 n_train=4, n_val=2, pairing="paired") -> None:
        super().__init__()
        channels = 2 * context_slices + 1 if input_mode == "2.5d" else 1
        self.pairing = pairing
        self.train_set = _Synthetic(n_train, list(patch_size), channels, scale, 0)
        self.val_set = _SyntheticCases(n_val, list(patch_size), scale)
        self.batch_size = batch_size

    def train_dataloader(self):
        # as CTDataModule: a seeded sampler, a loader that resumes mid-epoch, no draws from the global RNG
        n = len(self.train_set)
        sampler = PairSampler(torch.ones(n), None, num_samples=n, seed=0)
        return ResumableLoader(self.train_set, batch_size=self.batch_size, sampler=sampler,
                               generator=torch.Generator().manual_seed(0))

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=1, shuffle=False, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def synthetic_dm():
    return SyntheticCTDataModule


