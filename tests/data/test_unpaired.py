"""medgan-prepare unpaired: two piles of different patients, optional held-out pairs, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from medgan.cli.prepare import main
from medgan.data.datamodule import CTDataModule
from medgan.data.unpaired import prepare_unpaired
from medgan.errors import InputError
from medgan.io.layout import load_layout, patients_in_two_splits
from tests.data.builders import noisy, shifted, write_case


@pytest.fixture
def piles(tmp_path, chest_crop):
    """``low/`` with patients L1..L4 (noisy), ``full/`` with F1..F4 (clean), all different crops."""
    for k in range(4):
        write_case(noisy(shifted(chest_crop, k), seed=k), tmp_path / "low" / f"L{k + 1}_ct.nrrd")
        write_case(shifted(chest_crop, 10 + k), tmp_path / "full" / f"F{k + 1}_ct.nrrd")
    return tmp_path / "low", tmp_path / "full"


def test_each_pile_goes_to_its_role_split_by_patient(tmp_path, piles, capsys):
    low, full = piles
    out = tmp_path / "ds"
    assert main(["unpaired", "--low", str(low), "--full", str(full), "--output", str(out),
                 "--split", "0.5,0.25,0.25", "--no-progress"]) == 0
    assert f"wrote {out} (train 4, val 2, test 2 cases)" in capsys.readouterr().out
    layout = load_layout(out)
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        sources = {c.patient for c in layout.cases(split, "source")}
        targets = {c.patient for c in layout.cases(split, "target")}
        assert len(sources) == len(targets) == n
        assert all(p.startswith("L") for p in sources) and all(p.startswith("F") for p in targets)
        assert layout.paired(split) == []  # no hidden pairs
    assert patients_in_two_splits(layout) == {}
    manifest = json.loads((out / "dataset.json").read_text())
    # input folders are stored relative to the dataset, so the dataset names nobody's home folder
    assert manifest["task"] == "unpaired" and manifest["input_full"] == "../full"
    assert (out / manifest["input_full"]).resolve() == full.resolve()
    # files are copied byte for byte: the HU of each case is untouched
    case = layout.cases("train", "source")[0]
    assert case.source.read_bytes() == (low / case.source.name).read_bytes()


def test_a_patient_in_both_piles_is_refused_and_nothing_is_written(tmp_path, piles, chest_crop, capsys):
    low, full = piles
    write_case(chest_crop, full / "L2_fulldose.nrrd")  # patient L2 also has a full-dose scan
    out = tmp_path / "ds"
    assert main(["unpaired", "--low", str(low), "--full", str(full), "--output", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "share patients L2" in err[0]
    assert not out.exists()


def test_held_out_pairs_join_val_and_test_and_feed_paired_validation(tmp_path, piles, make_dataset):
    low, full = piles
    paired = make_dataset(train=("P9_a",), val=("P5_a",), test=("P6_a",))
    out = prepare_unpaired(low, full, tmp_path / "unpaired", pairs=paired, split="1,0,0", progress=False)
    layout = load_layout(out)
    assert [c.name for c in layout.paired("val")] == ["P5_a"]
    assert [c.name for c in layout.paired("test")] == ["P6_a"]
    assert len(layout.cases("train", "source")) == len(layout.cases("train", "target")) == 4
    assert "P9_a" not in {c.name for s in layout.splits.values() for c in s.values()}  # pairs' train unused
    # the pair keeps its voxels: source is the noisy copy, target the clean one
    src = sitk.GetArrayFromImage(sitk.ReadImage(str(layout.paired("val")[0].source)))
    tgt = sitk.GetArrayFromImage(sitk.ReadImage(str(layout.paired("val")[0].target)))
    assert 10 < np.abs(src.astype(float) - tgt).mean() < 50
    dm = CTDataModule(out, pairing="unpaired", patch_size=[16, 16], batch_size=1, num_workers=0)
    dm.setup("fit")
    assert dm.train_set is not None and len(dm.val_dataloader()) > 0


def test_pairs_from_a_pile_patient_are_refused(tmp_path, piles, make_dataset):
    low, full = piles
    paired = make_dataset(train=(), val=("F3_b",), test=())
    with pytest.raises(InputError, match="--pairs and --full share patients F3"):
        prepare_unpaired(low, full, tmp_path / "unpaired", pairs=paired, progress=False)
