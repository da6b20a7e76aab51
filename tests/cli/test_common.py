from medgan.cli._common import EXIT_FAILURE, EXIT_USER_ERROR, run_command
from medgan.errors import ConfigError, MissingFileError


def test_user_error_gives_exit_2_and_one_line(capsys):
    def body(argv):
        raise ConfigError("unknown key 'trainer.max_step'\n(did you mean 'trainer.max_steps'?)")

    assert run_command("medgan-x", body, []) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("medgan-x: error: unknown key 'trainer.max_step' (did you mean")


def test_missing_file_is_a_user_error(capsys):
    def body(argv):
        raise MissingFileError("input not found: /nope")

    assert run_command("medgan-x", body, []) == EXIT_USER_ERROR
    assert "/nope" in capsys.readouterr().err


def test_unexpected_error_is_exit_1_without_traceback(capsys, monkeypatch):
    monkeypatch.delenv("MEDGAN_DEBUG", raising=False)

    def body(argv):
        raise ZeroDivisionError("boom")

    assert run_command("medgan-x", body, []) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ZeroDivisionError: boom" in err


def test_body_return_code_passes_through():
    assert run_command("medgan-x", lambda argv: None, []) == 0
    assert run_command("medgan-x", lambda argv: 3, []) == 3


def test_every_command_help_is_instant_and_does_not_import_torch():
    """The contract: `medgan-<cmd> --help` answers at once, so nothing heavy is imported for it."""
    import subprocess
    import sys

    commands = ["convert", "simulate", "prepare", "train", "infer", "export", "anomaly", "eval", "demo"]
    code = (
        "import contextlib, io, sys, importlib\n"
        f"for name in {commands!r}:\n"
        "    module = importlib.import_module('medgan.cli.' + name)\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        assert module.main(['--help']) == 0, name\n"
        "    assert 'usage: medgan-' + name in out.getvalue(), name\n"
        "heavy = sorted(m for m in ('torch', 'monai', 'lightning', 'SimpleITK') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"--help imported {result.stdout.strip()}"


def test_a_bad_flag_value_is_one_line_naming_flag_and_value(capsys):
    from medgan.cli import simulate

    assert simulate.main(["--input", "x", "--output", "y", "--dose", "abc"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err
    assert "argument --dose: invalid float value: 'abc'" in err


def test_path_errors_are_user_errors_naming_the_path(capsys):
    import errno

    def body(argv):
        raise PermissionError(errno.EACCES, "Permission denied", "/ro/out.nii.gz")

    assert run_command("medgan-x", body, []) == EXIT_USER_ERROR
    assert capsys.readouterr().err == "medgan-x: error: Permission denied: '/ro/out.nii.gz'\n"

    def bug(argv):
        raise OSError(errno.EBADF, "Bad file descriptor")

    assert run_command("medgan-x", bug, []) == EXIT_FAILURE


def test_export_without_the_export_extra_says_what_to_install(tmp_path, capsys, monkeypatch):
    import sys

    import torch

    from medgan.cli.export import main
    from medgan.nets import build_net
    from medgan.package import make_manifest, save_model_package

    cfg = {"type": "unet_generator", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "feature_size": 4,
           "num_downs": 3}
    window = {"type": "window", "hu_min": -1024.0, "hu_max": 3071.0, "out_min": -1.0, "out_max": 1.0}
    manifest = make_manifest(recipe="pix2pix", nets={"generator": cfg}, infer_net="generator", spatial_dims=2,
                             normalization=window)
    state = {f"generator.{k}": v for k, v in build_net(cfg).state_dict().items()}
    package = save_model_package(tmp_path / "model", {k: torch.as_tensor(v) for k, v in state.items()}, manifest)
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` meets without the extra
    assert main(["--model", str(package), "--onnx", str(tmp_path / "m.onnx")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "medgan[export]"' in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
