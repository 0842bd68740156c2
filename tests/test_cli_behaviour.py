"""Every task's CLI ends the same way (core.cli.run_main): status 2 and one line naming the file for a
missing input or model, no traceback, no output file. Run in-process on each script's real `main`."""
import importlib

import numpy as np
import pytest

from core.cli import run_main
from core.io import write_audio

CASES = [  # module, arguments ({tmp} is a fresh folder), what the message must say
    ("speaker_id.predict", ["--checkpoint", "{tmp}/none.ckpt", "{tmp}/voice.wav", "-o", "{tmp}/out.csv"], "none.ckpt: model file not found"),
    ("speaker_id.predict", ["-o", "{tmp}/out.csv"], "the following arguments are required"),
    ("speaker_id.enroll", ["identify", "--registry", "{tmp}/none.json", "{tmp}/voice.wav", "-o", "{tmp}/out.csv"], "none.json: registry not found"),
    ("speaker_id.enroll", ["enroll", "--registry", "{tmp}/r.json", "--name", "ann", "{tmp}/missing.wav"], "missing.wav: no such file"),
    ("emotion.predict", ["--weights", "{tmp}/none.ckpt", "--test-dir", "{tmp}", "--output", "{tmp}/out.csv"], "none.ckpt: model file not found"),
    ("emotion.predict", ["--output", "{tmp}/out.csv"], "--test-dir is required"),
    ("action_recognition.predict", ["--checkpoint", "{tmp}/none.ckpt", "{tmp}", "-o", "{tmp}/out.csv"], "none.ckpt: model file not found"),
    ("video_gestures.predict", ["--checkpoint", "{tmp}/none.ckpt", "{tmp}/clip.mp4", "-o", "{tmp}/out.csv"], "none.ckpt: model file not found"),
    ("pose_smoothing.extract", ["{tmp}/missing.mp4", "-o", "{tmp}/out.csv"], "missing.mp4: file not found"),
    ("pose_smoothing.live", ["--source", "{tmp}/missing.mp4", "--output", "{tmp}/out.mp4"], "missing.mp4: video file not found"),
    ("gesture_detection.live", ["--source", "57", "--output", "{tmp}/out.mp4"], "camera 57: cannot open the camera"),
    ("webcam_demo", ["--source", "{tmp}/missing.mp4", "--output", "{tmp}/out.mp4"], "missing.mp4: video file not found"),
    ("gesture_detection.predict", ["{tmp}/empty", "--landmark-model", "{tmp}/none.joblib", "--output", "{tmp}/out.csv"],
     "none.joblib: model file not found"),
    ("gesture_detection.predict", ["{tmp}/empty", "--mode", "fingers", "--output", "{tmp}/out.csv"], "empty: no files with extension"),
    ("gesture_detection.predict", ["{tmp}/missing.jpg", "--mode", "fingers", "--output", "{tmp}/out.csv"], "missing.jpg: no such file"),
    ("gesture_detection.predict", ["{tmp}/bad.jpg", "--mode", "fingers", "--output", "{tmp}/out.csv"],
     "bad.jpg: no input could be read (cannot decode image (not an image format"),
]


@pytest.mark.parametrize("module, arguments, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_users_mistake_is_status_two_with_the_file_and_reason(module, arguments, message, tmp_path, capsys):
    write_audio(tmp_path / "voice.wav", np.zeros(8000, np.float32), 8000)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    argv = [a.format(tmp=tmp_path) for a in arguments]
    with pytest.raises(SystemExit) as exit_info:
        run_main(importlib.import_module(module).main, argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "r.json").exists()


def test_some_inputs_failing_is_status_one_and_the_output_holds_the_rest(tmp_path, capsys):
    """gesture_detection in fingers mode (no model needed) on a real photo with hands and a broken file."""
    import shutil
    from pathlib import Path

    import ultralytics

    shutil.copy(Path(ultralytics.__file__).parent / "assets" / "zidane.jpg", tmp_path / "zidane.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    with pytest.raises(SystemExit) as exit_info:
        run_main(importlib.import_module("gesture_detection.predict").main,
                 [str(tmp_path / "bad.jpg"), str(tmp_path / "zidane.jpg"), "--mode", "fingers", "--output", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and f"skipped {tmp_path / 'bad.jpg'}: cannot decode image" in err
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0] == "path,gesture,probability" and len(rows) == 2 and rows[1].startswith(str(tmp_path / "zidane.jpg"))


RELEASED = [  # module, arguments without a model ({tmp} is a fresh folder): each falls back to weights/
    ("speaker_id.predict", ["{tmp}/voice.wav", "-o", "{tmp}/out.csv"]),
    ("emotion.predict", ["--test-dir", "{tmp}", "--output", "{tmp}/out.csv"]),
    ("gesture_detection.predict", ["{tmp}/bad.jpg", "--output", "{tmp}/out.csv"]),
    ("action_recognition.predict", ["{tmp}", "-o", "{tmp}/out.csv"]),
    ("video_gestures.predict", ["{tmp}/clip.mp4", "-o", "{tmp}/out.csv"]),
]


@pytest.mark.parametrize("module, arguments", RELEASED, ids=[c[0] for c in RELEASED])
def test_a_missing_released_model_says_run_make_weights(module, arguments, tmp_path, capsys, monkeypatch):
    from core import weights

    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "weights")
    write_audio(tmp_path / "voice.wav", np.zeros(8000, np.float32), 8000)
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    with pytest.raises(SystemExit) as exit_info:
        run_main(importlib.import_module(module).main, [a.format(tmp=tmp_path) for a in arguments])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "released weights not found; run `make weights`" in err and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()
