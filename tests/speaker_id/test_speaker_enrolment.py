"""Enrolment that never loses a voice: partial `--folders`, names already enrolled, speech seconds recorded
(real voices from ../shared multispeaker; skipped when absent)."""
import json
import shutil

import numpy as np
import pytest

from core.cli import run_main
from core.io import write_audio
from speaker_id import enroll
from tests.conftest import shared_data_path

pytestmark = pytest.mark.real_data


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(enroll.main, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture
def clips():
    audio = shared_data_path("speaker_id", "multispeaker", "audio")
    return {name: sorted((audio / name).glob("*.wav")) for name in ("vctk_p225", "vcc2016_TM2")}


def test_folders_enrol_every_usable_speaker_and_list_the_others(tmp_path, clips, capsys):
    people = tmp_path / "people"
    for name, source in (("alice", clips["vctk_p225"][:2]), ("bob", [])):
        (people / name).mkdir(parents=True)
        for clip in source:
            shutil.copy(clip, people / name / clip.name)
    write_audio(people / "bob" / "silence.wav", np.zeros(16000 * 2, np.float32), 16000)
    (people / "carol").mkdir()
    registry = tmp_path / "people.json"
    status, out, err = _run(["enroll", "--registry", str(registry), "--folders", str(people)], capsys)
    assert status == 1, err
    assert "enrolled 'alice'" in out and "Traceback" not in err
    assert f"skipped {people / 'bob' / 'silence.wav'}: no speech found" in err
    assert f"skipped {people / 'bob'}: speaker 'bob' not enrolled" in err
    assert f"skipped {people / 'carol'}: no audio files" in err
    saved = json.loads(registry.read_text())
    assert set(saved["speakers"]) == {"alice"}
    assert saved["speakers"]["alice"]["speech_seconds"] > 5


def test_nothing_usable_is_status_two_and_no_registry(tmp_path, capsys):
    people = tmp_path / "people"
    (people / "bob").mkdir(parents=True)
    write_audio(people / "bob" / "silence.wav", np.zeros(16000 * 2, np.float32), 16000)
    registry = tmp_path / "people.json"
    status, _, err = _run(["enroll", "--registry", str(registry), "--folders", str(people)], capsys)
    assert status == 2 and "error: " in err and "not written" in err
    assert not registry.exists()


def test_an_enrolled_name_is_refused_unless_replace_or_add(tmp_path, clips, capsys):
    registry = tmp_path / "people.json"
    alice = [str(c) for c in clips["vctk_p225"][:3]]
    other = [str(clips["vcc2016_TM2"][0])]
    assert _run(["enroll", "--registry", str(registry), "--name", "alice", *alice], capsys)[0] == 0
    before = registry.read_text()
    status, _, err = _run(["enroll", "--registry", str(registry), "--name", "alice", *other], capsys)
    assert status == 2 and "already holds 'alice'" in err and "--replace" in err
    assert registry.read_text() == before  # a 3-clip voiceprint is not replaced by one clip of somebody else

    first = json.loads(before)["speakers"]["alice"]
    status, out, _ = _run(["enroll", "--registry", str(registry), "--name", "alice", "--add", str(clips["vctk_p225"][3])], capsys)
    added = json.loads(registry.read_text())["speakers"]["alice"]
    assert status == 0 and "added to 'alice'" in out
    assert added["clips"] == 4 and added["speech_seconds"] > first["speech_seconds"]
    assert np.dot(added["embedding"], first["embedding"]) > 0.95  # the same voice, a little refined

    status, out, err = _run(["enroll", "--registry", str(registry), "--name", "alice", "--replace", *other], capsys)
    replaced = json.loads(registry.read_text())["speakers"]["alice"]
    assert status == 0 and "replaced 'alice'" in out and replaced["clips"] == 1
    assert "warning: 'alice': only" in err  # one clip holds under 10 s of speech: kept, with a warning

