"""medgan-prepare end to end: ldct on the real chest CT, DICOM in/out, TCIA tree, sr, check, user errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch

from medgan.cli.prepare import main
from medgan.io.layout import load_layout, patients_in_two_splits
from tests.data.builders import tcia_tree
from tests.dicom_fixtures import load_chest, write_dicom_series

FAST = ["--views", "60", "--no-progress"]


@pytest.fixture(scope="module")
def ldct_dataset(tmp_path_factory, ct_chest_path):
    """The real chest CT under four case names (patient C001 has two scans), prepared once."""
    src = tmp_path_factory.mktemp("scans")
    for name in ("L067", "C001_a", "C001_b", "N012"):
        shutil.copy(ct_chest_path, src / f"{name}.nrrd")
    out = src.parent / "dataset"
    code = main(
        [
            "ldct",
            "--input",
            str(src),
            "--output",
            str(out),
            "--dose",
            "0.25",
            "--split",
            "0.34,0.33,0.33",
            *FAST,
        ]
    )
    assert code == 0
    return src, out


def test_ldct_builds_a_loadable_patient_split_dataset(ldct_dataset, ct_chest_path, capsys):
    src, out = ldct_dataset
    layout = load_layout(out)
    assert patients_in_two_splits(layout) == {}
    where = {c: s for s, cases in layout.splits.items() for c in cases}
    assert sorted(where) == ["C001_a", "C001_b", "L067", "N012"]
    assert where["C001_a"] == where["C001_b"]
    assert sorted(len({c.patient for c in v.values()}) for v in layout.splits.values()) == [1, 1, 1]
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["task"] == "ldct" and manifest["dose"] == 0.25 and manifest["seed"] == 0
    assert manifest["simulator"] == {
        "photons": None,  # fitted to each scan's own noise
        "noise_hu": None,
        "electronic_noise": 10.0,
        "views": 60,
        "mode": "relative",
    }
    assert "photons/mm^2" in manifest["simulation"]["L067"] and "measured" in manifest["simulation"]["L067"]
    # C001's two scans share one noise level, measured on both; a one-scan patient is calibrated to itself
    assert list(manifest["patient_noise_hu"]) == ["C001"]
    own = float(manifest["simulation"]["L067"].split("full-dose noise ")[1].split(" HU")[0])
    assert manifest["patient_noise_hu"]["C001"] == pytest.approx(own, abs=0.01)  # the same chest CT
    for case in ("C001_a", "C001_b"):
        assert f"full-dose noise {own:.2f} HU (measured once for the patient)" in manifest["simulation"][case]
    assert manifest["medgan_version"] and manifest["split_fractions"] == [0.34, 0.33, 0.33]
    # the target is the input, byte for byte; the inputs are untouched
    split = where["L067"]
    assert (out / split / "target" / "L067.nrrd").read_bytes() == ct_chest_path.read_bytes()
    assert sorted(p.name for p in src.iterdir()) == sorted(f"{n}.nrrd" for n in where)
    # the source keeps the geometry and integer HU, and carries dose noise (different per case)
    full = sitk.ReadImage(str(ct_chest_path))
    low = sitk.ReadImage(str(out / split / "source" / "L067.nrrd"))
    assert low.GetSize() == full.GetSize() and low.GetPixelID() == sitk.sitkInt16
    assert np.allclose(low.GetSpacing(), full.GetSpacing()) and np.allclose(low.GetOrigin(), full.GetOrigin())
    noise = sitk.GetArrayFromImage(low).astype(float) - sitk.GetArrayFromImage(full)
    assert 5 < noise.std() < 300 and abs(noise.mean()) < 5
    a, b = (
        sitk.GetArrayFromImage(sitk.ReadImage(str(out / where[c] / "source" / f"{c}.nrrd")))
        for c in ("C001_a", "C001_b")
    )
    assert not np.array_equal(a, b)  # same scan, different case name: independent noise
    assert not list(out.parent.glob(".dataset*"))  # no staging folder left behind


def test_ldct_dataset_feeds_the_datamodule(ldct_dataset):
    from medgan.data import CTDataModule

    _, out = ldct_dataset
    dm = CTDataModule(out, patch_size=[32, 32], batch_size=2, seed=0, val_max_slices=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["source"].shape == (2, 1, 32, 32)
    assert (
        0.0005 < (batch["source"] - batch["target"]).std() < 0.2
    )  # noisy pair, not identical, not unrelated
    # validation scores whole cases through the inferer: one item per case, its central val_max_slices slices
    val_cases = load_layout(out).paired("val")
    assert len(dm.val_dataloader()) == len(val_cases)
    val_batch = next(iter(dm.val_dataloader()))
    assert val_batch["source_hu"].shape[-1] == 2


def test_prints_the_training_override(tmp_path, ct_chest_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    image = sitk.ReadImage(str(ct_chest_path))[:, :, 10:12]
    for name in ("a", "b"):
        sitk.WriteImage(image, str(src / f"{name}.nrrd"))
    out = tmp_path / "ds"
    assert (
        main(["ldct", "--input", str(src), "--output", str(out), "--dose", "0.5", "--format", "nifti", *FAST])
        == 0
    )
    stdout = capsys.readouterr().out
    assert f"data.root={out}" in stdout
    train = load_layout(out).paired("train")
    assert train and train[0].source.name.endswith(".nii.gz")
    # same command again: the output exists
    assert main(["ldct", "--input", str(src), "--output", str(out), "--dose", "0.5", *FAST]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (
        main(["ldct", "--input", str(src), "--output", str(out), "--dose", "0.5", "--overwrite", *FAST]) == 0
    )


def test_dicom_in_gives_derived_dicom_out(tmp_path):
    src = tmp_path / "in"
    for k, name in enumerate(("P1", "P2")):
        hu = load_chest((slice(40, 72), slice(40 + 8 * k, 72 + 8 * k), slice(16, 18)))
        write_dicom_series(hu, src / name, patient_id=name, description="chest")
    out = tmp_path / "ds"
    assert (
        main(["ldct", "--input", str(src), "--output", str(out), "--dose", "0.25", "--split", "1,0,0", *FAST])
        == 0
    )
    low = sorted((out / "train" / "source" / "P1").glob("*.dcm"))
    full = sorted((out / "train" / "target" / "P1").glob("*.dcm"))
    assert len(low) == len(full) == 2
    low_ds, full_ds = pydicom.dcmread(low[0]), pydicom.dcmread(full[0])
    assert low_ds.StudyInstanceUID == full_ds.StudyInstanceUID
    assert low_ds.SeriesInstanceUID != full_ds.SeriesInstanceUID
    assert "DERIVED" in low_ds.ImageType
    from medgan.io import read_volume

    low_vol, full_vol = (
        read_volume(out / "train" / "source" / "P1"),
        read_volume(out / "train" / "target" / "P1"),
    )
    assert torch.allclose(low_vol.affine, full_vol.affine, atol=1e-4)
    assert 0 < (low_vol - full_vol).std() < 300


def test_tcia_tree_split_balanced_by_exam(tmp_path):
    patients = {
        f"{exam}{i:03d}": seed for seed, (exam, i) in enumerate((e, i) for e in "CLN" for i in range(1, 3))
    }
    root = tcia_tree(tmp_path / "LDCT-and-Projection-data", patients, size=16, slices=2)
    out = tmp_path / "ds"
    assert (
        main(
            ["tcia-ldct", "--input", str(root), "--output", str(out), "--split", "0.5,0.5,0", "--no-progress"]
        )
        == 0
    )
    layout = load_layout(out)
    for split in ("train", "val"):
        exams = sorted(c.extra["exam"] for c in layout.paired(split))
        assert exams == ["C", "L", "N"], split  # one patient of each exam type per split
    manifest = json.loads((out / "dataset.json").read_text())
    entry = next(e for e in manifest["cases"]["train"] + manifest["cases"]["val"] if e["name"] == "C001")
    assert entry["dose"] == 0.1 and entry["label"] == 0 and entry["exam"] == "C"
    case = layout.splits["train"][layout.paired("train")[0].name]
    assert pydicom.dcmread(next(case.source.glob("*.dcm"))).SeriesDescription == "Low Dose Images"
    assert pydicom.dcmread(next(case.target.glob("*.dcm"))).SeriesDescription == "Full Dose Images"

    from medgan.data import CTDataModule
    from medgan.io import read_volume

    dm = CTDataModule(out, patch_size=[16, 16], batch_size=3)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch["label"].tolist()) <= {0, 1, 2} and batch["source"].shape == (3, 1, 16, 16)
    # --format nifti converts the series; HU and geometry survive
    nifti = tmp_path / "ds_nifti"
    args = [
        "tcia-ldct",
        "--input",
        str(root),
        "--output",
        str(nifti),
        "--split",
        "0.5,0.5,0",
        "--no-progress",
    ]
    assert main([*args, "--format", "nifti"]) == 0
    converted = load_layout(nifti).splits["train"][case.name]
    assert converted.target.name == f"{case.name}.nii.gz"
    a, b = read_volume(converted.target), read_volume(case.target)
    assert torch.equal(a, b) and torch.allclose(a.affine, b.affine, atol=1e-4)


def test_sr_pairs_have_the_scale(tmp_path, ct_chest_path):
    pytest.importorskip("medgan.transforms.degrade", reason="engineer B's degrade_for_sr has not landed")
    src = tmp_path / "in"
    src.mkdir()
    sitk.WriteImage(sitk.ReadImage(str(ct_chest_path))[:64, :64, 10:14], str(src / "a.nrrd"))
    out = tmp_path / "ds"
    assert (
        main(
            [
                "sr",
                "--input",
                str(src),
                "--output",
                str(out),
                "--scale",
                "2",
                "--split",
                "1,0,0",
                "--no-progress",
            ]
        )
        == 0
    )
    (case,) = load_layout(out).paired("train")
    low, high = sitk.ReadImage(str(case.source)), sitk.ReadImage(str(case.target))
    assert low.GetSize()[:2] == (32, 32) and high.GetSize()[:2] == (64, 64)
    assert np.allclose(low.GetSpacing()[:2], np.array(high.GetSpacing()[:2]) * 2)

    from medgan.data import CTDataModule

    # z-score (no clipping) so that averaging commutes with the normalisation; 1 unit = 1000 HU
    zscore = {"type": "zscore", "mean": 0.0, "std": 1000.0}
    dm = CTDataModule(out, patch_size=[16, 16], scale=2, batch_size=2, normalization=zscore)
    batch = next(iter(dm.train_dataloader()))
    assert batch["source"].shape == (2, 1, 16, 16) and batch["target"].shape == (2, 1, 32, 32)
    # aligned: averaging 2x2 target blocks gives the (area-down-sampled) source, up to int16 rounding
    pooled = torch.nn.functional.avg_pool2d(batch["target"], 2)
    assert (pooled - batch["source"]).abs().max() <= 0.5 / 1000 + 1e-6
    shifted = torch.nn.functional.avg_pool2d(batch["target"][..., 2:, :], 2)
    assert (shifted - batch["source"][..., :-1, :]).abs().max() > 0.01  # a one-voxel offset would show


def test_check_lists_mismatched_names_and_leaks(tmp_path, capsys):
    image = sitk.GetImageFromArray(np.zeros((2, 8, 8), np.int16))
    for split, role, name in [
        ("train", "source", "a"),
        ("train", "target", "a"),
        ("train", "source", "b"),
        ("train", "target", "c"),
        ("val", "source", "a2"),
        ("val", "target", "a2"),
    ]:
        (tmp_path / split / role).mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(image, str(tmp_path / split / role / f"{name}.nrrd"))
    assert main(["check", "--input", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only in train/source: b" in err and "only in train/target: c" in err
    assert main(["check", "--input", str(tmp_path), "--pairing", "unpaired"]) == 0
    assert main(["check", "--input", str(tmp_path), "--pairing", "unpaired", "--patient-regex", "^(a)"]) == 2
    assert "patients in more than one split: a in train, val" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dose", "0"], "--dose: got 0, allowed: a fraction of the full dose in (0, 1]"),
        (["--dose", "1.5"], "--dose: got 1.5"),
        (["--dose", "0.25", "--split", "0.7,0.2,0.2"], "--split: fractions must sum to 1"),
        (["--dose", "0.25", "--photons", "0"], "--photons"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, message, capsys):
    src = tmp_path / "in"
    src.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((1, 8, 8), np.int16)), str(src / "a.nrrd"))
    assert main(["ldct", "--input", str(src), "--output", str(tmp_path / "out"), *args, *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_usage_errors_are_one_line(capsys):
    assert main(["ldct", "--input", "a", "--output", "b", "--dose", "0.2", "--mode", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--mode: invalid choice: 'bogus'" in err
    assert main(["sr", "--input", "a"]) == 2
    assert "required: --output, --scale" in capsys.readouterr().err


def test_empty_or_missing_input_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no scans here")
    assert (
        main(["ldct", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o"), "--dose", "0.5"])
        == 2
    )
    assert "no scans in" in capsys.readouterr().err
    assert (
        main(["sr", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o"), "--scale", "2"])
        == 2
    )
    assert "missing" in capsys.readouterr().err
    assert main(["tcia-ldct", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o")]) == 2
    assert "no LDCT patient series" in capsys.readouterr().err


def test_help_does_not_import_torch():
    code = (
        "import sys; from medgan.cli.prepare import main; main(['--help']); assert 'torch' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (
        "tcia-ldct" in result.stdout and torch.__version__
    )  # torch is importable in the test process itself


def test_a_patient_s_scans_share_the_median_of_their_noise_levels(tmp_path, ct_chest_path):
    from medgan.data.prepare import patient_noise_hu
    from medgan.io import read_volume, write_volume
    from medgan.transforms.lowdose import pixel_size
    from medgan.transforms.noise_level import estimate_noise_hu

    chest = read_volume(ct_chest_path)
    cases, own = {"Q1_ct": tmp_path / "Q1_ct.nrrd"}, []
    write_volume(chest, cases["Q1_ct"], kind="ct")
    for k, (z0, z1) in enumerate(((0, 11), (11, 22), (22, 34))):  # three slabs of one scan, one patient
        slab = chest[..., z0:z1]
        cases[f"P7_slab{k}"] = tmp_path / f"P7_slab{k}.nrrd"
        write_volume(slab, cases[f"P7_slab{k}"], kind="ct")
        own.append(estimate_noise_hu(slab.as_tensor()[0].permute(2, 1, 0), pixel_size_mm=pixel_size(chest)))
    result = patient_noise_hu(cases, {c: c.split("_")[0] for c in cases})
    assert set(result) == {"P7"}  # Q1 has one scan: calibrated to itself
    assert len({round(s, 3) for s in own}) == 3  # the slabs really disagree
    assert result["P7"] == pytest.approx(sorted(own)[1], rel=1e-3)
