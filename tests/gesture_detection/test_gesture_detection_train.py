"""Training CLIs end to end on tiny generated data (slow), and the real sets (real_data)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_data_path


def blob_image(path, colour, size=(64, 48), box=(16, 8, 48, 40)):
    """A flat background with one coloured rectangle (the 'hand')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full((size[1], size[0], 3), 90, dtype=np.uint8)
    array[box[1]:box[3], box[0]:box[2]] = colour
    Image.fromarray(array).save(path)
    return path


@pytest.mark.slow
def test_crop_classifier_trains_from_class_folders_and_predicts(tmp_path):
    from gesture_detection import train
    from gesture_detection.crop_model import CropClassifier

    for i in range(6):
        blob_image(tmp_path / "set" / "red" / f"{i}.png", (220, 30, 30))
        blob_image(tmp_path / "set" / "blue" / f"{i}.png", (30, 30, 220))
    metrics = train.main(["--classifier", "crop", "--data", str(tmp_path / "set"), "--format", "folders",
                          "--image-size", "32", "--batch-size", "4", "--max-epochs", "1", "--val-fraction", "0.35",
                          "--backbone", "mobilenetv3_small_050",  # the timm-from-scratch option, and quick
                          "--runs-root", str(tmp_path / "runs"), "--run-name", "crop", "--no-progress-bar",
                          "--learning-rate", "3e-3"])
    run = tmp_path / "runs" / "gesture_detection" / "crop"
    assert metrics["classes"] == ["blue", "red"] and metrics["val_images"] == 4
    assert {"config.json", "metrics.json", "best.ckpt", "confusion.png"} <= {p.name for p in run.iterdir()}
    model = CropClassifier.load(run / "best.ckpt")  # onnxruntime
    crops = [np.full((40, 30, 3), (220, 30, 30), dtype=np.uint8), np.full((20, 50, 3), (30, 30, 220), dtype=np.uint8)]
    probabilities = model.probabilities(crops)
    assert probabilities.shape == (2, 2) and probabilities.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert model._onnx is not None
    in_torch = CropClassifier.load(run / "best.ckpt", backend="torch").probabilities(crops)
    np.testing.assert_allclose(probabilities, in_torch, atol=1e-4)


@pytest.mark.slow
def test_yolo_detector_trains_offline_from_a_box_csv(tmp_path):
    from gesture_detection import train_detector

    rows = ["image,split,width,height,class,xmin,ymin,xmax,ymax"]
    for i in range(6):
        split = "test" if i < 2 else "train"
        x = 4 + 3 * i
        blob_image(tmp_path / "images" / f"{i}.jpg", (200, 160, 120), box=(x, 8, x + 24, 40))
        rows.append(f"images/{i}.jpg,{split},64,48,hand,{x},8,{x + 24},40")
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    metrics = train_detector.main(["--datasets", "--csv", str(tmp_path / "boxes.csv"), "--epochs", "1",
                                   "--image-size", "64", "--batch", "4", "--runs-root", str(tmp_path / "runs"),
                                   "--run-name", "yolo"])
    run = tmp_path / "runs" / "gesture_detection" / "yolo"
    assert (run / "yolo_data" / "labels" / "train" / "2.txt").read_text().startswith("0 ")
    assert set(metrics["test"]["boxes"]) >= {"map50", "recall_iou50"} and metrics["test"]["boxes"]["n_boxes"] == 2
    assert json.loads((run / "metrics.json").read_text())["weights"].endswith(".pt")


@pytest.mark.real_data
def test_real_box_csvs_have_the_documented_counts():
    from gesture_detection.data import class_names_of, read_box_csv

    hands = read_box_csv(shared_data_path("gesture_detection", "hands_dataset_subhih", "labels.csv"))
    linto = read_box_csv(shared_data_path("gesture_detection", "linto_multi_hand_gesture", "labels.csv"))
    assert (len(hands), sum(len(a.boxes) for a in hands)) == (1557, 1730)
    assert (len(linto), sum(len(a.boxes) for a in linto)) == (794, 881)
    assert class_names_of(hands) == [f"{n}-hand" for n in range(6)] and len(class_names_of(linto)) == 10
    assert sum(a.split == "test" for a in hands) == 312 and all(a.path.is_file() for a in linto[:20])


