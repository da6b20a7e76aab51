import subprocess
import sys

from medgan.cli.sample import main
from tests.synthesis._packages import cgan_config, save_package


def test_sample_cli_writes_the_folder_and_reports_the_pixel_size(tmp_path, capsys):
    pkg = save_package(tmp_path / "pkg", cgan_config(), class_names=["lung", "soft"])
    out = tmp_path / "s"
    assert main(["--model", str(pkg), "--n", "3", "--class", "lung", "--seed", "5", "--output", str(out),
                 "--window", "chest"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 samples" in printed and "seed 5" in printed and "assumed" in printed
    assert (out / "contact_sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["--model", str(pkg), "--n", "3", "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["--model", str(pkg), "--n", "3", "--output", str(out), "--overwrite", "--seed", "6"]) == 0


def test_user_errors_are_one_line_exit_2(tmp_path, capsys):
    pkg = save_package(tmp_path / "pkg", cgan_config(), class_names=["lung", "soft"])
    cases = [
        (["--class", "bone"], "unknown class 'bone'; known: lung, soft"),
        (["--n", "0"], "--n: got 0"),
        (["--window", "wide"], "--window"),
    ]
    for extra, message in cases:
        assert main(["--model", str(pkg), "--output", str(tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    den = save_package(tmp_path / "den", {"type": "rescnn_lite", "spatial_dims": 2, "in_channels": 1,
                                          "out_channels": 1}, recipe="redcnn")
    assert main(["--model", str(den), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generates from noise" in err
    assert main(["--model", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_help_is_instant_and_imports_nothing_heavy():
    code = ("import contextlib, io, sys\n"
            "from medgan.cli import sample, dream\n"
            "for m in (sample, dream):\n"
            "    out = io.StringIO()\n"
            "    with contextlib.redirect_stdout(out):\n"
            "        assert m.main(['--help']) == 0\n"
            "    assert 'usage: ' + m.PROG in out.getvalue()\n"
            "print(','.join(sorted(m for m in ('torch', 'monai', 'lightning', 'SimpleITK') if m in sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
