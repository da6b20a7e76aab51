"""medgan-simulate: same format out as in, DICOM in -> derived series of the same study, one-line errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medgan.cli.simulate import main
from tests.dicom_fixtures import load_chest, write_dicom_series

FAST = ["--views", "90", "--dose", "0.25"]
CROP = (slice(32, 96), slice(32, 96), slice(10, 13))  # 64x64x3 of the real chest CT


@pytest.fixture(scope="module")
def chest_nrrd(tmp_path_factory):
    image = sitk.GetImageFromArray(load_chest(CROP).transpose(2, 1, 0))
    image.SetSpacing((0.9, 0.9, 2.5))
    image.SetOrigin((-30.0, 12.0, 100.0))
    path = tmp_path_factory.mktemp("nrrd") / "chest.nrrd"
    sitk.WriteImage(image, str(path))
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nrrd_in_nrrd_out_with_geometry_noise_and_reproducibility(chest_nrrd, tmp_path, capsys):
    before = _digest(chest_nrrd)
    out = tmp_path / "low.nrrd"
    assert main(["--input", str(chest_nrrd), "--output", str(out), *FAST, "--seed", "4"]) == 0
    assert "wrote" in capsys.readouterr().out and _digest(chest_nrrd) == before
    src, low = sitk.ReadImage(str(chest_nrrd)), sitk.ReadImage(str(out))
    assert low.GetSize() == src.GetSize()
    assert np.allclose(low.GetSpacing(), src.GetSpacing()) and np.allclose(low.GetOrigin(), src.GetOrigin())
    assert np.allclose(low.GetDirection(), src.GetDirection())
    assert low.GetPixelID() == sitk.sitkInt16  # CT stays 16-bit HU
    diff = sitk.GetArrayFromImage(low).astype(float) - sitk.GetArrayFromImage(src)
    assert 5 < diff.std() < 200 and abs(diff.mean()) < 5
    # same seed, same output; --overwrite is needed to write it again
    assert main(["--input", str(chest_nrrd), "--output", str(out), *FAST, "--seed", "4"]) == 2
    again = tmp_path / "again.nrrd"
    assert main(["--input", str(chest_nrrd), "--output", str(again), *FAST, "--seed", "4"]) == 0
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(again))), sitk.GetArrayFromImage(low))


def test_dicom_in_gives_a_derived_series_of_the_same_study(tmp_path):
    files = write_dicom_series(load_chest(CROP), tmp_path / "src")
    source = pydicom.dcmread(files[0], stop_before_pixels=True)
    out = tmp_path / "low"
    assert main(["--input", str(tmp_path / "src"), "--output", str(out), *FAST]) == 0
    written = sorted(out.glob("*.dcm")) or sorted(p for p in out.iterdir() if p.is_file())
    assert len(written) == len(files)
    ds = pydicom.dcmread(written[0])
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert "0.25" in ds.SeriesDescription and "imulated" in ds.SeriesDescription
    assert ds.pixel_array.dtype == np.int16


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dose", "0"], "--dose: got 0"),
        (["--dose", "1.5"], "--dose: got 1.5"),
        (["--dose", "0.5", "--mode", "sinogram"], "--mode: got 'sinogram', allowed: relative, absolute"),
        (["--dose", "0.5", "--photons", "-5"], "--photons: got -5"),
        (["--dose", "0.5", "--filter", "box"], "--filter: got 'box'"),
        (["--dose", "0.5", "--noise-hu", "0"], "--noise-hu: got 0"),
        (["--dose", "0.5", "--slice-thickness", "-1"], "--slice-thickness: got -1"),
    ],
)
def test_bad_parameters_exit_2_with_one_line(chest_nrrd, tmp_path, capsys, extra, message):
    assert main(["--input", str(chest_nrrd), "--output", str(tmp_path / "x.nrrd"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "x.nrrd").exists()


def test_prints_the_calibration_it_used_and_given_noise_overrides_it(chest_nrrd, tmp_path, capsys):
    assert main(["--input", str(chest_nrrd), "--output", str(tmp_path / "a.nrrd"), *FAST]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "HU (measured)" in line and "photons/mm^2" in line and "filter gaussian" in line
    measured = float(line.split("full-dose noise ")[1].split(" HU")[0])
    args = ["--input", str(chest_nrrd), "--output", str(tmp_path / "b.nrrd"), *FAST, "--noise-hu", "3"]
    assert main(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "full-dose noise 3.00 HU (given)" in line
    added = float(line.split("added noise ")[1].split(" HU")[0])
    assert 0.8 * 3 * 3**0.5 < added < 1.2 * 3 * 3**0.5 and added < measured  # sqrt(1/0.25 - 1) x 3 HU
    args = ["--input", str(chest_nrrd), "--output", str(tmp_path / "c.nrrd"), *FAST, "--photons", "5000"]
    assert main(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "full-dose noise not measured (photons given), 5e+03 photons/mm^2" in line and "nan" not in line


def test_missing_input_and_output_onto_input_are_user_errors(chest_nrrd, tmp_path, capsys):
    assert main(["--input", str(tmp_path / "nope.nrrd"), "--output", str(tmp_path / "x.nrrd"), *FAST]) == 2
    assert "nope.nrrd' does not exist" in capsys.readouterr().err
    assert main(["--input", str(chest_nrrd), "--output", str(chest_nrrd), *FAST, "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err


def test_help_is_instant_without_torch():
    code = (
        "import sys\n"
        "from medgan.cli.simulate import main\n"
        "assert main(['--help']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch imported for --help'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--electronic-noise" in done.stdout and "--mode" in done.stdout
