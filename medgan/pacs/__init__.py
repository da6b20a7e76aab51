"""Read a series from, and store results to, a DICOM archive wherever a path is accepted.

URLs (docs/pacs.md):

- ``dicomweb://host:port/prefix/studies/UID/series/UID`` in (WADO-RS), ``dicomweb://host:port/prefix`` out
  (STOW-RS), via ``dicomweb-client``; ``dicomwebs://`` is the same over TLS.
- ``dimse://AET@host:port/studies/UID/series/UID`` in (C-GET), ``dimse://AET@host:port`` out (C-STORE), via
  ``pynetdicom``; our calling AE title from ``--calling-aet``, else ``MEDGAN_AET``, else ``MEDGAN``.

:func:`pacs_staging` downloads an input series into a temporary folder, hands the commands local paths,
and after a successful run uploads the derived series and removes the folder. Credentials come from
``MEDGAN_PACS_USER``/``MEDGAN_PACS_PASSWORD`` or ``~/.netrc`` and never appear in a message.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from medgan.errors import ConfigError, InputError

SCHEMES = ("dicomweb", "dicomwebs", "dimse")
DEFAULT_AET = "MEDGAN"


class PacsError(InputError):
    """The archive could not be reached, refused us, or does not hold what was asked (exit 2)."""


@dataclass(frozen=True)
class PacsURL:
    """A parsed archive address; ``study``/``series`` are set for an input, empty for an output."""

    scheme: str
    host: str
    port: int
    prefix: str = ""
    aet: str = ""
    study: str = ""
    series: str = ""

    @property
    def base(self) -> str:
        """The DICOMweb service root (``http[s]://host:port/prefix``)."""
        http = "https" if self.scheme == "dicomwebs" else "http"
        return f"{http}://{self.host}:{self.port}{self.prefix}"

    def __str__(self) -> str:  # never holds credentials: they are not part of a PacsURL
        who = f"{self.aet}@" if self.aet else ""
        tail = f"/studies/{self.study}" if self.study else ""
        tail += f"/series/{self.series}" if self.series else ""
        return f"{self.scheme}://{who}{self.host}:{self.port}{self.prefix}{tail}"


def is_pacs_url(text: str | os.PathLike | None) -> bool:
    """True for a ``dicomweb://``, ``dicomwebs://`` or ``dimse://`` address."""
    return isinstance(text, str) and text.split("://", 1)[0].lower() in SCHEMES and "://" in text


def parse_url(text: str, series: bool) -> PacsURL:
    """Parse an archive URL; ``series=True`` for an input (must name a study and a series).

    Raises:
        ConfigError: malformed URL, missing port/AE title, a series where none belongs or vice versa.
    """
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    shown = f"{scheme}://{parts.hostname or ''}{parts.path}"  # echo without any user:password@
    if scheme not in SCHEMES:
        raise ConfigError(f"'{shown}': expected a dicomweb://, dicomwebs:// or dimse:// URL")
    if parts.password is not None:
        raise ConfigError(f"'{shown}': put no password in the URL; use MEDGAN_PACS_USER/MEDGAN_PACS_PASSWORD "
                          "or ~/.netrc")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigError(f"'{shown}': needs host:port")
    aet = parts.username or ""
    if scheme == "dimse" and not (aet and len(aet) <= 16):
        raise ConfigError(f"'{shown}': needs the archive's AE title (1-16 characters) as dimse://AET@host:port")
    words = [w for w in parts.path.split("/") if w]
    study = uid = ""
    if "studies" in words:
        at = words.index("studies")
        tail, words = words[at:], words[:at]
        if len(tail) != 4 or tail[2] != "series":
            raise ConfigError(f"'{shown}': expected .../studies/STUDY_UID/series/SERIES_UID")
        study, uid = tail[1], tail[3]
    if series and not uid:
        raise ConfigError(f"'{shown}': an input must name a series: .../studies/STUDY_UID/series/SERIES_UID")
    if not series and uid:
        raise ConfigError(f"'{shown}': an output is the archive itself (no /studies/...): results are stored "
                          "in the source study")
    if scheme == "dimse" and words:
        raise ConfigError(f"'{shown}': a dimse:// URL has no path prefix")
    prefix = "/" + "/".join(words) if words else ""
    return PacsURL(scheme, parts.hostname, port, prefix, aet, study, uid)


def calling_aet(value: str | None = None) -> str:
    """Our AE title: ``value``, else ``MEDGAN_AET``, else ``MEDGAN``."""
    aet = value or os.environ.get("MEDGAN_AET") or DEFAULT_AET
    if not 0 < len(aet) <= 16 or "\\" in aet or not aet.isprintable():
        raise ConfigError(f"calling AE title '{aet}': 1-16 printable characters, no backslash")
    return aet


def _quiet_libraries() -> None:
    """The libraries log every retry and refused connection as warnings; without a handler of the caller's,
    Python would print them to stderr beside our one-line error. A NullHandler keeps them for the caller's
    own logging only."""
    for name in ("dicomweb_client", "retrying", "pynetdicom"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _backend(url: PacsURL):
    _quiet_libraries()
    try:
        if url.scheme == "dimse":
            from medgan.pacs import dimse as backend
        else:
            from medgan.pacs import dicomweb as backend
    except ModuleNotFoundError as err:
        raise ConfigError(f"{url.scheme}:// needs '{err.name}', which is not installed: "
                          'pip install "medgan[pacs]"') from None
    return backend


def download_series(url: PacsURL, folder: Path, aet: str | None = None) -> list[Path]:
    """Fetch every instance of ``url``'s series into ``folder``; returns the files."""
    return _backend(url).download_series(url, folder, calling_aet(aet))


def upload_series(url: PacsURL, files: Sequence[Path], aet: str | None = None) -> str:
    """Store ``files`` (one derived series) in the archive; returns where they landed (a URL)."""
    return _backend(url).upload_series(url, list(files), calling_aet(aet))


def dicom_files(folder: Path) -> list[Path]:
    """The files of a written series folder (the writer's output), sorted."""
    from medgan.io.scans import is_dicom_file

    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_dicom_file(p))


def stable_uids(files: Sequence[Path]) -> None:
    """Give a written series UIDs that follow from its content: the SeriesInstanceUID from the study and every
    slice's position and pixels, each SOPInstanceUID from the series UID and the InstanceNumber.

    The writer's UIDs are random, so a re-run after a broken upload would start a second series beside the
    half-stored one. With content-derived UIDs the same result maps to the same series and instances, and
    the upload sends only what the archive lacks; a different result (another model) is a different series.
    """
    import hashlib

    import pydicom
    from pydicom.uid import generate_uid

    datasets = sorted(((p, pydicom.dcmread(p)) for p in files), key=lambda item: int(item[1].InstanceNumber))
    digest = hashlib.sha256()
    for _, ds in datasets:
        digest.update(f"{ds.StudyInstanceUID}|{ds.InstanceNumber}|{list(ds.ImagePositionPatient)}|".encode())
        digest.update(ds.PixelData)
    series = generate_uid(entropy_srcs=["medgan-derived-series", digest.hexdigest()])
    for path, ds in datasets:
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(
            entropy_srcs=[series, str(ds.InstanceNumber)])
        ds.save_as(path, enforce_file_format=True)


class Staging:
    """Local stand-ins for archive URLs, from :func:`pacs_staging`."""

    def __init__(self, input: str | os.PathLike, output: str | os.PathLike, format: str, root: Path | None) -> None:
        self.input, self.output, self.format, self._root = input, output, format, root
        self._out_url: PacsURL | None = None
        self._aet: str | None = None

    def finish(self, written: Sequence[Path]) -> list:
        """Upload what was written when the output is an archive; returns the archive URLs (else ``written``)."""
        if self._out_url is None:
            return list(written)
        stored = []
        for path in written:
            files = dicom_files(path)
            stable_uids(files)
            stored.append(upload_series(self._out_url, files, self._aet))
        return stored


@contextmanager
def pacs_staging(input: str | os.PathLike, output: str | os.PathLike, format: str = "same",
                 aet: str | None = None) -> Iterator[Staging]:
    """Swap archive URLs for local paths for the duration of a command.

    An input URL is downloaded to a temporary folder first; an output URL becomes a temporary series
    folder whose files :meth:`Staging.finish` uploads. Plain paths pass through unchanged. The temporary
    folder is removed at exit, whatever happened.

    Raises:
        ConfigError: a malformed URL, an output URL with a non-DICOM ``format``. PacsError: see the backends.
    """
    in_url = parse_url(str(input), series=True) if is_pacs_url(input) else None
    out_url = parse_url(str(output), series=False) if is_pacs_url(output) else None
    if in_url is None and out_url is None:
        yield Staging(input, output, format, None)
        return
    if out_url is not None:
        if format not in ("same", "dicom"):
            raise ConfigError(f"--format {format}: an archive output ({out_url}) stores a DICOM series")
        format = "dicom"
    aet = calling_aet(aet)
    root = Path(tempfile.mkdtemp(prefix="medgan-pacs-"))
    try:
        stage = Staging(input, output, format, root)
        stage._aet = aet
        if in_url is not None:
            folder = root / "in" / in_url.series
            download_series(in_url, folder, aet)
            stage.input = folder
        if out_url is not None:
            stage._out_url = out_url
            stage.output = root / "out" / "derived"
        yield stage
    finally:
        shutil.rmtree(root, ignore_errors=True)