@pytest.mark.real_data
@pytest.mark.slow
def test_landmark_path_on_real_linto_photos(tmp_path):
    """MediaPipe + the landmark classifier fitted on 8 photos per class gets >= 90% of 30 held-out test photos."""
    from gesture_detection.data import class_names_of, load_image, read_box_csv
    from gesture_detection.detect import MediaPipeHands
    from gesture_detection.landmarks import cached_hand_detections, labelled_hands
    from gesture_detection.model import LandmarkClassifier
    from gesture_detection.pipeline import GesturePipeline

    annotations = read_box_csv(shared_data_path("gesture_detection", "linto_multi_hand_gesture", "labels.csv"))
    classes = class_names_of(annotations)
    train = [a for c in classes for a in [a for a in annotations if a.split == "train" and a.label == c][:8]]
    test = [a for c in classes for a in [a for a in annotations if a.split == "test" and a.label == c][:3]]
    hands = MediaPipeHands()
    found, _ = cached_hand_detections([a.path for a in train], hands, cache_root=tmp_path)
    classifier = LandmarkClassifier(classes).fit(*labelled_hands(train, found, classes))
    pipeline = GesturePipeline("landmark", classifier, hands=hands, threshold=0.0)
    answers = [pipeline.predict(load_image(a.path)).gesture for a in test]
    accuracy = np.mean([answer in a.gestures for answer, a in zip(answers, test)])
    assert accuracy >= 0.9, list(zip(answers, [a.label for a in test]))


@pytest.mark.real_data
def test_fingers_mode_counts_real_linto_hands_without_training(tmp_path):
    """No model: the extended fingers of 5 LinTO test photos each of fist, index up, V and open palm."""
    from gesture_detection.data import FINGER_COUNT_CLASSES, load_image, read_box_csv
    from gesture_detection.detect import MediaPipeHands
    from gesture_detection.model import FingerCounter
    from gesture_detection.pipeline import GesturePipeline
    from gesture_detection.predict import finger_classes

    annotations = read_box_csv(shared_data_path("gesture_detection", "linto_multi_hand_gesture", "labels.csv"))
    counts = FINGER_COUNT_CLASSES["linto"]
    photos = [a for name in counts.values() for a in [a for a in annotations if a.split == "test" and a.label == name][:5]]
    pipeline = GesturePipeline("fingers", FingerCounter(finger_classes(["linto"])), hands=MediaPipeHands(), threshold=0.0)
    answers = [pipeline.predict(load_image(a.path)).gesture for a in photos]
    assert np.mean([answer in a.gestures for answer, a in zip(answers, photos)]) >= 0.9, \
        list(zip(answers, [a.label for a in photos]))
    assert finger_classes(["0=fist", "5=palm"]) == {0: "fist", 5: "palm"}
    with pytest.raises(ValueError, match="not COUNT=NAME"):
        finger_classes(["fist"])


def _photos(name, per_class, classes=None, split="test"):
    """The first `per_class` photos of each class (all of the set's finger-count classes by default)."""
    from gesture_detection.data import FINGER_COUNT_CLASSES, SHARED_SETS, read_box_csv

    annotations = read_box_csv(shared_data_path("gesture_detection", SHARED_SETS[name], "labels.csv"))
    classes = classes or list(FINGER_COUNT_CLASSES[name].values())
    return [a for label in classes for a in [a for a in annotations if a.split == split and a.label == label][:per_class]]


@pytest.mark.real_data
def test_fingers_mode_counts_real_photos_of_both_sets_palm_or_back_and_the_open_thumb():
    """The built-in counter on real test photos of both sets: HandsDataset's 0 to 5 (threes and fours
    shown by the palm or the back of the hand) and LinTO's fist, index, V and open palm; an open palm's
    thumb is counted (the earlier bend rule read many fives as 4: one of the six here is still missed
    or unsure), and each answer has a probability."""
    from gesture_detection.data import FINGER_COUNT_CLASSES, load_image
    from gesture_detection.detect import MediaPipeHands
    from gesture_detection.model import FingerCounter
    from gesture_detection.pipeline import GesturePipeline

    hands = MediaPipeHands()
    for name, per_class in (("hands_dataset", 6), ("linto", 5)):
        photos = _photos(name, per_class)
        pipeline = GesturePipeline("fingers", FingerCounter(FINGER_COUNT_CLASSES[name]), hands=hands, threshold=0.5)
        predictions = [pipeline.predict(load_image(a.path)) for a in photos]
        right = [p.gesture in a.gestures for p, a in zip(predictions, photos)]
        assert np.mean(right) >= 0.9, [(p.gesture, a.label) for p, a in zip(predictions, photos)]
        fives = [p for p, a in zip(predictions, photos) if a.gestures == {FINGER_COUNT_CLASSES[name][5]}]
        assert sum(p.gesture == FINGER_COUNT_CLASSES[name][5] and p.probability > 0.5 for p in fives) >= len(fives) - 1, \
            [(p.gesture, p.probability) for p in fives]


