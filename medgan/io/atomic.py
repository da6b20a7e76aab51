"""Outputs appear whole or not at all: written into a temporary sibling, checked, then renamed in place.

Every file medgan writes goes through here (:func:`staged_output` for anything a library writes to a
path, :func:`atomic_write` for bytes or text). A file-system error on the way (read-only folder, full
disk, name too long, a file where a folder should be) becomes one :class:`~medgan.errors.OutputError`
naming the output, and leaves the folder as it was.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from medgan.errors import InputError, MedganError, OutputError, OutputExistsError


def check_output(path: Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse to replace an existing output without ``overwrite`` and to write over any input.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        InputError: ``path`` is, contains or lies inside one of ``inputs``.
        OutputError: ``path`` cannot even be looked at (name too long, a parent is a file ...).
    """
    try:
        target = path.resolve()
        for item in inputs:
            if not item:
                continue
            source = Path(item).resolve()
            if target == source or source.is_relative_to(target) or target.is_relative_to(source):
                raise InputError(f"output '{path}' would overwrite the input '{item}'; choose another output path")
        exists = path.exists()
    except OSError as err:
        if isinstance(err, MedganError):
            raise
        raise output_error(path, err) from None
    if exists and not overwrite:
        raise OutputExistsError(f"output '{path}' already exists; pass --overwrite (overwrite=True) to replace it")


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, naming ``path``, when it could not be written: a read-only folder, a name too long, a file
    where a folder should be. A cheap probe (an empty temporary sibling, removed again) before minutes of
    work, so the refusal is the command's only output; :func:`staged_output` still guards the real write.

    Raises:
        OutputError: the probe could not be made.
    """
    path = Path(path)
    created = _first_missing(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f".{path.name[:80]}.", suffix=".medgan-tmp", dir=path.parent))
        try:
            (probe / path.name).touch()  # the full name: the system's name length limit applies
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    except OSError as err:
        raise output_error(path, err) from None
    finally:
        _remove_if_empty(path.parent, created)


def output_error(path: str | os.PathLike, err: BaseException) -> OutputError:
    """The one-line error for an output that could not be written because of ``err``."""
    reason = getattr(err, "strerror", None) or " ".join(str(err).split()) or type(err).__name__
    hint = {
        errno.EACCES: " (no write permission: a read-only folder?)",
        errno.EPERM: " (no write permission: a read-only folder?)",
        errno.EROFS: " (read-only file system)",
        errno.ENOTDIR: " (a part of the path is a file, not a folder)",
        errno.EEXIST: " (a part of the path is a file, not a folder)",
    }.get(getattr(err, "errno", None), "")
    return OutputError(f"cannot write '{path}': {reason}{hint}; nothing was written")


@contextmanager
def staged_output(path: Path) -> Iterator[Path]:
    """Yield a path with ``path``'s name inside a fresh temporary sibling folder.

    The caller writes (and re-reads) there. On normal exit every entry of the temporary folder
    (e.g. ``x.mhd`` and ``x.raw``, or a DICOM series folder) is renamed into ``path.parent``, replacing what
    was there; on an exception nothing in ``path.parent`` changes. The temporary folder is always removed.

    Raises:
        OutputError: the folder cannot be created or written, or the rename fails; also for any plain
            ``OSError`` the caller's writing raises (a full disk while a library writes).
    """
    path = Path(path)
    created = _first_missing(path.parent)  # removed again if the output fails: a failure leaves nothing
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=f".{path.name[:80]}.", suffix=".medgan-tmp", dir=path.parent))
        except OSError as err:
            raise output_error(path, err) from None
        try:
            try:
                yield stage / path.name
            except OSError as err:
                if isinstance(err, MedganError):
                    raise
                raise output_error(path, err) from None
            try:
                for item in sorted(stage.iterdir()):
                    _replace(item, path.parent / item.name)
            except OSError as err:
                raise output_error(path, err) from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        _remove_if_empty(path.parent, created)
        raise


def _remove_if_empty(folder: Path, created: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``created`` while they are empty. Only empty ones: another
    process (a second ``torchrun`` rank) may be writing into a folder this one created."""
    if created is None:
        return
    for candidate in (folder, *folder.parents):
        try:
            candidate.rmdir()
        except OSError:
            return
        if candidate == created:
            return


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s ancestry (itself included) that does not exist yet."""
    missing = None
    try:
        for candidate in (folder, *folder.parents):
            if candidate.exists():
                break
            missing = candidate
    except OSError:  # a name too long or a file in the way: mkdir will say so
        return None
    return missing


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary sibling; returns ``path``."""
    path = Path(path)
    with staged_output(path) as staged:
        staged.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _replace(new: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink() and not new.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder of that name is in the way (not replaced by a file)", str(target))
    if target.is_dir() and not target.is_symlink():
        # os.replace cannot put a folder over a non-empty one. Swapping the two names in one step keeps
        # the old folder in place until the new one is (a model package is never absent); where the
        # system cannot swap, park the old one, rename the new one in, then delete the old one.
        if _exchange(new, target):
            shutil.rmtree(new, ignore_errors=True)  # ``new`` now names the old folder
            return
        parked = Path(tempfile.mkdtemp(prefix=f".{target.name[:80]}.", suffix=".medgan-old", dir=target.parent))
        os.replace(target, parked / target.name)
        os.replace(new, target)
        shutil.rmtree(parked, ignore_errors=True)
    else:
        os.replace(new, target)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # glibc < 2.28, musl
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))
