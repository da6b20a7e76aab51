"""``medgan-infer`` from and back to a real Orthanc, over DICOMweb and DIMSE, and its one-line errors."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
import requests

from medgan.cli.infer import main as infer_main
from medgan.pacs import parse_url
from tests.dicom_fixtures import load_chest, write_dicom_series
from tests.inference.test_cli_infer import _package
from tests.pacs.conftest import ORTHANC_AET, PASSWORD, USER, _free_port

CROP = (slice(20, 84), slice(24, 72), slice(12, 17))  # 64 x 48 x 5 voxels of the chest CT


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory):
    cfg = {"type": "rescnn_lite", "spatial_dims": 2, "in_channels": 3, "out_channels": 1, "feature_size": 4,
           "num_layers": 3}
    return _package(tmp_path_factory.mktemp("m") / "identity", cfg, zero_last=True, input_mode="2.5d",
                    context_slices=1, description="medgan test identity")


@pytest.fixture()
def source(orthanc, tmp_path):
    """A chest CT series uploaded through Orthanc's REST API (not through the code under test)."""
    files = write_dicom_series(load_chest(CROP), tmp_path / "src")
    for path in files:
        requests.post(orthanc.rest + "/instances", data=path.read_bytes(), auth=(USER, PASSWORD),
                      timeout=30).raise_for_status()
    return [pydicom.dcmread(p) for p in files]


def _check_derived(orthanc, source: list[pydicom.Dataset]) -> None:
    src = source[0]
    study = orthanc.get(f"/studies/{_orthanc_id(orthanc, 'Study', src.StudyInstanceUID)}")
    assert len(study["Series"]) == 2  # the derived series landed in the source study
    derived_id = next(s for s in study["Series"]
                      if orthanc.get(f"/series/{s}")["MainDicomTags"]["SeriesInstanceUID"] != src.SeriesInstanceUID)
    instances = orthanc.get(f"/series/{derived_id}/instances")
    assert len(instances) == len(source)
    derived = [pydicom.dcmread(io.BytesIO(requests.get(f"{orthanc.rest}/instances/{i['ID']}/file",
                                                       auth=(USER, PASSWORD), timeout=30).content))
               for i in instances]
    assert {d.SOPInstanceUID for d in derived}.isdisjoint({s.SOPInstanceUID for s in source})
    assert {d.SeriesInstanceUID for d in derived} != {src.SeriesInstanceUID}
    assert len({d.SeriesInstanceUID for d in derived}) == 1
    assert {d.StudyInstanceUID for d in derived} == {src.StudyInstanceUID}
    assert {d.FrameOfReferenceUID for d in derived} == {src.FrameOfReferenceUID}
    assert {d.PatientID for d in derived} == {src.PatientID}
    assert all(list(d.ImageType)[:2] == ["DERIVED", "SECONDARY"] for d in derived)
    # geometry and HU: the identity model gives back every source slice at the same position
    by_position = {tuple(round(float(v), 3) for v in s.ImagePositionPatient): s for s in source}
    for d in derived:
        s = by_position[tuple(round(float(v), 3) for v in d.ImagePositionPatient)]
        assert list(d.ImageOrientationPatient) == pytest.approx(list(s.ImageOrientationPatient))
        assert list(d.PixelSpacing) == pytest.approx(list(s.PixelSpacing))
        hu_d = d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
        hu_s = s.pixel_array * float(s.RescaleSlope) + float(s.RescaleIntercept)
        assert np.abs(hu_d - hu_s).max() <= 1


def _orthanc_id(orthanc, level: str, uid: str) -> str:
    key = {"Study": "StudyInstanceUID", "Series": "SeriesInstanceUID"}[level]
    found = requests.post(orthanc.rest + "/tools/find", json={"Level": level, "Query": {key: uid}},
                          auth=(USER, PASSWORD), timeout=30)
    return found.json()[0]


def _infer(model, src: str, dst: str, *extra: str) -> int:
    return infer_main(["--model", str(model), "--input", src, "--output", dst, "--no-progress", "--device", "cpu",
                       *extra])


def test_dicomweb_in_and_out(orthanc, source, identity_model, capsys):
    base = f"dicomweb://127.0.0.1:{orthanc.http_port}/dicom-web"
    src = f"{base}/studies/{source[0].StudyInstanceUID}/series/{source[0].SeriesInstanceUID}"
    assert _infer(identity_model, src, base) == 0, capsys.readouterr().err
    assert f"wrote {base}/studies/{source[0].StudyInstanceUID}/series/" in capsys.readouterr().out
    _check_derived(orthanc, source)


def test_dimse_in_and_out(orthanc, source, identity_model, capsys, monkeypatch):
    monkeypatch.setenv("MEDGAN_AET", "MEDGANTEST")
    base = f"dimse://{ORTHANC_AET}@127.0.0.1:{orthanc.dicom_port}"
    src = f"{base}/studies/{source[0].StudyInstanceUID}/series/{source[0].SeriesInstanceUID}"
    assert _infer(identity_model, src, base) == 0, capsys.readouterr().err
    _check_derived(orthanc, source)


