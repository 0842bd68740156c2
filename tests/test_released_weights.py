"""The released weights (weights/, `make weights`): each file matches weights/MANIFEST.json, and each task's
documented `predict` command answers with no model argument, i.e. with no training step."""
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from core import release
from core.weights import FILES, manifest, weights_path
from tests.conftest import shared_data_path, write_faststart_mp4


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_release_is_in_the_manifest_and_matches_it():
    entries = manifest()["weights"]
    assert set(entries) == {f"{task}/{name}" for task, names in FILES.items() for name in names}
    assert {f"{r.task}/{name}" for r in release.RELEASES for name in (r.name, *(n for n, _ in r.exports))} == set(entries)
    assert release.check(entries) == []
    for key, item in entries.items():
        assert item["train_command"].startswith("python -m ") and item["sha256"] and item["libraries"]["python"]
        assert item["headline_metric"]["value"] is not None, key


@pytest.mark.parametrize("release_entry", [r for r in release.RELEASES if r.exports], ids=lambda r: r.task)
def test_each_exported_file_is_made_from_the_released_one(release_entry, tmp_path, monkeypatch):
    """Exporting the committed file again gives the committed ONNX export: the same graph, and the same
    weights up to float rounding (the exporter folds batch norms into the convolutions, and another CPU
    may round that arithmetic in the last bit), so the export is that model."""
    import onnx
    from onnx import numpy_helper

    monkeypatch.setattr(release, "weights_path", lambda task, name: tmp_path / FILES[task][name])
    for name, path in release.export(release_entry, weights_path(release_entry.task, release_entry.name)):
        again, committed = onnx.load(str(path)), onnx.load(str(weights_path(release_entry.task, name)))
        assert list(again.graph.node) == list(committed.graph.node), name
        assert list(again.graph.input) == list(committed.graph.input), name
        weights = {i.name: numpy_helper.to_array(i) for i in committed.graph.initializer}
        assert [i.name for i in again.graph.initializer] == list(weights), name
        for initializer in again.graph.initializer:
            np.testing.assert_allclose(numpy_helper.to_array(initializer), weights[initializer.name], rtol=1e-5,
                                       atol=1e-6, err_msg=f"{name}: {initializer.name}")


def test_the_check_finds_a_changed_or_missing_file(tmp_path, monkeypatch):
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "model.bin").write_bytes(b"weights")
    monkeypatch.setattr(release, "WEIGHTS_DIR", tmp_path)
    entry = {"file": "task/model.bin", "bytes": 7, "sha256": release.sha256(tmp_path / "task" / "model.bin")}
    assert release.check({"task/model": entry}) == []
    (tmp_path / "task" / "model.bin").write_bytes(b"weightz")
    assert "differs from weights/MANIFEST.json" in release.check({"task/model": entry})[0]
    (tmp_path / "task" / "model.bin").unlink()
    assert release.check({"task/model": entry})[0].endswith("missing")
    (tmp_path / "task" / "model.bin").write_bytes(b"weights")
    monkeypatch.setattr(release, "MAX_TASK_BYTES", 6)
    assert release.check({"task/model": entry}) == ["weights/task: 7 bytes, over the 6 bytes a task may ship"]


def test_a_missing_release_says_how_to_get_it(monkeypatch, tmp_path):
    from core import weights
    from core.io import InputError

    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(InputError, match="run `make weights` or pass a model file"):
        weights.released("emotion", "recognizer")


def test_emotion_predict_with_the_released_recognizer_reads_a_smile(tmp_path):
    """The astronaut photo shipped with scikit-image: a smiling face, read as happiness."""
    import skimage

    from emotion import predict

    faces = tmp_path / "test_kaggle"
    faces.mkdir()
    shutil.copy(Path(skimage.__file__).parent / "data" / "astronaut.png", faces / "astronaut.png")
    assert predict.main(["--test-dir", str(faces), "--output", str(tmp_path / "submission.csv")]) in (0, None)
    assert rows(tmp_path / "submission.csv")[0]["emotion"] == "happy"


def test_gesture_predict_with_the_released_model_answers_for_a_real_photo(tmp_path):
    import ultralytics

    from gesture_detection import predict
    from gesture_detection.model import LandmarkClassifier

    shutil.copy(Path(ultralytics.__file__).parent / "assets" / "zidane.jpg", tmp_path / "zidane.jpg")
    predict.main([str(tmp_path / "zidane.jpg"), "--output", str(tmp_path / "out.csv")])
    (answer,) = rows(tmp_path / "out.csv")
    labels = set(LandmarkClassifier.load(weights_path("gesture_detection", "landmark_linto")).labels) | {"no_gesture"}
    assert answer["gesture"] in labels and 0.0 <= float(answer["probability"]) <= 1.0


@pytest.mark.real_data
def test_video_gestures_predict_with_the_released_model_reads_real_fingertip_trajectories(tmp_path):
    """Every 50th row of the shared point-history set, labels dropped: the released model names the gestures."""
    from video_gestures import predict
    from video_gestures.data import read_point_history

    history = read_point_history(shared_data_path("video_gestures", "mediapipe_point_history", "point_history.csv"))
    picked = np.arange(0, len(history.targets), 50)
    np.savetxt(tmp_path / "history.csv", history.sequences[picked].reshape(len(picked), -1), delimiter=",")
    predict.main([str(tmp_path / "history.csv"), "-o", str(tmp_path / "out.csv")])
    answers = [row["prediction"] for row in rows(tmp_path / "out.csv")]
    truth = [history.labels[t] for t in history.targets[picked]]
    assert len(answers) == len(picked) and np.mean(np.array(answers) == np.array(truth)) >= 0.9


def test_action_predict_with_the_released_model_answers_for_a_video(tmp_path):
    from action_recognition import predict

    write_faststart_mp4(tmp_path / "clip.mp4", frames=12)
    predict.main([str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "out.csv")])
    (answer,) = rows(tmp_path / "out.csv")
    assert answer["label"] and float(answer["probability"]) > 0


@pytest.mark.real_data
def test_speaker_predict_with_the_released_model_names_an_fsdd_speaker(tmp_path):
    from speaker_id import predict

    recording = shared_data_path("speaker_id", "recordings") / "7_theo_3.wav"
    predict.main([str(recording), "-o", str(tmp_path / "out.csv")])
    assert rows(tmp_path / "out.csv")[0]["speaker"] == "theo"


# the libraries a one-input predict with the released weights must not import: each costs seconds of start-up
HEAVY = ("torch", "lightning", "torchvision", "sklearn", "ultralytics")
LIGHT_TASKS = ("emotion", "gesture_detection", "pose_smoothing", "speaker_id", "video_gestures", "action_recognition")


@pytest.mark.parametrize("task", LIGHT_TASKS)
def test_a_one_input_predict_imports_no_heavy_library(task, tmp_path):
    import subprocess
    import sys

    from core.startup import one_input_commands

    commands = one_input_commands(tmp_path)
    if task not in commands:  # speaker_id's one input is an FSDD recording from ../shared
        pytest.skip(f"{task}: real data not available (set SHARED_DATA_DIR or put shared/ beside the repo)")
    command = commands[task]
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", *command], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & set(HEAVY), f"{task} imported {sorted(imported & set(HEAVY))}"
