"""The dataset folder layout: discover cases, split them by patient, read and write ``dataset.json``.

A prepared dataset is::

    DATASET/
      dataset.json
      train/source/<case>   train/target/<case>
      val/source/<case>     val/target/<case>
      test/source/<case>    test/target/<case>

A case is one volume file (``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``: :mod:`medgan.io.formats`)
or one DICOM series folder (:mod:`medgan.io.scans`);
its name is the file name without the extension (or the folder name). ``source`` holds the degraded
domain (low dose, low resolution), ``target`` the clean one. Paired recipes match the two piles by case
name; unpaired ones do not need to.

This module only looks at paths and JSON (no torch), so the commands that use it stay quick.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgan.errors import ConfigError, InputError, MissingFileError
from medgan.io.atomic import atomic_write
from medgan.io.formats import VOLUME_SUFFIXES, volume_suffix  # noqa: F401 - re-exported
from medgan.io.scans import case_name, discover_cases, is_dicom_file, is_dicom_folder  # noqa: F401 - re-exported

SPLITS: tuple[str, ...] = ("train", "val", "test")
ROLES: tuple[str, ...] = ("source", "target")
MANIFEST_NAME = "dataset.json"
# TCIA LDCT-and-Projection-data patients are C/L/N + 3 digits (chest, abdomen "liver", head "neuro").
TCIA_PATIENT = re.compile(r"^([CLN]\d{3})(?:$|[^0-9])")
DEFAULT_PATIENT_REGEX = r"^([^_]+)"


def patient_of(case: str, patient_regex: str | None = None) -> str:
    """The patient a case belongs to, so that one patient never lands in two splits.

    TCIA names (``L067``, ``C001_x``, ``N012-2``) give their ``[CLN]ddd`` id; otherwise ``patient_regex``
    (default: everything before the first ``_``) is searched and its first group (or the whole match)
    is the patient. A name it does not match is its own patient.
    """
    tcia = TCIA_PATIENT.match(case)
    if tcia and patient_regex is None:
        return tcia.group(1)
    match = re.search(patient_regex or DEFAULT_PATIENT_REGEX, case)
    if not match:
        return case
    return match.group(1) if match.groups() else match.group(0)


def parse_split(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.7,0.15,0.15"`` -> (0.7, 0.15, 0.15): train/val/test fractions, each >= 0, summing to 1.

    Raises:
        ConfigError: not three numbers, a negative one, or a sum other than 1 (to 1e-6).
    """
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    try:
        values = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(
            f"--split: expected three numbers 'train,val,test' like 0.7,0.15,0.15, got '{text}'"
        ) from None
    if len(values) != 3:
        raise ConfigError(f"--split: expected three fractions train,val,test, got {len(values)} in '{text}'")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"--split: fractions must be finite and >= 0, got '{text}'")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(
            f"--split: fractions must sum to 1, got {'+'.join(f'{v:g}' for v in values)} = {sum(values):g}"
        )
    return values  # type: ignore[return-value]


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Split ``n`` items into counts proportional to ``fractions`` (largest remainder, train first on ties)."""
    raw = [n * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    # A non-empty stratum never leaves train empty: training on nothing is never what was meant.
    if n and counts[0] == 0 and fractions[0] > 0:
        donor = max(range(1, len(counts)), key=lambda i: counts[i])
        counts[donor] -= 1
        counts[0] += 1
    return counts


def split_by_patient(
    patients: Mapping[str, str],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    strata: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """Assign cases to train/val/test so that all cases of a patient share one split.

    Args:
        patients: ``{case: patient id}``.
        fractions: train/val/test fractions of *patients* (not cases), summing to 1.
        seed: the shuffle seed; the same inputs and seed give the same split.
        strata: optional ``{patient: stratum}`` (e.g. TCIA exam type C/L/N); each stratum is split on its
            own with the same fractions, so every split holds the same mix (the ldct-benchmark's balance).

    Returns:
        ``{"train": [cases], "val": [...], "test": [...]}``, each sorted.
    """
    fractions = parse_split(list(fractions))
    by_patient: dict[str, list[str]] = defaultdict(list)
    for case, patient in patients.items():
        by_patient[patient].append(case)
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for patient in sorted(by_patient):
        by_stratum[(strata or {}).get(patient, "")].append(patient)
    rng = random.Random(seed)
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for stratum in sorted(by_stratum):
        group = by_stratum[stratum]
        rng.shuffle(group)
        start = 0
        for split, count in zip(SPLITS, _allocate(len(group), fractions)):
            for patient in group[start : start + count]:
                out[split].extend(by_patient[patient])
            start += count
    return {s: sorted(cases) for s, cases in out.items()}


def case_entries(
    split_cases: Mapping[str, Iterable[str]], patients: Mapping[str, str], **per_case: Mapping[str, Any]
) -> dict:
    """The ``cases`` block of ``dataset.json``: ``{split: [{"name", "patient", <extra>...}]}``.

    ``per_case`` maps an extra field name (``label``, ``exam``) to ``{case: value}``.
    """
    return {
        split: [
            {"name": c, "patient": patients[c], **{k: v[c] for k, v in per_case.items() if c in v}}
            for c in cases
        ]
        for split, cases in split_cases.items()
    }


def write_manifest(root: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    """Write ``root/dataset.json`` atomically (temporary sibling, then rename)."""
    path = Path(root) / MANIFEST_NAME
    atomic_write(path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def read_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """``root/dataset.json`` as a dict, or ``{}`` when the dataset has none (hand-made layouts)."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


@dataclass
class CaseInfo:
    """One case of a split: where its volumes are and what ``dataset.json`` says about it."""

    name: str
    patient: str
    label: int = 0
    source: Path | None = None
    target: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetLayout:
    """A discovered dataset: the manifest and, per split, the cases with their source/target paths."""

    root: Path
    manifest: dict[str, Any]
    splits: dict[str, dict[str, CaseInfo]]

    def cases(self, split: str, role: str) -> list[CaseInfo]:
        """The cases of ``split`` that have a volume for ``role`` ("source" or "target"), by name."""
        return [c for c in self.splits.get(split, {}).values() if getattr(c, role) is not None]

    def paired(self, split: str) -> list[CaseInfo]:
        """The cases of ``split`` present in both piles."""
        return [
            c for c in self.splits.get(split, {}).values() if c.source is not None and c.target is not None
        ]

    def unmatched(self, split: str) -> dict[str, list[str]]:
        """Case names present in only one pile: ``{"source": [only in source], "target": [...]}``."""
        cases = self.splits.get(split, {}).values()
        return {
            "source": sorted(c.name for c in cases if c.target is None and c.source is not None),
            "target": sorted(c.name for c in cases if c.source is None and c.target is not None),
        }

    def check_paired(self, split: str) -> None:
        """Raise :class:`InputError` listing the case names that do not match between the two piles."""
        missing = self.unmatched(split)
        if missing["source"] or missing["target"]:
            parts = [
                f"only in {split}/{role}: {', '.join(names)}" for role, names in missing.items() if names
            ]
            raise InputError(f"{self.root}: paired case names do not match; " + "; ".join(parts))


def _manifest_cases(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    info: dict[str, dict[str, Any]] = {}
    for split, entries in (manifest.get("cases") or {}).items():
        for entry in entries or []:
            item = {"name": entry} if isinstance(entry, str) else dict(entry)
            item["split"] = split
            info[str(item["name"])] = item
    return info


def load_layout(root: str | os.PathLike, patient_regex: str | None = None) -> DatasetLayout:
    """Discover the cases of a dataset folder and join them with ``dataset.json``.

    Patient ids and labels come from the manifest when it has them, else from :func:`patient_of` and 0.

    Raises:
        MissingFileError: ``root`` does not exist.
        InputError: no ``train`` folder with cases, or a split folder is not a folder.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise MissingFileError(f"data.root: dataset folder not found: {root_path}")
    manifest = read_manifest(root_path)
    known = _manifest_cases(manifest)
    splits: dict[str, dict[str, CaseInfo]] = {}
    for split in SPLITS:
        cases: dict[str, CaseInfo] = {}
        for role in ROLES:
            folder = root_path / split / role
            if not folder.exists():
                continue
            for name, path in discover_cases(folder).items():
                meta = known.get(name, {})
                if name not in cases:
                    label = meta.get("label", 0)
                    if not isinstance(label, int) or isinstance(label, bool):
                        raise InputError(
                            f"{root_path / MANIFEST_NAME}: case '{name}' label must be an integer, got {label!r}"
                        )
                    extra = {k: v for k, v in meta.items() if k not in ("name", "patient", "label", "split")}
                    patient = str(meta.get("patient") or patient_of(name, patient_regex))
                    cases[name] = CaseInfo(name=name, patient=patient, label=label, extra=extra)
                setattr(cases[name], role, path)
        splits[split] = dict(sorted(cases.items()))
    if not splits["train"]:
        raise InputError(
            f"data.root: no cases in {root_path}/train/source or {root_path}/train/target "
            f"(expected volume files {', '.join(VOLUME_SUFFIXES)} or DICOM series folders)"
        )
    return DatasetLayout(root=root_path, manifest=manifest, splits=splits)


def patients_in_two_splits(layout: DatasetLayout) -> dict[str, list[str]]:
    """Patients whose cases sit in more than one split: ``{patient: [splits]}`` (empty when clean)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for split, cases in layout.splits.items():
        for case in cases.values():
            seen[case.patient].add(split)
    return {p: sorted(s, key=SPLITS.index) for p, s in seen.items() if len(s) > 1}
