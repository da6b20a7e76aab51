"""A real Orthanc with its DICOMweb plugin on free 127.0.0.1 ports, for the archive tests."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

DICOMWEB_PLUGINS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",)
ORTHANC_AET = "ORTHANC"
#: The test server's only HTTP user (made up for the test; never a real credential).
USER, PASSWORD = "medgan-test", "pw-for-tests-only"


@dataclass
class Orthanc:
    http_port: int
    dicom_port: int

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str):
        response = requests.get(self.rest + path, auth=(USER, PASSWORD), timeout=30)
        response.raise_for_status()
        return response.json()

    def series_tags(self, series_uid: str) -> list[dict]:
        """The main DICOM tags of every instance of a series, as Orthanc indexed them."""
        found = requests.post(self.rest + "/tools/find", json={"Level": "Series", "Query": {
            "SeriesInstanceUID": series_uid}}, auth=(USER, PASSWORD), timeout=30).json()
        if not found:
            return []
        instances = self.get(f"/series/{found[0]}/instances")
        return [self.get(f"/instances/{item['ID']}/simplified-tags") for item in instances]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _plugin() -> str | None:
    for path in DICOMWEB_PLUGINS:
        if Path(path).is_file():
            return path
    try:  # elsewhere on another distribution: ask dpkg where the package put it
        listing = subprocess.run(["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True).stdout
    except OSError:
        return None
    return next((line for line in listing.splitlines() if line.endswith(".so")), None)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Orthanc:
    """Orthanc on 127.0.0.1 with DICOMweb at /dicom-web behind HTTP basic auth (:data:`USER`), and C-GET /
    C-STORE open to any calling AE title."""
    exe = shutil.which("Orthanc")
    if exe is None:
        pytest.skip("Orthanc is not installed (Debian: apt-get install orthanc orthanc-dicomweb; make sysdeps)")
    plugin = _plugin()
    if plugin is None:
        pytest.skip("Orthanc's DICOMweb plugin is not installed (Debian: apt-get install orthanc-dicomweb)")
    root = tmp_path_factory.mktemp("orthanc")
    server = Orthanc(_free_port(), _free_port())
    config = {
        "Name": "medgan-test", "StorageDirectory": str(root / "db"), "IndexDirectory": str(root / "db"),
        "HttpPort": server.http_port, "DicomPort": server.dicom_port, "DicomAet": ORTHANC_AET,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD}, "HttpServerEnabled": True,
        "DicomServerEnabled": True, "DicomCheckCalledAet": True, "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowStore": True, "UnknownSopClassAccepted": False,
        "Plugins": [plugin], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = (root / "orthanc.log").open("w")
    proc = subprocess.Popen([exe, str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(server.rest + "/system", auth=(USER, PASSWORD), timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not start: {(root / 'orthanc.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(autouse=True)
def pacs_credentials(monkeypatch):
    """The medgan side logs in as the test user through the environment, as a user would."""
    monkeypatch.setenv("MEDGAN_PACS_USER", USER)
    monkeypatch.setenv("MEDGAN_PACS_PASSWORD", PASSWORD)
