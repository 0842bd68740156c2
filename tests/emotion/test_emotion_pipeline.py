"""End to end on generated data: train a tiny model, write a submission (bad inputs included), the
recognizer class (torch and ONNX), and the webcam demo on a video file."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from core.io import video_info
from emotion import predict, webcam_demo
from emotion.data import CLASSES, read_submission
from emotion.synthetic import draw_face, package_photos, write_competition_folder, write_face_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A competition folder and a compact CNN trained on it for a few epochs (about 12 s; validation 0.42-0.44 over seeds)."""
    from emotion import train

    root = write_competition_folder(tmp_path_factory.mktemp("competition"), per_class=16, n_test=12, size=96,
                                    extra_test_photos=package_photos()[:1])
    metrics = train.main(["--data", "skillbox", "--data-root", str(root), "--detector", "none", "--architecture", "compact_cnn",
                          "--input-size", "40", "--max-epochs", "10", "--batch-size", "16", "--learning-rate", "3e-3",
                          "--scheduler", "none", "--val-fraction", "0.25", "--log-every-n-steps", "1", "--augment", "light", "--no-progress-bar", "--accelerator", "cpu",
                          "--runs-root", str(root / "runs"), "--run-name", "tiny"])
    return root, metrics


def test_training_learns_the_generated_faces(trained):
    _, metrics = trained
    assert metrics["val_accuracy"] > 0.25  # 9 classes: chance is 0.11
    assert set(metrics["val_va_ccc"]) == {"valence", "arousal"}


def test_submission_has_a_row_for_every_image(trained, tmp_path):
    root, metrics = trained
    test_dir = root / "test_kaggle"
    (test_dir / "broken.jpg").write_bytes(b"not a jpeg at all")
    (test_dir / "notes.txt").write_text("not an image")
    output, probabilities = tmp_path / "submission.csv", tmp_path / "probabilities.csv"
    code = predict.main(["--weights", metrics["best_checkpoint"], "--test-dir", str(test_dir), "--output", str(output),
                         "--probabilities", str(probabilities), "--detector", "mediapipe"])
    assert code == 0
    submission = read_submission(output)
    images = sorted(p.name for p in test_dir.iterdir() if p.suffix == ".jpg")
    assert sorted(submission["image_path"]) == images  # broken.jpg has a row, notes.txt has none
    assert submission["image_path"][:3] == ["0.jpg", "1.jpg", "2.jpg"]  # natural order
    assert set(submission["emotion"]) <= set(CLASSES)
    with open(probabilities, newline="") as handle:
        rows = {row["image_path"]: row for row in csv.DictReader(handle)}
    assert rows["broken.jpg"]["flag"].startswith("unreadable")
    assert abs(sum(float(rows["0.jpg"][c]) for c in CLASSES) - 1) < 1e-3
    assert predict.check_submission(output, test_dir) == []
    assert predict.main(["--check", str(output), "--test-dir", str(test_dir)]) == 0
    # The sample submission fixes names and order.
    code = predict.main(["--weights", metrics["best_checkpoint"], "--test-dir", str(test_dir), "--output", str(output),
                         "--sample-submission", str(root / "sample_submission.csv"), "--detector", "none"])
    assert code == 0
    assert read_submission(output)["image_path"] == read_submission(root / "sample_submission.csv", check_labels=False)["image_path"]


def test_check_reports_missing_rows(trained, tmp_path):
    root, _ = trained
    partial = tmp_path / "partial.csv"
    partial.write_text("image_path,emotion\n0.jpg,happy\n")
    problems = predict.check_submission(partial, root / "test_kaggle")
    assert problems and "have no row" in problems[0]


def test_recognizer_torch_and_onnx_agree(trained):
    from emotion.recognizer import EmotionRecognizer

    _, metrics = trained
    photo = package_photos()[0]  # Grace Hopper portrait
    from core.io import read_image

    frame = read_image(photo)
    results = {}
    for backend in ("torch", "onnx"):
        recognizer = EmotionRecognizer(metrics["best_checkpoint"], backend=backend)
        assert recognizer.backend == backend
        results[backend] = recognizer.predict(frame)
        assert results[backend].face_found and results[backend].box.w > 50
        assert abs(sum(results[backend].probabilities.values()) - 1) < 1e-4
        assert -1.5 < results[backend].valence < 1.5 and -1.5 < results[backend].arousal < 1.5
        blank = recognizer.predict(np.zeros((120, 160, 3), np.uint8))
        assert not blank.face_found and blank.box is None and blank.label in CLASSES
        gray = recognizer.predict(frame[..., 0])  # a gray frame works too
        assert gray.label in CLASSES
    torch_p = np.array(list(results["torch"].probabilities.values()))
    onnx_p = np.array(list(results["onnx"].probabilities.values()))
    np.testing.assert_allclose(torch_p, onnx_p, atol=1e-4)


def test_recognizer_rejects_missing_weights(tmp_path):
    from core.io import InputError
    from emotion.recognizer import EmotionRecognizer

    with pytest.raises(InputError, match="weights file not found"):
        EmotionRecognizer(tmp_path / "nothing.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.ckpt: is not a model file"):
        EmotionRecognizer(bad)


def test_webcam_demo_on_a_video_file(trained, tmp_path, capsys):
    _, metrics = trained
    video = write_face_video(tmp_path / "in.mp4", frames=20, photo=package_photos()[0])
    output = tmp_path / "annotated.mp4"
    code = webcam_demo.main(["--source", str(video), "--weights", metrics["best_checkpoint"], "--output", str(output)])
    assert code == 0
    info = video_info(output)
    assert (info.width, info.height) == (640, 480) and info.frame_count == 20
    printed = capsys.readouterr().out
    assert "20 frames" in printed and "with a face" in printed
    faces = int(printed.split("frames, ")[1].split(" with")[0])
    assert 14 <= faces <= 18  # every tenth frame has no face


def test_webcam_demo_bad_sources(trained, tmp_path, capsys):
    from core.cli import run_main

    _, metrics = trained
    for source, message in [("57", "camera 57: cannot open the camera"),
                            (str(tmp_path / "missing.mp4"), "missing.mp4: video file not found")]:
        with pytest.raises(SystemExit) as exit_info:
            run_main(webcam_demo.main, ["--source", source, "--weights", metrics["best_checkpoint"],
                                        "--output", str(tmp_path / "o.mp4")])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_draw_prediction_without_face():
    from emotion.webcam_demo import draw_prediction

    frame = np.zeros((480, 640, 3), np.uint8)
    draw_prediction(frame, None, 30.0)
    assert frame.any()  # "no face" and the FPS were drawn
    assert draw_face("happy", 64).shape == (64, 64, 3)


def test_train_on_val_adds_the_val_faces_and_keeps_the_last_epoch(tmp_path, fer2013_csv):
    """The final-model option: val joins training, so the checkpoint is the last epoch, not the best val one."""
    import torch

    from emotion import train

    path = fer2013_csv([(k % 7, "Training" if k < 28 else "PublicTest") for k in range(42)])
    common = ["--data", "fer2013", "--data-root", str(path), "--architecture", "compact_cnn", "--input-size", "32",
              "--max-epochs", "3", "--batch-size", "8", "--scheduler", "none", "--no-progress-bar", "--accelerator", "cpu",
              "--runs-root", str(tmp_path / "runs")]
    plain = train.main([*common, "--run-name", "plain"])
    final = train.main([*common, "--run-name", "final", "--train-on-val"])
    assert (plain["n_train"], final["n_train"]) == (28, 42)
    assert torch.load(final["best_checkpoint"], map_location="cpu", weights_only=False)["epoch"] == 2