def test_archive_input_to_a_local_file(orthanc, source, identity_model, tmp_path):
    src = (f"dimse://{ORTHANC_AET}@127.0.0.1:{orthanc.dicom_port}/studies/{source[0].StudyInstanceUID}"
           f"/series/{source[0].SeriesInstanceUID}")
    out = tmp_path / "denoised.nii.gz"
    assert _infer(identity_model, src, str(out), "--calling-aet", "OTHER") == 0
    assert out.is_file()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_credentials_from_netrc_and_a_wrong_password(orthanc, source, identity_model, capsys, monkeypatch,
                                                     tmp_path):
    study, series = source[0].StudyInstanceUID, source[0].SeriesInstanceUID
    src = f"dicomweb://127.0.0.1:{orthanc.http_port}/dicom-web/studies/{study}/series/{series}"
    monkeypatch.setenv("MEDGAN_PACS_PASSWORD", "s3cret-wrong")
    assert _infer(identity_model, src, str(tmp_path / "a.nii.gz")) == 2
    err = _one_line_error(capsys)
    assert "not authorised" in err and "s3cret-wrong" not in err
    monkeypatch.delenv("MEDGAN_PACS_USER")
    monkeypatch.delenv("MEDGAN_PACS_PASSWORD")
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))  # what ~/.netrc is for requests, without touching the real home
    assert _infer(identity_model, src, str(tmp_path / "b.nii.gz")) == 0
    assert PASSWORD not in capsys.readouterr().out


def test_errors_are_one_line_exit_2(orthanc, source, identity_model, capsys, tmp_path):
    study, series = source[0].StudyInstanceUID, source[0].SeriesInstanceUID
    dead = _free_port()  # nothing listens there
    web = f"dicomweb://127.0.0.1:{orthanc.http_port}/dicom-web"
    dimse = f"dimse://{ORTHANC_AET}@127.0.0.1:{orthanc.dicom_port}"
    out = str(tmp_path / "o.nii.gz")
    cases = {
        f"dicomweb://127.0.0.1:{dead}/dicom-web/studies/{study}/series/{series}": "cannot reach",
        f"{web}/studies/1.2.3.999/series/1.2.3.998": "not found",
        f"dimse://{ORTHANC_AET}@127.0.0.1:{dead}/studies/{study}/series/{series}": "cannot reach",
        f"{dimse}/studies/1.2.3.999/series/1.2.3.998": "not found",
        # Orthanc rejects a wrong called AE title, but closes the socket at once: pynetdicom sees either the
        # rejection or an abort, whichever it reads first. Either way the one line must point at the AE titles.
        f"dimse://WRONG@127.0.0.1:{orthanc.dicom_port}/studies/{study}/series/{series}": "called 'WRONG'",
        f"{web}/studies/{study}": "series",
        f"dicomweb://bob:hunter2@127.0.0.1:{orthanc.http_port}/dicom-web/studies/{study}/series/{series}": "password",
    }
    for url, expected in cases.items():
        assert _infer(identity_model, url, out) == 2, url
        err = _one_line_error(capsys)
        assert expected in err, err
        assert PASSWORD not in err and "hunter2" not in err
    assert _infer(identity_model, f"{web}/studies/{study}/series/{series}", f"{web}/studies/{study}/series/1") == 2
    assert "source study" in _one_line_error(capsys)
    assert not (tmp_path / "o.nii.gz").exists()


def test_url_parsing():
    url = parse_url("dicomwebs://pacs.example:443/a/dicom-web/studies/1.2/series/3.4", series=True)
    assert (url.base, url.study, url.series) == ("https://pacs.example:443/a/dicom-web", "1.2", "3.4")
    url = parse_url("dimse://STORESCP@10.0.0.1:104", series=False)
    assert (url.aet, url.host, url.port, url.series) == ("STORESCP", "10.0.0.1", 104, "")


def test_convert_between_archives(orthanc, source, capsys):
    from medgan.cli.convert import main as convert_main

    study, series = source[0].StudyInstanceUID, source[0].SeriesInstanceUID
    src = f"dicomweb://127.0.0.1:{orthanc.http_port}/dicom-web/studies/{study}/series/{series}"
    assert convert_main([src, f"dimse://{ORTHANC_AET}@127.0.0.1:{orthanc.dicom_port}"]) == 0, capsys.readouterr().err
    _check_derived(orthanc, source)
    assert convert_main([src, "dimse://x"]) == 2
    assert "host:port" in _one_line_error(capsys)


def test_rerun_after_a_partial_store_completes_the_same_series(orthanc, source, identity_model, capsys):
    base = f"dicomweb://127.0.0.1:{orthanc.http_port}/dicom-web"
    src = f"{base}/studies/{source[0].StudyInstanceUID}/series/{source[0].SeriesInstanceUID}"
    assert _infer(identity_model, src, base) == 0, capsys.readouterr().err
    first = capsys.readouterr().out
    study = orthanc.get(f"/studies/{_orthanc_id(orthanc, 'Study', source[0].StudyInstanceUID)}")
    derived = next(s for s in study["Series"] if orthanc.get(f"/series/{s}")["MainDicomTags"]["SeriesInstanceUID"]
                   != source[0].SeriesInstanceUID)
    instances = orthanc.get(f"/series/{derived}/instances")
    for item in instances[:2]:  # what a broken upload leaves: part of the series
        requests.delete(f"{orthanc.rest}/instances/{item['ID']}", auth=(USER, PASSWORD),
                        timeout=30).raise_for_status()
    assert len(orthanc.get(f"/series/{derived}/instances")) == len(source) - 2
    assert _infer(identity_model, src, base) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == first  # the same series URL
    _check_derived(orthanc, source)  # still two series in the study, the derived one complete
    again = orthanc.get(f"/series/{derived}/instances")
    assert {i["ID"] for i in instances[2:]} <= {i["ID"] for i in again}  # the same instances, not a second copy
