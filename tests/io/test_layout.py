"""Dataset layout: discovery, patient-level split, manifest round trip, pairing checks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medgan.errors import ConfigError, InputError, MissingFileError
from medgan.io.layout import (
    case_entries,
    case_name,
    discover_cases,
    load_layout,
    parse_split,
    patient_of,
    patients_in_two_splits,
    read_manifest,
    split_by_patient,
    write_manifest,
)


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _dicom_like(folder, n=2):
    for i in range(n):
        _touch(folder / f"{i}.dcm")


def test_case_name_strips_only_volume_extensions():
    assert case_name("a/L067.nii.gz") == "L067"
    assert case_name("b.v2.nrrd") == "b.v2"
    assert case_name("series_folder") == "series_folder"


def test_discover_finds_files_and_dicom_folders_and_skips_the_rest(tmp_path):
    _touch(tmp_path / "a.nii.gz")
    _touch(tmp_path / "b.nrrd")
    _touch(tmp_path / "c.mhd")
    _touch(tmp_path / "c.raw")  # data file of the .mhd header, not a case
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / ".hidden.nrrd")
    _dicom_like(tmp_path / "d")
    (tmp_path / "empty").mkdir()
    # a DICOM file without the .dcm suffix is recognised by its preamble
    _touch(tmp_path / "e" / "IM0001", b"\0" * 128 + b"DICM" + b"\0" * 8)
    found = discover_cases(tmp_path)
    assert list(found) == ["a", "b", "c", "d", "e"]
    assert found["d"] == tmp_path / "d"


def test_discover_rejects_duplicate_names_and_missing_folder(tmp_path):
    _touch(tmp_path / "a.nii.gz")
    _touch(tmp_path / "a.nrrd")
    with pytest.raises(InputError, match="'a'.*a.nii.gz and a.nrrd|'a'.*a.nrrd and a.nii.gz"):
        discover_cases(tmp_path)
    with pytest.raises(MissingFileError, match="nope"):
        discover_cases(tmp_path / "nope")


@pytest.mark.parametrize(
    ("case", "regex", "patient"),
    [
        ("L067", None, "L067"),
        ("C001_scan2", None, "C001"),
        ("N012-b", None, "N012"),
        ("P7_a", None, "P7"),
        ("chest", None, "chest"),
        ("sub-01_ses-2", r"sub-(\d+)", "01"),
        ("nomatch", r"sub-(\d+)", "nomatch"),
    ],
)
def test_patient_of(case, regex, patient):
    assert patient_of(case, regex) == patient


@pytest.mark.parametrize("text", ["0.7,0.2,0.2", "0.5,0.5", "a,b,c", "1.2,-0.1,-0.1", "0.7,0.3,nan"])
def test_parse_split_rejects_bad_fractions(text):
    with pytest.raises(ConfigError, match="--split"):
        parse_split(text)


def test_parse_split_names_the_sum():
    with pytest.raises(ConfigError, match="sum to 1.*= 1.1"):
        parse_split("0.7,0.2,0.2")
    assert parse_split("0.7, 0.15, 0.15") == (0.7, 0.15, 0.15)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.sampled_from([f"P{i}" for i in range(12)]), st.integers(1, 3), min_size=1),
    st.integers(0, 10_000),
)
def test_split_never_puts_a_patient_in_two_splits(cases_per_patient, seed):
    patients = {f"{p}_{k}": p for p, n in cases_per_patient.items() for k in range(n)}
    split = split_by_patient(patients, (0.6, 0.2, 0.2), seed=seed)
    assigned = [c for cases in split.values() for c in cases]
    assert sorted(assigned) == sorted(patients)  # every case exactly once
    owner = {}
    for name, cases in split.items():
        for c in cases:
            assert owner.setdefault(patients[c], name) == name
    assert split["train"]  # never empty when there is at least one patient


def test_split_is_reproducible_and_seed_dependent():
    patients = {f"P{i:02d}": f"P{i:02d}" for i in range(20)}
    a = split_by_patient(patients, (0.7, 0.15, 0.15), seed=1)
    assert a == split_by_patient(patients, (0.7, 0.15, 0.15), seed=1)
    assert a != split_by_patient(patients, (0.7, 0.15, 0.15), seed=2)
    assert [len(a[s]) for s in ("train", "val", "test")] == [14, 3, 3]


def test_split_balances_strata():
    patients = {f"{t}{i:03d}": f"{t}{i:03d}" for t in "CLN" for i in range(10)}
    strata = {p: p[0] for p in patients}
    split = split_by_patient(patients, (0.7, 0.2, 0.1), seed=0, strata=strata)
    for name, n in (("train", 7), ("val", 2), ("test", 1)):
        for exam in "CLN":
            assert sum(c.startswith(exam) for c in split[name]) == n, (name, exam)


def test_manifest_round_trip_is_atomic(tmp_path):
    manifest = {
        "task": "ldct",
        "dose": 0.25,
        "cases": case_entries({"train": ["a"]}, {"a": "A"}, label={"a": 1}),
    }
    path = write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert manifest["cases"]["train"] == [{"name": "a", "patient": "A", "label": 1}]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    assert read_manifest(tmp_path / "nothing") == {}
    path.write_text("{not json")
    with pytest.raises(InputError, match="dataset.json.*not valid JSON"):
        read_manifest(tmp_path)


def _layout_tree(root, source=("a", "b"), target=("a", "b"), split="train"):
    for name in source:
        _touch(root / split / "source" / f"{name}.nrrd")
    for name in target:
        _touch(root / split / "target" / f"{name}.nrrd")


def test_load_layout_joins_manifest_and_lists_mismatches(tmp_path):
    _layout_tree(tmp_path, source=("a", "b", "x"), target=("a", "b", "y"))
    _layout_tree(tmp_path, source=("c",), target=("c",), split="val")
    (tmp_path / "dataset.json").write_text(
        json.dumps({"cases": {"train": [{"name": "a", "patient": "P1", "label": 2}, "b"]}})
    )
    layout = load_layout(tmp_path)
    assert [c.name for c in layout.paired("train")] == ["a", "b"]
    assert layout.splits["train"]["a"].patient == "P1" and layout.splits["train"]["a"].label == 2
    assert layout.splits["train"]["b"].label == 0
    assert layout.unmatched("train") == {"source": ["x"], "target": ["y"]}
    with pytest.raises(InputError, match="only in train/source: x; only in train/target: y"):
        layout.check_paired("train")
    layout.check_paired("val")  # matching names: no error
    assert [c.name for c in layout.cases("train", "source")] == ["a", "b", "x"]
    assert layout.splits["test"] == {}


def test_load_layout_errors(tmp_path):
    with pytest.raises(MissingFileError, match="data.root"):
        load_layout(tmp_path / "missing")
    (tmp_path / "train" / "source").mkdir(parents=True)
    with pytest.raises(InputError, match="no cases"):
        load_layout(tmp_path)
    _layout_tree(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"cases": {"train": [{"name": "a", "label": "x"}]}}))
    with pytest.raises(InputError, match="'a' label must be an integer"):
        load_layout(tmp_path)


def test_patients_in_two_splits_detects_leaks(tmp_path):
    _layout_tree(tmp_path, source=("L067_a",), target=("L067_a",))
    _layout_tree(tmp_path, source=("L067_b",), target=("L067_b",), split="test")
    assert patients_in_two_splits(load_layout(tmp_path)) == {"L067": ["train", "test"]}


def test_manifest_that_is_not_utf8_is_an_input_error(tmp_path):
    (tmp_path / "dataset.json").write_bytes(b'{"name": "\xff"}')
    with pytest.raises(InputError, match=r"dataset.json: not UTF-8 text \(byte 10\)"):
        read_manifest(tmp_path)
