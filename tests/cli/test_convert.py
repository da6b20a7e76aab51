"""medgan-convert: conversions that work, and one readable line with exit 2 for every bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from medgan.cli.convert import main
from medgan.io import read_volume
from tests.dicom_fixtures import BAD_INPUT_MESSAGES


def test_dicom_to_nifti_and_back_to_dicom(chest_dicom_dir, tmp_path, capsys):
    assert main([str(chest_dicom_dir), str(tmp_path / "ct.nii.gz")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main([str(tmp_path / "ct.nii.gz"), str(tmp_path / "series"), "--format", "dicom"]) == 0
    source, back = read_volume(chest_dicom_dir), read_volume(tmp_path / "series")
    np.testing.assert_array_equal(back.numpy(), source.numpy())
    np.testing.assert_allclose(back.affine.numpy(), source.affine.numpy(), atol=1e-4)
    assert sitk.ReadImage(str(tmp_path / "ct.nii.gz")).GetPixelID() == sitk.sitkInt16


def test_existing_output_needs_overwrite(ct_chest_path, tmp_path, capsys):
    out = tmp_path / "ct.mha"
    assert main([str(ct_chest_path), str(out)]) == 0
    capsys.readouterr()
    assert main([str(ct_chest_path), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err
    assert main([str(ct_chest_path), str(out), "--overwrite"]) == 0


def test_contradictory_format_is_refused(ct_chest_path, tmp_path, capsys):
    assert main([str(ct_chest_path), str(tmp_path / "x.nii.gz"), "--format", "nrrd"]) == 2
    assert "format 'nrrd' does not match" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_series_uid_picks_one_of_several(bad_inputs, tmp_path, capsys):
    assert main([str(bad_inputs["two_series"]), str(tmp_path / "x.nrrd")]) == 2
    err = capsys.readouterr().err
    uid = err.split("(series_uid=): ", 1)[1].split(" ")[0]
    assert main([str(bad_inputs["two_series"]), str(tmp_path / "x.nrrd"), "--series-uid", uid]) == 0


@pytest.mark.parametrize("name", sorted(BAD_INPUT_MESSAGES))
def test_bad_input_exit_2_one_line(bad_inputs, tmp_path, capsys, name):
    code = main([str(bad_inputs[name]), str(tmp_path / "out.nii.gz")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("medgan-convert: error: ")
    assert BAD_INPUT_MESSAGES[name] in err
    assert not (tmp_path / "out.nii.gz").exists()


def test_real_process_exit_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "medgan.cli.convert", str(tmp_path / "nope"), str(tmp_path / "o.nrrd")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == f"medgan-convert: error: input '{tmp_path / 'nope'}' does not exist\n"


def test_help_is_complete_without_importing_torch():
    code = (
        "import sys\n"
        "from medgan.cli.convert import main\n"
        "rc = main(['--help'])\n"
        "print('RC', rc, 'TORCH', 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "RC 0 TORCH False" in result.stdout
    for flag in ("--format", "--overwrite", "--series-uid", "dicom", "nifti", "nrrd", "mha"):
        assert flag in result.stdout