@pytest.mark.real_data
def test_finger_counter_fitted_on_one_set_counts_the_other():
    """`FingerCounter.fit` on LinTO hands whose class says what each finger shows (data.FINGER_STATES)
    sets thresholds near the built-in ones, and that counter counts HandsDataset photos it never saw."""
    from gesture_detection.data import FINGER_COUNT_CLASSES, FINGER_STATES, load_image
    from gesture_detection.detect import MediaPipeHands
    from gesture_detection.landmarks import labelled_hands
    from gesture_detection.model import FingerCounter, expected_calibration_error

    hands = MediaPipeHands()
    fit_photos = _photos("linto", 8, list(FINGER_STATES["linto"]), split="train")
    found, labels = labelled_hands(fit_photos, [hands(load_image(a.path)) for a in fit_photos], list(FINGER_STATES["linto"]))
    counter = FingerCounter(FINGER_COUNT_CLASSES["hands_dataset"])
    counter.fit(found, *zip(*[FINGER_STATES["linto"][label] for label in labels]))
    assert np.allclose(counter.thresholds, FingerCounter.THRESHOLDS, atol=0.15)
    with pytest.raises(ValueError, match="known both extended and folded"):
        FingerCounter(FINGER_COUNT_CLASSES["linto"]).fit(found[:2], [0, 0], [(0, 0, 0, 0, 0)] * 2)
    photos = _photos("hands_dataset", 5)
    test_hands, truth = labelled_hands(photos, [hands(load_image(a.path)) for a in photos], counter.labels)
    probabilities = counter.probabilities(counter.hand_features(test_hands))
    answers = np.array(counter.labels)[probabilities.argmax(axis=1)]
    assert np.mean(answers == np.array(truth)) >= 0.85
    assert expected_calibration_error(probabilities.max(axis=1), answers == np.array(truth)) < 0.2


@pytest.mark.real_data
def test_landmark_training_calibrates_on_other_sessions_and_the_idle_second_hand_does_not_answer(tmp_path):
    """LinTO's train split (two recording days): the temperature and threshold come from models fitted on
    the other day (the validation hands, same days, gave T = 0.07: every answer p ~ 1), the model has a
    no_gesture class, and on a held-out test photo of a thumb up ("ok") with the other hand resting on the
    head, the thumb answers and the resting hand is no_gesture (the earlier model: `hello 0.66`)."""
    from gesture_detection import train
    from gesture_detection.data import NO_GESTURE, load_image
    from gesture_detection.detect import RescuedHands
    from gesture_detection.model import LandmarkClassifier
    from gesture_detection.pipeline import GesturePipeline

    metrics = train.main(["--classifier", "landmark", "--dataset", "linto", "--runs-root", str(tmp_path), "--run-name", "lm"])
    assert metrics["calibration_fit"] == "out-of-session (2 folds of 2 sessions)" and metrics["train_sessions"] == 2
    assert 0.5 < metrics["temperature"] < 2.0 and 0.3 <= metrics["threshold"] <= 0.95
    model = LandmarkClassifier.load(tmp_path / "gesture_detection" / "lm" / "landmark.joblib")
    assert model.labels[-1] == NO_GESTURE and model.threshold == metrics["threshold"]
    photo = shared_data_path("gesture_detection", "linto_multi_hand_gesture", "images", "test",
                             "ok.34d433b6-1ae1-11ec-b478-84ef18797359.jpg")
    prediction = GesturePipeline("landmark", model, hands=RescuedHands(), threshold=None).predict(load_image(photo))
    assert prediction.gesture == "ok" and len(prediction.boxes) == 2
    assert sorted(b.label for b in prediction.boxes) == [NO_GESTURE, "ok"]


@pytest.mark.real_data
def test_mediapipe_on_a_bordered_photo_gives_landmarks_in_the_photo_pixels():
    """The rescue's border is taken off again: the same hand, the same box and landmarks (within a few px)."""
    from gesture_detection.data import load_image, read_box_csv
    from gesture_detection.detect import MediaPipeHands

    annotations = read_box_csv(shared_data_path("gesture_detection", "linto_multi_hand_gesture", "labels.csv"))
    photo = next(a for a in annotations if a.split == "test" and a.label == "hello" and len(a.boxes) == 1)
    rgb = load_image(photo.path)
    (plain,), (bordered,) = MediaPipeHands(max_hands=1)(rgb), MediaPipeHands(max_hands=1, pad=0.25)(rgb)
    np.testing.assert_allclose(bordered.box, plain.box, atol=6)
    np.testing.assert_allclose(bordered.landmarks[:, :2], plain.landmarks[:, :2], atol=6)
    assert bordered.handedness == plain.handedness
    truth = photo.boxes[0]
    centre = (bordered.box[:2] + bordered.box[2:]) / 2
    assert truth.xmin <= centre[0] <= truth.xmax and truth.ymin <= centre[1] <= truth.ymax
