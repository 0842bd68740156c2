"""How every command-line script ends: one set of exit statuses and messages, tracebacks only on request.

    if __name__ == "__main__":
        run_main(main)

| status | when |
|---|---|
| 0 | everything went well |
| 1 | some inputs failed: each was reported with `skip(path, reason)` and left out; the output holds the rest |
| 2 | bad usage (argparse), or an `InputError` / `ValueError`: a missing or unreadable input, a missing model, every input of a batch failed |

A user's mistake prints `error: <file>: <reason>`, never a traceback; `--debug` anywhere on the command line
prints the traceback too. Anything else is a bug and keeps Python's traceback. `main(argv)` may return an
int, which becomes the status when nothing was skipped.
"""
from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable
from os import PathLike
from typing import Any, NoReturn

OK, SOME_FAILED, USAGE = 0, 1, 2

_skipped: list[tuple[str, str]] = []


def skip(path: str | PathLike, reason: str) -> None:
    """Report an input that failed and was left out; the run goes on and `run_main` ends it with status 1."""
    print(f"skipped {path}: {reason}", file=sys.stderr)
    _skipped.append((str(path), reason))


@contextlib.contextmanager
def expected_skips():
    """Inputs skipped inside this block are still reported but do not change the exit status: a demo's
    deliberately broken files are not a failure of the demo."""
    before = len(_skipped)
    try:
        yield
    finally:
        del _skipped[before:]


def skipped() -> list[tuple[str, str]]:
    """The inputs reported with `skip` since `run_main` started (or since the process started)."""
    return list(_skipped)


def run_main(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    _skipped.clear()
    try:
        result = main(argv)
    except ValueError as error:  # InputError is a ValueError: a bad input, model path or value, named in the message
        if debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
    if _skipped:
        print(f"{len(_skipped)} input(s) failed and were left out (listed above)", file=sys.stderr)
        sys.exit(SOME_FAILED)
    sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else OK)
