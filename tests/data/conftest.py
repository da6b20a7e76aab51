"""Tiny datasets cut from the real chest CT, in the medgan layout."""

from __future__ import annotations

import json

import pytest
import SimpleITK as sitk

from tests.data.builders import noisy, shifted, write_case


@pytest.fixture(scope="session")
def chest_crop(ct_chest_path) -> sitk.Image:
    """A 40 (x) x 32 (y) x 8 (z) crop of the chest CT, HU int16, with its real spacing and origin."""
    image = sitk.ReadImage(str(ct_chest_path))
    return sitk.Cast(image[40:80, 48:80, 12:20], sitk.sitkInt16)


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
