import numpy as np
import pytest
import SimpleITK as sitk

from medgan.cli.eval import main, parse_window


def _write(path, array_zyx):
    image = sitk.GetImageFromArray(array_zyx.astype(np.int16))
    image.SetSpacing((0.8, 0.7, 2.0))
    sitk.WriteImage(image, str(path))
    return str(path)


def test_named_and_numeric_windows():
    assert parse_window("chest") == (-1350.0, 150.0)
    assert parse_window("head") == (0.0, 80.0)
    assert parse_window("40,400") == (-160.0, 240.0)
    assert parse_window("soft_tissue") == (-160.0, 240.0)  # every name the training config knows


def test_cli_writes_csv_refuses_to_overwrite_and_reports_bad_window(tmp_path, capsys):
    phantom = np.full((2, 16, 16), -100, dtype=np.int16)
    target = _write(tmp_path / "t.nii.gz", phantom)
    pred = _write(tmp_path / "p.nii.gz", phantom + 5)
    out = tmp_path / "eval.csv"
    assert main(["--pred", pred, "--target", target, "--window", "abdomen", "--output", str(out)]) == 0
    rows = out.read_text().splitlines()
    assert rows[1].split(",")[4] == "5.0000" and rows[-1].startswith("mean,2,")
    assert "window [-150, 250] HU" in capsys.readouterr().out

    assert main(["--pred", pred, "--target", target, "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err

    assert main(["--pred", pred, "--target", target, "--window", "wide"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--window: got 'wide'" in err


@pytest.mark.parametrize("missing", ["pred", "target"])
def test_missing_scan_is_exit_2(tmp_path, capsys, missing):
    real = _write(tmp_path / "x.nii.gz", np.zeros((1, 8, 8)))
    args = {"pred": real, "target": real, missing: str(tmp_path / "nope.nii.gz")}
    assert main(["--pred", args["pred"], "--target", args["target"]]) == 2
    assert "nope.nii.gz" in capsys.readouterr().err
