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
int, which becomes the status when nothing was skipped. With status 2 no output file is written.

Arguments say what they are with their argparse `type`, and are checked while the command line is parsed,
before any work starts:

    parser.add_argument("-o", "--output", type=OutputFile(), default="predictions.csv")   # a str default is checked too
    parser.add_argument("--annotate-dir", type=OutputFolder())
    parser.add_argument("--weights", type=ModelArgument("emotion"))     # format and task from the file's first bytes
    parser.add_argument("inputs", nargs="+", type=InputArgument("video"))   # what a test generates for it

An unwritable output or a wrong model file ends the run with `error: <file>: <reason>` and status 2 at once
(tests/test_every_cli.py finds every command and tries each kind of mistake on the arguments so marked).
MediaPipe, absl and TF-Lite log lines are silenced unless `--verbose` is on the command line.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn

from core.io import InputError, check_output
from core.models import CHECKPOINT, ONNX, checked_model

OK, SOME_FAILED, USAGE = 0, 1, 2
VIDEO_OUTPUT_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


class BadArgument(Exception):
    """An argument found wrong while parsing (an unwritable output, another task's model). Not a ValueError,
    which argparse would turn into a usage message that does not say why; `run_main` prints it as an error."""

    def __init__(self, error: InputError):
        super().__init__(str(error))
        self.error = error


class _Argument:
    """An argparse `type` that tells what an argument is (`role`) and checks it while parsing."""

    role = "input"

    def check(self, path: Path) -> None:
        pass

    def __call__(self, value: str) -> Path:
        path = Path(value)
        try:
            self.check(path)
        except InputError as error:
            raise BadArgument(error) from None
        return path

    @property
    def __name__(self) -> str:  # argparse names the type in its messages
        return self.role.replace("_", " ")


class OutputFile(_Argument):
    """A file the command writes: its folder must take a file (made if missing), and it must not be a folder."""

    role = "output_file"

    def __init__(self, suffixes: Iterable[str] = ()):
        self.suffixes = tuple(suffixes)

    def check(self, path: Path) -> None:
        check_output(path, suffixes=self.suffixes)


class OutputFolder(_Argument):
    """A folder the command writes files into (made if missing)."""

    role = "output_folder"

    def check(self, path: Path) -> None:
        check_output(path, folder=True)


class ModelArgument(_Argument):
    """A model file of `task` (`core.models.checked_model`): missing, text, damaged or another task's file
    is refused before anything loads."""

    role = "model"

    def __init__(self, task: str, formats: Iterable[str] = (CHECKPOINT, ONNX)):
        self.task, self.formats = task, tuple(formats)

    def check(self, path: Path) -> None:
        if not path.exists():
            raise InputError(path, f"model file not found (train one with `python -m {self.task}.train`, or leave "
                                   "the option out for the released model)")
        checked_model(path, self.task, self.formats)


class InputArgument(_Argument):
    """An input file or folder (`kind`: video, image, audio, folder, or any); checked by the readers, so that a
    bad one among many is skipped, not fatal."""

    def __init__(self, kind: str = "any", as_path: bool = True):
        self.kind, self.as_path = kind, as_path

    def __call__(self, value: str) -> Path | str:
        return Path(value) if self.as_path else value

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


def input_files(paths: Iterable[str | PathLike], extensions: Iterable[str]) -> list[Path]:
    """The files a command's inputs stand for: a file as given, a folder searched recursively for `extensions`.
    A missing path or a folder with no such file is reported with `skip` and left out; an InputError naming
    it when nothing is left."""
    from core.io import list_files

    files, failed = [], []
    for path in map(Path, paths):
        try:
            if path.is_dir():
                files += list_files(path, extensions)
            elif path.is_file():
                files.append(path)
            else:
                raise InputError(path, "no such file or folder")
        except InputError as error:
            failed.append(error)
    if not files and failed:
        raise failed[0] if len(failed) == 1 else InputError(failed[0].path, f"{failed[0].reason} (and {len(failed) - 1} "
                                                                           "more inputs, none usable)")
    for error in failed:
        skip(error.path, error.reason)
    return files


def skipped() -> list[tuple[str, str]]:
    """The inputs reported with `skip` since `run_main` started (or since the process started)."""
    return list(_skipped)


def run_main(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug, verbose = "--debug" in argv, "--verbose" in argv
    argv = [arg for arg in argv if arg not in ("--debug", "--verbose")]
    _skipped.clear()
    try:
        with contextlib.nullcontext() if verbose else quiet_native_logs():
            result = main(argv)
    except (ValueError, BadArgument) as error:  # InputError is a ValueError: a bad input, model path or value, named
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


# What MediaPipe's C++ (absl / glog) and TF-Lite write to file descriptor 2 on every start: one line each
NATIVE_LOG_LINE = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                             rb"|INFO: Created TensorFlow Lite|[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\])")


@contextlib.contextmanager
def quiet_native_logs():
    """Drop the log lines C++ libraries write to file descriptor 2 (MediaPipe's absl and TF-Lite lines:
    "Created TensorFlow Lite XNNPACK delegate", "W0000 ... inference_feedback_manager.cc:114] ..."): descriptor 2
    becomes a pipe whose lines a thread passes on to the real stderr unless they are such a line, so everything
    else, child processes' stderr included, still shows. Python's own stderr writes to the real one directly.
    Nothing changes where stderr is not a real descriptor (pytest's capsys)."""
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    if descriptor != 2:
        yield
        return
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    python_stderr = sys.stderr
    sys.stderr = open(os.dup(real), "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace")
    os.dup2(write_end, 2)
    os.close(write_end)

    def pass_on() -> None:
        with open(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(4096):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if not NATIVE_LOG_LINE.match(line):
                        os.write(real, line + b"\n")
            if pending and not NATIVE_LOG_LINE.match(pending):
                os.write(real, pending)

    thread = threading.Thread(target=pass_on, name="native-log-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)          # the pipe's last writer here closes: the thread drains it and ends
        thread.join(timeout=2.0)  # (a child process still holding it open does not keep this one waiting)
        os.close(real)
        sys.stderr.close()
        sys.stderr = python_stderr
