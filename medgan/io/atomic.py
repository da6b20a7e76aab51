"""Outputs appear whole or not at all: written into a temporary sibling, checked, then renamed in place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from medgan.errors import InputError, OutputExistsError


def check_output(path: Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse to replace an existing output without ``overwrite`` and to write over any input.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        InputError: ``path`` is, contains or lies inside one of ``inputs``.
    """
    target = path.resolve()
    for item in inputs:
        if not item:
            continue
        source = Path(item).resolve()
        if target == source or source.is_relative_to(target) or target.is_relative_to(source):
            raise InputError(f"output '{path}' would overwrite the input '{item}'; choose another output path")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output '{path}' already exists; pass --overwrite (overwrite=True) to replace it")


@contextmanager
def staged_output(path: Path) -> Iterator[Path]:
    """Yield a path with ``path``'s name inside a fresh temporary sibling folder.

    The caller writes (and re-reads) there. On normal exit every entry of the temporary folder
    (e.g. ``x.mhd`` and ``x.raw``, or a DICOM series folder) is renamed into ``path.parent``, replacing what
    was there; on an exception nothing in ``path.parent`` changes. The temporary folder is always removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".medgan-tmp", dir=path.parent))
    try:
        yield stage / path.name
        for item in sorted(stage.iterdir()):
            _replace(item, path.parent / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _replace(new: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        # os.replace cannot put a folder over a non-empty one: park the old one, swap, then delete it
        parked = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".medgan-old", dir=target.parent))
        os.replace(target, parked / target.name)
        os.replace(new, target)
        shutil.rmtree(parked, ignore_errors=True)
    else:
        os.replace(new, target)
