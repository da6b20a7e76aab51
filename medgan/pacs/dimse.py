"""DIMSE: C-GET to read a series, C-STORE to store one (pynetdicom)."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    EnhancedCTImageStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
    StudyRootQueryRetrieveInformationModelGet,
)

from medgan.pacs import PacsError, PacsURL

TIMEOUT_S = 30.0
#: What a C-GET of a CT series may bring back (we act as their storage SCP on the same association).
RETRIEVED_CLASSES = (CTImageStorage, EnhancedCTImageStorage, SecondaryCaptureImageStorage, SegmentationStorage)
_OK = 0x0000


def _ae(calling_aet: str) -> AE:
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    return ae


@contextmanager
def _association(ae: AE, url: PacsURL, **kw) -> Iterator:
    try:  # a plain TCP probe first: pynetdicom reports a refused connection as an aborted association
        socket.create_connection((url.host, url.port), timeout=TIMEOUT_S).close()
        assoc = ae.associate(url.host, url.port, ae_title=url.aet, **kw)
    except OSError as err:
        raise PacsError(f"{url}: cannot reach the DICOM server ({err.strerror or type(err).__name__})") from None
    if not assoc.is_established:
        why = "rejected the association" if assoc.is_rejected else (
            "aborted the association" if assoc.is_aborted else "cannot be reached")
        raise PacsError(f"{url}: the server {why} (check the AE titles: called '{url.aet}', calling "
                        f"'{ae.ae_title}', and that the archive knows our AE)")
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    if assoc.is_established:
        assoc.release()


def download_series(url: PacsURL, folder: Path, calling_aet: str) -> list[Path]:
    """C-GET every instance of the series into ``folder`` (one file per instance, named by SOP UID)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def on_store(event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
        return _OK

    ae = _ae(calling_aet)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    for uid in RETRIEVED_CLASSES:
        ae.add_requested_context(uid, ALL_TRANSFER_SYNTAXES)
    roles = [build_role(uid, scp_role=True) for uid in RETRIEVED_CLASSES]
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID, query.SeriesInstanceUID = url.study, url.series
    status = None
    with _association(ae, url, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
            if status is None:
                raise PacsError(f"{url}: the C-GET timed out or the connection dropped")
    failed = int(getattr(status, "NumberOfFailedSuboperations", 0) or 0) if status is not None else 0
    code = f"0x{int(status.Status):04X}" if status is not None else "none"
    if not files and not failed:  # Orthanc answers an unknown UID with 0xC000, others with success and nothing
        raise PacsError(f"{url}: not found (the archive returned no instances; C-GET status {code})")
    if status is None or status.Status not in (_OK, 0xB000) or failed:
        raise PacsError(f"{url}: the C-GET failed (status {code}, {failed} instances failed); nothing was "
                        "processed, re-run to retrieve the series again")
    return files


def upload_series(url: PacsURL, files: Sequence[Path], calling_aet: str) -> str:
    """C-STORE the files (one series); the archive files them into their own study. Every status is checked;
    the association is aborted, not released, when the transfer breaks off."""
    if not files:
        raise PacsError(f"{url}: nothing to store")
    heads = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    ae = _ae(calling_aet)
    for sop, syntax in sorted({(str(h.SOPClassUID), str(h.file_meta.TransferSyntaxUID)) for h in heads}):
        ae.add_requested_context(sop, syntax)
    failed = 0
    with _association(ae, url) as assoc:
        for path in files:
            status = assoc.send_c_store(path)
            if status is None or status.Status not in (_OK, 0xB000, 0xB007, 0xB006):
                failed += 1
    study, series = str(heads[0].StudyInstanceUID), str(heads[0].SeriesInstanceUID)
    if failed:
        raise PacsError(f"{url}: {failed} of {len(files)} instances were not stored; re-run to send them again")
    return f"{url}/studies/{study}/series/{series}"
