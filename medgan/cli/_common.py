"""What every command shares: the exit-code contract and a consistent one-line error."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from medgan.errors import MedganError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2

#: Modules of the optional extras in pyproject.toml: a missing one is an installation to make, not a bug.
OPTIONAL_MODULES = {"onnx": "export", "onnxruntime": "export", "bm3d": "baselines"}
#: OSErrors that say something about the paths the user gave (not about medgan): exit 2, not 1.
_PATH_ERRNOS = frozenset({
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.ENOTDIR,
    errno.EISDIR, errno.ELOOP, errno.ENOENT, errno.EEXIST, errno.EFBIG, errno.EXDEV,
})


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other user error.

    argparse's own message already names the flag and the value (``argument --dose: invalid float value:
    'abc'``); the usage block it would print first is left to ``--help``. Sub-command parsers inherit this.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def run_command(prog: str, body: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None) -> int:
    """Run a command body and map exceptions to the exit-code contract.

    0 on success; 2 with ``prog: error: <message>`` on stderr for a :class:`MedganError` (bad config,
    bad input, missing file, unwritable output) and for an ``OSError`` about a path (permission denied,
    full disk, name too long ...: the message names the path); 1 for anything unexpected, with the
    traceback only when ``MEDGAN_DEBUG=1``.
    """
    try:
        code = body(argv)
        return EXIT_OK if code is None else int(code)
    except MedganError as err:
        message = " ".join(str(err).split())  # one line, whatever the message held
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as err:
        extra = OPTIONAL_MODULES.get((err.name or "").split(".")[0])
        if extra is None:
            return _unexpected(prog, err)
        print(f"{prog}: error: this needs '{err.name}', which is not installed: pip install \"medgan[{extra}]\"",
              file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as err:
        if err.errno not in _PATH_ERRNOS:
            return _unexpected(prog, err)
        where = f": '{err.filename}'" if err.filename else ""
        print(f"{prog}: error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_USER_ERROR
    except SystemExit as exc:  # argparse's own exit (2 for bad flags, 0 for --help)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USER_ERROR
    except Exception as err:  # noqa: BLE001 - the last line of defence of a CLI
        return _unexpected(prog, err)


def _unexpected(prog: str, err: BaseException) -> int:
    if os.environ.get("MEDGAN_DEBUG") == "1":
        traceback.print_exception(err)
    message = " ".join(f"{type(err).__name__}: {err}".split())
    print(f"{prog}: unexpected failure: {message} (set MEDGAN_DEBUG=1 for the traceback)", file=sys.stderr)
    return EXIT_FAILURE
