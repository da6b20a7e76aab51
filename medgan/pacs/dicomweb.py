"""DICOMweb: WADO-RS to read a series, STOW-RS to store one, QIDO-RS to check what arrived (dicomweb-client)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient

from medgan.pacs import PacsError, PacsURL

TIMEOUT_S = 60.0


def _client(url: PacsURL) -> DICOMwebClient:
    """A client whose session carries the credentials of ``MEDGAN_PACS_USER``/``MEDGAN_PACS_PASSWORD``; without
    them requests falls back to ``~/.netrc`` for the host. TLS certificates are verified (``REQUESTS_CA_BUNDLE``
    names a private CA)."""
    session = requests.Session()
    user, password = os.environ.get("MEDGAN_PACS_USER"), os.environ.get("MEDGAN_PACS_PASSWORD")
    if user:
        session.auth = (user, password or "")
    client = DICOMwebClient(url.base, session=session, timeout=TIMEOUT_S)
    # one retry after 0.25 s for a busy server (429/503/...), not five with exponential waits
    client.set_http_retry_params(max_attempts=2, wait_exponential_multiplier=250)
    return client


def _error(url: PacsURL, err: Exception, what: str) -> PacsError:
    if isinstance(err, requests.HTTPError) and err.response is not None:
        code = err.response.status_code
        reason = {401: "not authorised (set MEDGAN_PACS_USER/MEDGAN_PACS_PASSWORD or ~/.netrc)",
                  403: "forbidden for these credentials", 404: "not found"}.get(code, f"HTTP {code}")
        return PacsError(f"{url}: {what}: {reason}")
    if isinstance(err, requests.exceptions.SSLError):
        return PacsError(f"{url}: TLS failed ({type(err).__name__}); check the certificate or REQUESTS_CA_BUNDLE")
    if isinstance(err, requests.ConnectionError | requests.Timeout):
        return PacsError(f"{url}: cannot reach the DICOMweb server at {url.host}:{url.port}")
    return PacsError(f"{url}: {what} failed: {type(err).__name__}")


def download_series(url: PacsURL, folder: Path, calling_aet: str) -> list[Path]:
    """WADO-RS retrieve of the whole series into ``folder`` (one file per instance, named by SOP UID)."""
    client = _client(url)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    try:
        for ds in client.iter_series(url.study, url.series):
            path = folder / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    except (requests.RequestException, ValueError) as err:
        raise _error(url, err, "retrieving the series") from None
    if not files:
        raise PacsError(f"{url}: the series holds no instances")
    return files


def stored_instances(client: DICOMwebClient, url: PacsURL, study: str, series: str) -> set[str]:
    """SOPInstanceUIDs the archive holds in ``series`` (QIDO-RS)."""
    try:
        found = client.search_for_instances(study, series, fields=["00080018"], get_remaining=True)
    except requests.HTTPError as err:
        if err.response is not None and err.response.status_code == 404:
            return set()
        raise _error(url, err, "searching the series") from None
    except requests.RequestException as err:
        raise _error(url, err, "searching the series") from None
    return {item["00080018"]["Value"][0] for item in found if "00080018" in item}


def upload_series(url: PacsURL, files: Sequence[Path], calling_aet: str) -> str:
    """STOW-RS the files (one series) into their study; instances the archive already holds are not sent again,
    so re-running after a partial transfer completes it. Verified by QIDO-RS afterwards."""
    if not files:
        raise PacsError(f"{url}: nothing to store")
    client = _client(url)
    head = pydicom.dcmread(files[0], stop_before_pixels=True)
    study, series = str(head.StudyInstanceUID), str(head.SeriesInstanceUID)
    done = stored_instances(client, url, study, series)
    todo = [p for p in files if str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) not in done]
    batch = 16  # a few MB per request: a dropped connection costs one batch, not the series
    try:
        for start in range(0, len(todo), batch):
            client.store_instances([pydicom.dcmread(p) for p in todo[start:start + batch]], study)
    except (requests.RequestException, ValueError) as err:
        raise _error(url, err, "storing the series") from None
    missing = len(files) - len(stored_instances(client, url, study, series))
    if missing:
        raise PacsError(f"{url}: {missing} of {len(files)} instances were not stored; re-run to send the rest")
    return f"{url}/studies/{study}/series/{series}"
