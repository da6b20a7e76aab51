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
