"""gesture_detection.teach: your own gestures from a folder of photos per gesture or from a video, end to end on
real LinTO photos (taught on one recording day, checked on the other), and the refusals that leave nothing written."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.cli import run_main
from core.io import AtomicVideoWriter
from gesture_detection import teach
from gesture_detection.data import NO_GESTURE, load_image, read_box_csv, recording_session
from gesture_detection.model import LandmarkClassifier
from gesture_detection.synthetic import synthetic_detections
from tests.conftest import shared_data_path

GESTURES = ("hello", "vectory", "yes")   # open palm, V sign, fist
TAUGHT_DAY = "2021-04-29"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_main(teach.main, [str(a) for a in argv])
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def linto_photos(day_taught: bool, per_gesture: int) -> dict[str, list[Path]]:
    """LinTO photos showing only one of GESTURES, from the taught recording day or from the other one."""
    labels = shared_data_path("gesture_detection", "linto_multi_hand_gesture", "labels.csv")
    chosen: dict[str, list[Path]] = {g: [] for g in GESTURES}
    for a in read_box_csv(labels):
        if a.gestures == {a.label} and a.label in chosen and (recording_session(a.path) == TAUGHT_DAY) == day_taught:
            chosen[a.label].append(a.path)
    return {g: paths[:: max(len(paths) // per_gesture, 1)][:per_gesture] for g, paths in chosen.items()}


def photo_folders(root: Path, per_gesture: int = 6) -> Path:
    for gesture, paths in linto_photos(True, per_gesture).items():
        (root / gesture).mkdir(parents=True)
        for path in paths:
            shutil.copy(path, root / gesture / path.name)
    return root


def held_out_accuracy(model: Path) -> float:
    """The default path with the taught model on photos of the other recording day."""
    from gesture_detection.pipeline import GesturePipeline

    pipeline = GesturePipeline("landmark", LandmarkClassifier.load(model), threshold=None)
    answers = [(pipeline.predict(load_image(p)).gesture, g) for g, paths in linto_photos(False, 4).items() for p in paths]
    return float(np.mean([answer == truth for answer, truth in answers]))


@pytest.mark.real_data
def test_teach_from_photo_folders_end_to_end(tmp_path, capsys):
    photos = photo_folders(tmp_path / "photos")
    model = tmp_path / "mine.joblib"
    status, out, err = run([photos, "--output", model], capsys)
    assert status == 0, err
    assert "taught 18 hands of 3 gestures" in out and "Traceback" not in err
    classifier = LandmarkClassifier.load(model)
    assert classifier.labels == [*GESTURES, NO_GESTURE] and len(classifier.taught["gestures"]) == 18
    assert classifier.calibration_fit.startswith("out-of-session")
    assert held_out_accuracy(model) >= 0.75   # 12 photos of a day it never saw

    # the taught model is a --landmark-model for predict
    from gesture_detection import predict

    csv = tmp_path / "predictions.csv"
    test_photo = linto_photos(False, 1)["vectory"][0]
    with pytest.raises(SystemExit) as exit_info:
        run_main(predict.main, [str(test_photo), "--landmark-model", str(model), "--output", str(csv)])
    assert exit_info.value.code == 0 and csv.read_text().splitlines()[1].split(",")[1] == "vectory"

    # a name that exists: refused, the file untouched; --replace overwrites; --add teaches more gestures into it
    before = model.read_bytes()
    status, _, err = run([photos, "--output", model], capsys)
    assert status == 2 and f"error: {model}: exists" in err and model.read_bytes() == before
    more = tmp_path / "more"
    shutil.copytree(photos / "yes", more / "fist")
    shutil.copytree(photos / "hello", more / "palm")
    status, _, err = run([more, "--output", model, "--add"], capsys)
    assert status == 0, err
    assert LandmarkClassifier.load(model).labels == [*sorted(["fist", *GESTURES, "palm"]), NO_GESTURE]
    # the same photos under two names cannot be told apart: warned about, still written
    assert "'fist' and 'yes' are hard to tell apart" in err and "'hello' and 'palm' are hard to tell apart" in err
    status, _, err = run([more, "--output", model, "--add"], capsys)   # fist and palm exist now
    assert status == 2 and "already has the gestures fist, palm" in err


def write_gesture_video(path: Path, seconds: float = 2.0, fps: int = 10) -> Path:
    """GESTURES one after another, `seconds` each, each shown by a few real photos in turn."""
    with AtomicVideoWriter(path, fps, (400, 300)) as writer:
        for gesture, paths in linto_photos(True, 5).items():
            frames = int(seconds * fps)
            for i in range(frames):
                writer.write(load_image(paths[i * len(paths) // frames]))
    return path


@pytest.mark.real_data
def test_teach_from_a_video_file_end_to_end(tmp_path, capsys):
    video = write_gesture_video(tmp_path / "gestures.mp4")
    model = tmp_path / "from_video.joblib"
    status, out, err = run(["--video", video, "--gestures", *GESTURES, "--seconds", 2, "--output", model], capsys)
    assert status == 0, err
    classifier = LandmarkClassifier.load(model)
    assert classifier.labels == [*GESTURES, NO_GESTURE]
    taught = classifier.taught
    assert {taught["gestures"].count(g) for g in GESTURES} <= set(range(5, 16))   # 1.5 s of each at 10 fps
    assert set(taught["groups"]) == {f"part {i}" for i in range(5)}
    assert held_out_accuracy(model) >= 0.75
    # live reads the same video with the taught model: each gesture's stretch answers that gesture
    from gesture_detection import live

    annotated = tmp_path / "live.mp4"
    with pytest.raises(SystemExit) as exit_info:
        run_main(live.main, ["--source", str(video), "--gesture-model", str(model), "--output", str(annotated), "--no-skip"])
    assert exit_info.value.code == 0
    import pandas as pd

    rows = pd.read_csv(annotated.with_suffix(".csv"))
    for i, gesture in enumerate(GESTURES):
        stretch = rows[(rows.time >= 2 * i + 0.5) & (rows.time < 2 * i + 2)]
        assert (stretch.gesture == gesture).mean() >= 0.8, (gesture, stretch.gesture.value_counts())

    # without the names: the video is read, and the message says how many gestures it holds
    status, _, err = run(["--video", video, "--output", tmp_path / "unnamed.joblib"], capsys)
    assert status == 2 and f"error: {video}: name the gestures" in err and "hold 2 of --seconds 3" in err, err
    assert not (tmp_path / "unnamed.joblib").exists()


def _no_hand_photo(path: Path) -> Path:
    import skimage

    from core.io import write_image

    return write_image(path, skimage.data.coffee())


@pytest.mark.real_data
@pytest.mark.parametrize("mistake", ["empty_gesture_folder", "no_hand_in_any_photo", "one_gesture", "one_video_gesture"])
def test_bad_teaching_inputs_are_refused_with_nothing_written(mistake, tmp_path, capsys):
    photos = photo_folders(tmp_path / "photos", per_gesture=2)
    model = tmp_path / "model.joblib"
    if mistake == "empty_gesture_folder":
        (photos / "thanks").mkdir()
        argv, named, words = [photos], photos / "thanks", "no photo in this gesture folder"
    elif mistake == "no_hand_in_any_photo":
        (photos / "coffee").mkdir()
        for i in range(2):
            _no_hand_photo(photos / "coffee" / f"cup{i}.jpg")
        argv, named, words = [photos], photos / "coffee", "no hand found in any of its 2 examples"
    elif mistake == "one_gesture":
        for gesture in GESTURES[1:]:
            shutil.rmtree(photos / gesture)
        argv, named, words = [photos], photos, "only one gesture (hello)"
    else:
        video = write_gesture_video(tmp_path / "clip.mp4", seconds=1.0)
        argv, named, words = ["--video", video, "--gestures", "hello"], video, "only one gesture (hello)"
    status, _, err = run([*argv, "--output", model], capsys)
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {named}: ") and words in lines[0], err
    assert "Traceback" not in err and not model.exists()
    assert not list(tmp_path.glob(".model.*"))   # no temporary file left either


@pytest.mark.real_data
def test_a_photo_with_no_hand_is_skipped_and_the_model_still_written(tmp_path, capsys):
    photos = photo_folders(tmp_path / "photos", per_gesture=3)
    cup = _no_hand_photo(photos / "yes" / "cup.jpg")
    model = tmp_path / "model.joblib"
    status, out, err = run([photos, "--output", model], capsys)
    assert status == 1 and f"skipped {cup}: no hand found" in err
    assert model.is_file() and "taught 9 hands of 3 gestures" in out


def test_teach_warns_about_gestures_it_cannot_separate():
    hands, labels = synthetic_detections(12, seed=1, gestures=("stop", "victory", "like"))
    # "like" and "thumb" taught from the very same hands: no classifier can tell them apart
    doubled = hands + [h for h, g in zip(hands, labels) if g == "like"]
    gestures = labels + ["thumb"] * labels.count("like")
    groups = [f"photo {i}" for i in range(len(doubled))]
    taught = teach.teach(doubled, gestures, groups)
    assert [(a, b) for a, b, _ in taught.confusions] == [("like", "thumb")]
    assert taught.pair_accuracy[("stop", "victory")] >= 0.9
    assert taught.classifier.labels == ["like", "stop", "thumb", "victory", NO_GESTURE]
    assert taught.seconds < 60


def test_largest_hand_is_the_example():
    hands, _ = synthetic_detections(2, seed=0, gestures=("stop",))
    small, large = hands[0].with_box(np.array([0, 0, 10, 10])), hands[1].with_box(np.array([0, 0, 50, 40]))
    assert teach.largest_hand([small, large]) is large and teach.largest_hand([]) is None


def test_one_example_per_gesture_is_taught_without_folds():
    hands, labels = synthetic_detections(1, seed=2, gestures=("stop", "victory"))
    taught = teach.teach(hands, labels, ["photo 1", "photo 2"])
    assert np.isnan(taught.cv_accuracy) and taught.confusions == []
    assert taught.classifier.calibration_fit == "none" and taught.classifier.threshold == 0.5
