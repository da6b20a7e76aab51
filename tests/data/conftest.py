"""Tiny datasets cut from the real chest CT, in the medgan layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import medgan.data.volumes as volumes


@pytest.fixture(autouse=True)
def _reader(monkeypatch):
    """Use medgan.io.read_volume when it exists; until then MONAI's ITK loader (same contract: (1, X, Y, Z)
    float32 HU, RAS affine). Test-only stand-in."""
    try:
        from medgan.io import read_volume  # noqa: F401
    except ImportError:
        monkeypatch.setattr(volumes, "_read", _sitk_read)


def _sitk_read(path):
    """(1, X, Y, Z) float32 HU with the RAS affine, via SimpleITK (files only)."""
    import torch
    from monai.data import MetaTensor

    image = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(image).astype(np.float32).transpose(2, 1, 0)[None]
    lps = np.eye(4)
    lps[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return MetaTensor(torch.from_numpy(arr.copy()), affine=torch.from_numpy(affine))


@pytest.fixture(scope="session")
def chest_crop(ct_chest_path) -> sitk.Image:
    """A 40 (x) x 32 (y) x 8 (z) crop of the chest CT, HU int16, with its real spacing and origin."""
    image = sitk.ReadImage(str(ct_chest_path))
    return sitk.Cast(image[40:80, 48:80, 12:20], sitk.sitkInt16)


def write_case(image: sitk.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def noisy(image: sitk.Image, seed: int, sigma: float = 30.0) -> sitk.Image:
    """The image plus Gaussian noise, rounded to int16 HU (stands in for a low-dose scan)."""
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    arr += np.random.default_rng(seed).normal(0, sigma, arr.shape)
    out = sitk.GetImageFromArray(np.round(arr).astype(np.int16))
    out.CopyInformation(image)
    return out


def shifted(image: sitk.Image, k: int) -> sitk.Image:
    """A different-looking case: the crop rolled by ``k`` voxels in x (same geometry)."""
    arr = np.roll(sitk.GetArrayFromImage(image), k, axis=2)
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    return out


@pytest.fixture
def make_dataset(tmp_path, chest_crop):
    """``make_dataset(train=[...], val=[...], labels={...}, depth={case: z})`` -> a dataset root."""

    def make(train=("P1_a", "P1_b", "P2_a"), val=("P3_a",), test=(), labels=None, depth=None, ext=".nrrd"):
        root = tmp_path / "ds"
        cases = {}
        for split, names in (("train", train), ("val", val), ("test", test)):
            for k, name in enumerate(names):
                image = shifted(chest_crop, 3 * k + len(cases))
                if depth and name in depth:
                    image = image[:, :, : depth[name]]
                write_case(image, root / split / "target" / f"{name}{ext}")
                write_case(noisy(image, seed=k), root / split / "source" / f"{name}{ext}")
                cases.setdefault(split, []).append(
                    {"name": name, "patient": name.split("_")[0], "label": (labels or {}).get(name, 0)}
                )
        (root / "dataset.json").write_text(json.dumps({"task": "test", "cases": cases}))
        return root

    return make
