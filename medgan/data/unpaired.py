"""An unpaired dataset from two piles of scans: low-dose scans of some patients, full-dose scans of others.

This is what ``medgan-prepare unpaired`` runs. Real hospitals rarely have both doses of one patient, and a
CycleGAN trained on the two doses of the same patients learns from hidden pairs: here the two piles must
hold different patients (an overlap is refused, naming the patients). Each pile is split by patient on its
own, the low-dose pile into ``<split>/source`` and the full-dose pile into ``<split>/target``, so the
layout is the usual one (``docs/data_layout.md``) with case names that never match across the piles.

A validation or test set *with* a known full dose is optional: ``pairs`` names a prepared paired dataset
(``medgan-prepare ldct`` / ``tcia-ldct``) whose ``val`` and ``test`` pairs are copied into the same splits,
so training logs paired metrics beside the label-free ones. Its patients must not be in either pile; its
``train`` split is not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medgan.data.prepare import (
    _base_manifest,
    _build,
    _check_format,
    _make_dirs,
    _scan_inputs,
    output_name,
    place_target,
)
from medgan.errors import InputError, MissingFileError
from medgan.io.layout import (
    SPLITS,
    CaseInfo,
    discover_cases,
    parse_split,
    patient_of,
    read_manifest,
    split_by_patient,
)

PILES = {"low": "source", "full": "target"}


def _overlap(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    return sorted(set(a.values()) & set(b.values()))


def _pair_cases(pairs: Path, patient_regex: str | None) -> dict[str, tuple[CaseInfo, str]]:
    """``{case: (CaseInfo, split)}`` of the val/test pairs of a prepared dataset (its train split may be empty)."""
    if not pairs.is_dir():
        raise MissingFileError(f"--pairs: dataset folder not found: {pairs}")
    known = {e["name"]: e for entries in (read_manifest(pairs).get("cases") or {}).values() for e in entries or []
             if isinstance(e, dict) and "name" in e}
    found: dict[str, tuple[CaseInfo, str]] = {}
    for split in ("val", "test"):
        piles = {role: discover_cases(pairs / split / role) if (pairs / split / role).is_dir() else {}
                 for role in ("source", "target")}
        unmatched = sorted(set(piles["source"]) ^ set(piles["target"]))
        if unmatched:
            raise InputError(f"--pairs: {pairs}/{split} has cases without a partner: {', '.join(unmatched)}")
        for name in piles["source"]:
            meta = known.get(name, {})
            patient = str(meta.get("patient") or patient_of(name, patient_regex))
            case = CaseInfo(name, patient, int(meta.get("label", 0)), piles["source"][name], piles["target"][name])
            found[name] = (case, split)
    if not found:
        raise InputError(f"--pairs: {pairs} has no val or test pairs (make them with medgan-prepare ldct or tcia-ldct)")
    return found


def prepare_unpaired(
    low_dir: str | Path,
    full_dir: str | Path,
    output: str | Path,
    *,
    pairs: str | Path | None = None,
    split: str | tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    fmt: str = "same",
    patient_regex: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Low-dose scans (``low_dir``) and full-dose scans of other patients (``full_dir``) -> an unpaired dataset.

    Args:
        low_dir: a folder of low-dose scans (volume files or DICOM series folders), one case each.
        full_dir: a folder of full-dose scans of *other* patients.
        output: the dataset folder to create.
        pairs: optional prepared paired dataset whose val/test pairs become paired val/test cases.
        split: train/val/test fractions of patients, applied to each pile on its own.
        seed: split seed.
        fmt: ``"same"`` as the input, or ``"nifti"``/``"nrrd"``/``"mha"``.
        patient_regex: how patient ids are read from case names (see :func:`medgan.io.layout.patient_of`).
        overwrite: replace an existing ``output``.
        progress: show a tqdm bar over cases.

    Returns:
        The dataset folder.

    Raises:
        InputError: a patient (or a case name) in both piles, or in a pile and in ``pairs``.
    """
    _check_format(fmt)
    fractions = parse_split(split) if isinstance(split, str) else parse_split(list(split))
    low_cases, low_patients = _scan_inputs(low_dir, patient_regex)
    full_cases, full_patients = _scan_inputs(full_dir, patient_regex)
    shared = _overlap(low_patients, full_patients)
    if shared:
        raise InputError(
            f"--low and --full share patients {', '.join(shared)}: an unpaired dataset needs different patients "
            "in the two piles (or set --patient-regex if the ids are read wrongly)"
        )
    same_names = sorted(set(low_cases) & set(full_cases))
    if same_names:
        raise InputError(f"--low and --full both have cases named {', '.join(same_names)}: rename one of them")
    paired = _pair_cases(Path(pairs), patient_regex) if pairs is not None else {}
    pair_patients = {name: case.patient for name, (case, _) in paired.items()}
    for flag, pile in (("--low", low_patients), ("--full", full_patients)):
        leaked = _overlap(pile, pair_patients)
        if leaked:
            raise InputError(f"--pairs and {flag} share patients {', '.join(leaked)}: held-out pairs must be unseen")
    named = sorted((set(low_cases) | set(full_cases)) & set(paired))
    if named:
        raise InputError(f"--pairs reuses case names of the piles: {', '.join(named)}")
    assignment = {
        "low": split_by_patient(low_patients, fractions, seed),
        "full": split_by_patient(full_patients, fractions, seed),
    }

    def work(root: Path) -> dict[str, Any]:
        _make_dirs(root)
        jobs = [
            (split_name, role, case, cases[case])
            for pile, role, cases in (("low", "source", low_cases), ("full", "target", full_cases))
            for split_name in SPLITS
            for case in assignment[pile][split_name]
        ]
        for name, (case, split_name) in paired.items():
            jobs += [(split_name, role, name, getattr(case, role)) for role in PILES.values()]
        entries: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        patients = {**low_patients, **full_patients, **pair_patients}
        for split_name, role, case, path in tqdm(jobs, desc="cases", unit="case", disable=not progress):
            place_target(path, root / split_name / role / output_name(case, path, fmt), fmt)
        for split_name in SPLITS:
            for pile in PILES:
                entries[split_name] += [
                    {"name": c, "patient": patients[c], "label": 0, "pile": pile} for c in assignment[pile][split_name]
                ]
            entries[split_name] += [
                {"name": n, "patient": case.patient, "label": case.label, "pile": "pair"}
                for n, (case, s) in sorted(paired.items()) if s == split_name
            ]
        manifest = _base_manifest("unpaired", Path(low_dir), seed, fractions, fmt)
        manifest.update(
            input_full=str(Path(full_dir).resolve()),
            pairs=str(Path(pairs).resolve()) if pairs is not None else None,
            source="low-dose pile (--low)",
            target="full-dose pile (--full), other patients",
            pairing="unpaired",
            scale=1,
            cases=entries,
        )
        return manifest

    inputs = [Path(low_dir), Path(full_dir)] + ([Path(pairs)] if pairs is not None else [])
    return _build(output, overwrite, inputs, work)


__all__ = ["prepare_unpaired"]
