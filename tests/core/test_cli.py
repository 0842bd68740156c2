"""core.cli.run_main: the exit statuses and messages every script's __main__ shares."""
import pytest

from core.cli import run_main, skip
from core.io import InputError


def _status(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, argv)
    return exit_info.value.code, capsys.readouterr().err


def test_success_is_zero_and_an_int_result_is_the_status(capsys):
    assert _status(lambda argv: {"done": True}, [], capsys)[0] == 0
    assert _status(lambda argv: 3, [], capsys)[0] == 3
    assert _status(lambda argv: True, [], capsys)[0] == 0, "a bool result is not a status"


def test_skipped_inputs_give_status_one_and_are_listed(capsys):
    def main(argv):
        skip("clips/b.wav", "cannot decode audio")
        return 0

    status, err = _status(main, [], capsys)
    assert status == 1
    assert "skipped clips/b.wav: cannot decode audio" in err and "1 input(s) failed" in err
    assert _status(lambda argv: 0, [], capsys)[0] == 0, "the list starts empty on every run"


@pytest.mark.parametrize("error", [InputError("weights/x.ckpt", "checkpoint not found"), ValueError("weights/x.ckpt: bad value")])
def test_user_mistakes_are_status_two_without_a_traceback(error, capsys):
    def main(argv):
        raise error

    status, err = _status(main, [], capsys)
    assert (status, err) == (2, f"error: {error}\n")
    status, err = _status(main, ["--debug"], capsys)
    assert status == 2 and "Traceback" in err


def test_debug_flag_is_removed_and_bad_usage_keeps_argparse_status(capsys):
    import argparse

    def main(argv):
        parser = argparse.ArgumentParser()
        parser.add_argument("--size", type=int, required=True)
        return parser.parse_args(argv).size

    assert _status(main, ["--size", "4", "--debug"], capsys)[0] == 4
    assert _status(main, [], capsys)[0] == 2


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_main(lambda argv: 1 / 0, [])


def test_expected_skips_are_reported_but_keep_status_zero(capsys):
    from core.cli import expected_skips

    def main(argv):
        with expected_skips():
            skip("demo/broken.jpg", "cannot decode image")
        return 0

    status, err = _status(main, [], capsys)
    assert status == 0 and "skipped demo/broken.jpg" in err


def test_native_log_lines_are_dropped_and_everything_else_shows(tmp_path):
    """MediaPipe's C++ lines on descriptor 2 vanish; Python's stderr and a child process's stderr still show;
    --verbose keeps everything."""
    import os
    import subprocess
    import sys

    script = tmp_path / "noisy.py"
    script.write_text(
        "import os, subprocess, sys\n"
        "from core.cli import run_main\n"
        "def main(argv):\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'W0000 00:00:1796619158.296455   21691 inference_feedback_manager.cc:114] Feedback\\n')\n"
        "    os.write(2, b'a native line of another kind\\n')\n"
        "    print('python line', file=sys.stderr)\n"
        "    subprocess.run([sys.executable, '-c', 'import sys; print(\"child line\", file=sys.stderr)'])\n"
        "    raise ValueError('x.onnx: an error')\n"
        "run_main(main)\n")
    from core.env import REPO_ROOT

    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}   # this checkout's core, whatever the venv points at
    quiet = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=environment)
    assert quiet.returncode == 2
    assert "TensorFlow Lite" not in quiet.stderr and "W0000" not in quiet.stderr
    for line in ("a native line of another kind", "python line", "child line", "error: x.onnx: an error"):
        assert line in quiet.stderr
    verbose = subprocess.run([sys.executable, str(script), "--verbose"], capture_output=True, text=True, env=environment)
    assert "TensorFlow Lite" in verbose.stderr and "W0000" in verbose.stderr and verbose.returncode == 2
