"""What every command shares: the exit-code contract and a consistent one-line error."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence

from medgan.errors import MedganError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2


def run_command(prog: str, body: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None) -> int:
    """Run a command body and map exceptions to the exit-code contract.

    0 on success; 2 with ``prog: error: <message>`` on stderr for a :class:`MedganError` (bad config,
    bad input, missing file); 1 for anything unexpected, with the traceback only when ``MEDGAN_DEBUG=1``.
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
    except SystemExit as exc:  # argparse's own exit (2 for bad flags, 0 for --help)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USER_ERROR
    except Exception as err:  # noqa: BLE001 - the last line of defence of a CLI
        if os.environ.get("MEDGAN_DEBUG") == "1":
            traceback.print_exc()
        message = " ".join(f"{type(err).__name__}: {err}".split())
        print(f"{prog}: unexpected failure: {message} (set MEDGAN_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
