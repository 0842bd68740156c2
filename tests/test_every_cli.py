"""Every command-line entry point against every kind of user mistake that applies to it.

The commands are found by themselves: each `<package>/<script>.py` whose `__main__` runs `run_main(main)`,
and webcam_demo.py, so a new command is covered without editing this file. Each command's parser is
captured (its `main` runs with `ArgumentParser.parse_args` replaced), and its arguments say what they are
by their argparse type (`core.cli`: OutputFile, OutputFolder, ModelArgument, InputArgument). Each mistake
is tried on each argument it applies to. Every run must end with status 2 (1 for good inputs mixed with bad
ones), one line `error: <file>: <reason>` (or `skipped <file>: <reason>`) naming the file, no traceback,
and no output file left behind. Inputs and models are generated here, tiny, so the whole table runs fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import core.cli
from core.cli import InputArgument, ModelArgument, OutputFile, OutputFolder, run_main
from core.env import REPO_ROOT, SHARED_DATA


# ----------------------------------------------------------------------------------------- discovery
def entry_points() -> list[str]:
    """Modules whose `__main__` is `run_main(main)`: `<package>/<script>` under the repository root, and webcam_demo."""
    scripts = [REPO_ROOT / "webcam_demo.py", *sorted(REPO_ROOT.glob("*/*.py"))]
    found = []
    for path in scripts:
        if path.parent.name in ("tests", ".venv") or path == REPO_ROOT / "core" / "cli.py":
            continue
        if re.search(r"^if __name__ == \"__main__\":\s*\n\s*run_main\(main\)", path.read_text(), re.M):
            found.append(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts))
    return found


class _Captured(Exception):
    pass


def captured_parser(module_name: str) -> argparse.ArgumentParser:
    """The parser `main` builds, caught as it is about to parse."""
    module = importlib.import_module(module_name)
    caught = {}

    def capture(self, *args, **kwargs):
        caught["parser"] = self
        raise _Captured

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), \
            mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
        try:
            module.main([])
        except _Captured:
            pass
    return caught["parser"]


@dataclass
class Command:
    module: str
    prefix: list[str]                     # a subcommand's name
    parser: argparse.ArgumentParser
    name: str = field(init=False)

    def __post_init__(self):
        self.name = " ".join([self.module, *self.prefix])

    def actions(self, kind: type) -> list[argparse.Action]:
        return [a for a in self.parser._actions if isinstance(a.type, kind)]


def commands() -> list[Command]:
    found = []
    for module in entry_points():
        parser = captured_parser(module)
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subparsers:
            found += [Command(module, [name], sub) for name, sub in subparsers[0].choices.items()]
        else:
            found.append(Command(module, [], parser))
    return found


COMMANDS = commands()


def test_every_entry_point_is_found_and_says_what_it_does(capsys):
    names = {c.module for c in COMMANDS}
    assert {"webcam_demo", "speaker_id.predict", "emotion.predict", "action_recognition.predict",
            "video_gestures.predict", "gesture_detection.predict", "pose_smoothing.extract", "core.startup"} <= names
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            run_main(importlib.import_module(command.module).main, [*command.prefix, "--help"])
        assert exit_info.value.code == 0, command.name
        assert "usage:" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- generated files
OTHER_TASK = "other_task"


def _text(path: Path) -> Path:
    path.write_text("this is a text file, not what its name says\n")
    return path


def _other_task_checkpoint(path: Path) -> Path:
    import torch

    torch.save({"task": OTHER_TASK, "labels": ["a", "b"], "state_dict": {"w": torch.zeros(2)},
                "hyper_parameters": {"labels": ["a", "b"]}}, path)
    return path


def _other_task_onnx(path: Path) -> Path:
    import torch

    from core.onnx import export_onnx

    return export_onnx(torch.nn.Linear(2, 2), torch.zeros(1, 2), path, ["x"], ["y"], {"labels": '["a", "b"]'},
                       task=OTHER_TASK)


def _truncated(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


MODEL_MISTAKES = {  # name -> (file maker(tmp, suffix), words the message must hold)
    "missing": (lambda tmp, suffix: tmp / f"missing{suffix}", "not found"),
    "zero_bytes": (lambda tmp, suffix: _touch(tmp / f"empty{suffix}"), "empty file"),
    "text": (lambda tmp, suffix: _text(tmp / f"text{suffix}"), "not a model file (text)"),
    "other_task_checkpoint": (lambda tmp, suffix: _other_task_checkpoint(tmp / "other.ckpt"), ""),
    "other_task_onnx": (lambda tmp, suffix: _other_task_onnx(tmp / "other.onnx"), ""),
    "corrupt_onnx": (lambda tmp, suffix: _truncated(tmp / "cut.onnx", _other_task_onnx(tmp / "whole.onnx")),
                     "truncated"),
    "corrupt_checkpoint": (lambda tmp, suffix: _truncated(tmp / "cut.ckpt", _other_task_checkpoint(tmp / "whole.ckpt")),
                           "damaged or truncated"),
}


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def read_only_folder(tmp: Path) -> Path:
    """A folder no file can be created in: chmod 555, or where the tests run as root (who may write anyway)
    a folder of sysfs."""
    folder = tmp / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK) or os.geteuid() != 0:
        return folder
    for candidate in (Path("/sys/kernel"), Path("/sys")):
        try:
            (candidate / ".probe").write_text("")
        except OSError:
            return candidate
    pytest.skip("no folder here refuses writes (root on a writable sysfs)")


def _mistake_cases() -> list[tuple]:
    cases = []
    for command in COMMANDS:
        for action in command.actions(OutputFile):
            option = action.option_strings[-1]
            cases += [(command, option, "output_in_read_only_folder"), (command, option, "output_is_a_folder")]
            if action.type.suffixes:
                cases.append((command, option, "output_without_its_extension"))
        for action in command.actions(OutputFolder):
            option = action.option_strings[-1] if action.option_strings else action.dest
            cases += [(command, option, "folder_in_read_only_folder"), (command, option, "folder_is_a_file")]
        for action in command.actions(ModelArgument):
            cases += [(command, action.option_strings[-1], mistake) for mistake in MODEL_MISTAKES]
    return cases


def _argument(command: Command, option: str) -> argparse.Action:
    return next(a for a in command.parser._actions if option in a.option_strings or a.dest == option)


def _write_value(command: Command, option: str, mistake: str, tmp: Path) -> tuple[Path, str]:
    """(the bad path, what the message must say) for one mistake on one argument."""
    action = _argument(command, option)
    if mistake == "output_in_read_only_folder":
        suffix = action.type.suffixes[0] if action.type.suffixes else ".csv"
        return read_only_folder(tmp) / f"out{suffix}", "cannot be written"
    if mistake == "output_is_a_folder":
        (tmp / "a_folder").mkdir()
        return tmp / "a_folder", "is a folder"
    if mistake == "output_without_its_extension":
        return tmp / "out_without_extension", "needs one of the extensions"
    if mistake == "folder_in_read_only_folder":
        return read_only_folder(tmp) / "out_folder", "cannot be written"
    if mistake == "folder_is_a_file":
        return _text(tmp / "a_file.txt"), "is not a folder"
    make, words = MODEL_MISTAKES[mistake]
    formats = action.type.formats
    suffix = {"checkpoint": ".ckpt", "onnx": ".onnx", "joblib": ".joblib"}[formats[0]]
    path = make(tmp, suffix)
    made_format = "onnx" if mistake.endswith("onnx") else "checkpoint" if mistake.endswith("checkpoint") else None
    if made_format and made_format not in formats:
        words = ("needs", words) if mistake.startswith("corrupt") else "needs"   # refused by its format or its damage
    elif mistake.startswith("other_task"):
        words = f"not {'an' if action.type.task[0] in 'aeiou' else 'a'} {action.type.task} model"
    return path, words


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def _run(module: str, argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_main(importlib.import_module(module).main, argv)
    return exit_info.value.code, capsys.readouterr().err


def _assert_one_line_error(err: str, path: Path, words: str, name: str) -> None:
    assert "Traceback" not in err, f"{name}: traceback\n{err}"
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, f"{name}: expected one error line\n{err}"
    alternatives = (words,) if isinstance(words, str) else words
    assert str(path) in lines[0] and any(w in lines[0] for w in alternatives), \
        f"{name}: the message should name {path} and say {words!r}\n{err}"


@pytest.mark.parametrize("command, option, mistake", _mistake_cases(),
                         ids=lambda v: v.name.replace(" ", ":") if isinstance(v, Command) else str(v))
def test_a_bad_output_or_model_argument_is_status_two_before_any_work(command, option, mistake, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    bad, words = _write_value(command, option, mistake, work)
    before = _files_under(tmp_path)
    # the bad argument alone: it is checked while parsing, so neither the other arguments nor any input is needed
    argv = [*command.prefix, *([option, str(bad)] if option.startswith("-") else [str(bad)])]
    status, err = _run(command.module, argv, capsys)
    assert status == 2, f"{command.name} {option} {mistake}: status {status}\n{err}"
    _assert_one_line_error(err, bad, words, f"{command.name} {option} {mistake}")
    assert _files_under(tmp_path) == before, f"{command.name}: files were written"


# ----------------------------------------------------------------------------------------- inputs
def _good_image(tmp: Path) -> Path:
    import skimage

    from core.io import write_image

    return write_image(tmp / "astronaut.jpg", skimage.data.astronaut())


def _good_video(tmp: Path) -> Path:
    from tests.conftest import write_faststart_mp4

    return write_faststart_mp4(tmp / "good.mp4", frames=20)


def _good_audio(tmp: Path) -> Path:
    """A few seconds of real speech (enough for enrolment's voice activity check)."""
    speakers = SHARED_DATA / "speaker_id" / "multispeaker" / "audio"
    clips = sorted(speakers.glob("*/*.wav"))[:1] if speakers.is_dir() else []
    if not clips:
        pytest.skip(f"real speech not available under {speakers}")
    return Path(shutil.copy(clips[0], tmp / "voice.wav"))


GOOD = {"image": _good_image, "video": _good_video, "audio": _good_audio}
SUFFIX = {"image": ".jpg", "video": ".mp4", "audio": ".wav", "image_folder": ".jpg"}

INPUT_MISTAKES = ("missing", "empty_folder", "zero_bytes", "text_with_its_extension", "truncated", "good_and_bad")


def _input_cases() -> list[tuple]:
    cases = []
    for command in COMMANDS:
        for action in command.actions(InputArgument):
            for mistake in INPUT_MISTAKES:
                if mistake == "good_and_bad" and action.nargs not in ("+", "*"):
                    continue
                if mistake == "empty_folder" and action.type.kind != "image_folder" and not action.nargs:
                    continue
                cases.append((command, action.option_strings[-1] if action.option_strings else action.dest, mistake))
    return cases


def _registry(tmp: Path) -> str:
    """A speaker registry with one enrolled voice (for identify and verify)."""
    registry = tmp / "registry.json"
    status = _run_quietly("speaker_id.enroll", ["enroll", "--registry", str(registry), "--name", "ann",
                                                str(_good_audio(tmp))])
    assert status == 0 and registry.is_file()
    return str(registry)


def _run_quietly(module: str, argv: list[str]) -> int:
    try:
        run_main(importlib.import_module(module).main, argv)
    except SystemExit as exit_info:
        return exit_info.code
    return 0


# values the input cases give other arguments a command needs (by argparse dest), made in the test's folder
OTHER_ARGUMENTS = {"name": lambda tmp: "ann", "claim": lambda tmp: "ann", "registry": _registry}


def _input_value(kind: str, mistake: str, tmp: Path) -> tuple[list[Path], Path]:
    """(the values to pass, the bad one)."""
    suffix = SUFFIX[kind]
    if mistake == "missing":
        bad = tmp / f"missing{suffix}"
    elif mistake == "empty_folder":
        bad = tmp / "empty_folder"
        bad.mkdir()
    elif mistake == "zero_bytes":
        bad = _touch(tmp / f"empty{suffix}")
    elif mistake == "text_with_its_extension":
        bad = _text(tmp / f"text{suffix}")
    elif mistake == "truncated":
        whole = GOOD["image" if kind == "image_folder" else kind](tmp)
        bad = _truncated(tmp / f"cut{suffix}", whole)
        whole.unlink()
    else:  # good_and_bad
        bad = tmp / f"missing{suffix}"
        return [GOOD[kind](tmp), bad], bad
    if kind == "image_folder" and mistake != "empty_folder":
        folder = tmp / "faces"
        folder.mkdir()
        if bad.exists():
            bad = Path(shutil.move(bad, folder / bad.name))
        else:
            bad = folder
        return [folder], bad
    return [bad], bad


@pytest.mark.parametrize("command, option, mistake", _input_cases(),
                         ids=lambda v: v.name.replace(" ", ":") if isinstance(v, Command) else str(v))
def test_bad_inputs_are_named_and_the_output_holds_only_good_ones(command, option, mistake, tmp_path, capsys):
    """One bad input: status 2 and no output. Good and bad: status 1, the bad one listed, the output written.
    A truncated video decodes in part: a warning names it, the output says so."""
    action = _argument(command, option)
    inputs_dir, out_dir = tmp_path / "in", tmp_path / "out"
    inputs_dir.mkdir()
    values, bad = _input_value(action.type.kind, mistake, inputs_dir)
    argv = list(command.prefix)
    outputs = command.actions(OutputFile)
    for output in outputs:
        suffix = output.type.suffixes[0] if output.type.suffixes else ".csv"
        argv += [output.option_strings[-1], str(out_dir / f"{output.dest}{suffix}")]
    for folder in command.actions(OutputFolder):
        argv += [folder.option_strings[-1], str(out_dir / folder.dest)] if folder.option_strings else [str(out_dir / folder.dest)]
    for other in command.parser._actions:
        if other.option_strings and other.dest in OTHER_ARGUMENTS and not isinstance(other.type, OutputFile):
            argv += [other.option_strings[-1], OTHER_ARGUMENTS[other.dest](tmp_path)]
    argv += [option, *map(str, values)] if option.startswith("-") else list(map(str, values))
    status, err = _run(command.module, argv, capsys)
    name = f"{command.name} {mistake}"
    assert "Traceback" not in err, f"{name}: traceback\n{err}"
    written = [p for p in out_dir.rglob("*") if p.is_file()] if out_dir.exists() else []
    if mistake == "truncated" and action.type.kind in ("video", "audio"):
        # what decodes is used (status 0), unless a command finds nothing in it (generated noise has no person: 2)
        assert status == 0 or status == 2 and f"error: {bad}" in err, f"{name}: status {status}\n{err}"
        assert re.search(f"(warning: |skipped ){re.escape(str(bad))}: .*truncated", err), f"{name}: no warning names {bad}\n{err}"
        return
    if mistake == "good_and_bad":
        assert status == 1, f"{name}: status {status}\n{err}"
        assert any(line.startswith("skipped ") and str(bad) in line for line in err.splitlines()), f"{name}\n{err}"
        assert written, f"{name}: the good input's output is missing"
        return
    assert status == 2, f"{name}: status {status}\n{err}"
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and str(bad) in err, f"{name}: the message should name {bad}\n{err}"
    assert not written, f"{name}: {written} written although nothing was usable"
