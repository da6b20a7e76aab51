"""Class labels of a dataset's cases, for conditional models: ``labels.csv`` beside the dataset, or the
names of class folders.

``labels.csv`` (in the dataset root) has a header and two columns, ``case`` and ``class``; a class is a
name (``lung``) or an integer. Class names are numbered in sorted order (integers by value), so the same
file always gives the same labels. Class folders are the ``ImageFolder`` convention, ``ROOT/<class>/<scan>``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from medgan.errors import InputError

LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class ClassLabels:
    """``names[label]`` is the class name of ``label``; ``cases`` maps a case name to its label."""

    names: tuple[str, ...]
    cases: dict[str, int]

    def label_of(self, case: str) -> int:
        """The label of ``case``.

        Raises:
            InputError: the case has no class (named, with the file to add it to).
        """
        if case not in self.cases:
            raise InputError(f"case '{case}' has no class in {LABELS_FILE}; add a row '{case},<class>'")
        return self.cases[case]


def _sorted_names(names: set[str]) -> tuple[str, ...]:
    if all(n.lstrip("-").isdigit() for n in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))


def read_labels_csv(path: str | os.PathLike) -> ClassLabels:
    """Read ``labels.csv`` (``case,class`` per row, with that header).

    Raises:
        InputError: missing columns, an empty file, or a case listed twice with different classes.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None
    if not rows or not {"case", "class"} <= set(header):
        raise InputError(f"{path}: expected a header 'case,class' and one row per case")
    by_case: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        case, name = (row.get("case") or "").strip(), (row.get("class") or "").strip()
        if not case or not name:
            raise InputError(f"{path}: line {line} needs both a case and a class, got {case!r}, {name!r}")
        if by_case.get(case, name) != name:
            raise InputError(f"{path}: case '{case}' is listed as '{by_case[case]}' and as '{name}'")
        by_case[case] = name
    names = _sorted_names(set(by_case.values()))
    return ClassLabels(names, {case: names.index(name) for case, name in by_case.items()})


def folder_labels(root: str | os.PathLike) -> ClassLabels:
    """Classes from ``ROOT/<class>/<scan>`` folders: every sub-folder that holds scans is a class.

    Raises:
        InputError: fewer than two class folders, or one case name in two classes.
    """
    from medgan.io.scans import discover_cases

    root = Path(root)
    cases: dict[str, str] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for case in discover_cases(folder):
            if case in cases:
                raise InputError(f"{root}: case '{case}' is in the class folders '{cases[case]}' and '{folder.name}'")
            cases[case] = folder.name
    names = _sorted_names(set(cases.values()))
    if len(names) < 2:
        raise InputError(f"{root}: class folders need at least two sub-folders holding scans, found {list(names)}")
    return ClassLabels(names, {case: names.index(name) for case, name in cases.items()})


def read_class_labels(root: str | os.PathLike) -> ClassLabels | None:
    """``root/labels.csv`` if present, else ``None`` (the dataset's own ``dataset.json`` labels apply)."""
    path = Path(root) / LABELS_FILE
    return read_labels_csv(path) if path.is_file() else None
