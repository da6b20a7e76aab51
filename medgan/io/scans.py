"""What counts as a scan on disk, and "one scan or a folder of scans" — walked here and nowhere else.

A scan is one volume file (see :mod:`medgan.io.formats`) or one DICOM series folder (a folder that
directly holds DICOM files); its case name is the file name without the volume ending (or the folder
name). Only paths are looked at (no torch), so commands that plan their outputs stay quick.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from medgan.errors import InputError, MissingFileError
from medgan.io.formats import volume_suffix


def is_dicom_file(path: Path) -> bool:
    """True for a ``.dcm`` file or any file with the DICOM preamble (``DICM`` at byte 128)."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder that directly holds at least one DICOM file (a series folder)."""
    p = Path(path)
    try:
        return p.is_dir() and any(f.is_file() and is_dicom_file(f) for f in p.iterdir())
    except OSError:  # unreadable folder, symlink loop: not a series; the reader names the problem
        return False


def case_name(path: str | os.PathLike) -> str:
    """The case name of a volume file or DICOM folder: its name without the volume ending."""
    p = Path(path)
    suffix = volume_suffix(p)
    return p.name[: -len(suffix)] if suffix else p.name


def is_single_scan(path: str | os.PathLike) -> bool:
    """True for one scan (a file, or a folder that directly holds DICOM files); False for a folder of scans."""
    p = Path(path)
    return p.is_file() or is_dicom_folder(p)


def discover_cases(folder: str | os.PathLike) -> dict[str, Path]:
    """The cases directly inside ``folder``: ``{case name: path}``, sorted by name.

    Volume files and DICOM series folders count; hidden entries and the data files of detached headers
    (``.raw`` beside ``.mhd``/``.nhdr``) are ignored.

    Raises:
        MissingFileError: ``folder`` does not exist.
        InputError: ``folder`` is not a folder, or two entries give the same case name.
    """
    root = Path(folder)
    if not root.exists():
        raise MissingFileError(f"input folder not found: {root}")
    if not root.is_dir():
        raise InputError(f"expected a folder of scans, got a file: {root}")
    cases: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not ((entry.is_file() and volume_suffix(entry)) or is_dicom_folder(entry)):
            continue
        name = case_name(entry)
        if name in cases:
            raise InputError(
                f"two inputs give the case name '{name}': {cases[name].name} and {entry.name} in {root}"
            )
        cases[name] = entry
    return dict(sorted(cases.items()))


def find_scans(path: str | os.PathLike, flag: str = "--input",
               rename: Callable[[str], str] | None = None) -> dict[str, Path]:
    """``{case name: path}`` of one scan (file or DICOM series folder) or of every scan in a folder.

    Args:
        path: one scan or a folder of scans.
        flag: the option the path came from, for the messages (``--input``, ``--normal`` ...).
        rename: maps a case name to the name outputs are written under (e.g. a file-name-safe version);
            two cases that end up with the same name are refused.

    Raises:
        MissingFileError: ``path`` does not exist. InputError: a folder without scans, or two scans with
        the same (renamed) case name.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{flag} {path} does not exist")
    found = {case_name(path): path} if is_single_scan(path) else discover_cases(path)
    if not found:
        raise InputError(f"{flag} {path} holds no scan (volume files or DICOM series folders)")
    if rename is None:
        return found
    cases: dict[str, Path] = {}
    for name, scan in found.items():
        new = rename(name)
        if new in cases:
            raise InputError(f"{flag}: '{cases[new].name}' and '{scan.name}' both give the output name '{new}'; "
                             "rename one")
        cases[new] = scan
    return cases
