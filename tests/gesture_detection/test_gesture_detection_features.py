"""Hand features (invariances, the orientation block and mirroring), calibration, the `fingers` mode
and the choice of the hand that answers."""
from __future__ import annotations

import numpy as np
import pytest

from gesture_detection.data import NO_GESTURE
from gesture_detection.detect import Detection
from gesture_detection.features import augment_hands, hand_features, n_features
from gesture_detection.model import (FingerCounter, LandmarkClassifier, TemperatureScaling,
                                     expected_calibration_error)
from gesture_detection.pipeline import GesturePipeline, decide
from gesture_detection.synthetic import EXTENDED, FINGERS, FOLDED, hand_landmarks, posed_hand


def _rotate_xy(points: np.ndarray, degrees: float, about: np.ndarray) -> np.ndarray:
    r = np.radians(degrees)
    rotation = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    out = points.astype(np.float64).copy()
    out[:, :2] = (out[:, :2] - about) @ rotation.T + about
    return out


@pytest.fixture
def hand():
    """A generated hand showing victory: pixel landmarks, and world landmarks in metres (its own shape)."""
    pixels, _ = hand_landmarks("victory", np.random.default_rng(0))
    world = (pixels - pixels.mean(axis=0)) * 0.001
    return pixels.astype(np.float64), world.astype(np.float64)


def test_features_ignore_position_scale_rotation_stretch_and_mirror(hand):
    pixels, world = hand
    base = hand_features(pixels, world)
    assert base.shape == (1, n_features())
    centre = pixels[0, :2]
    turned = _rotate_xy(pixels, 70, centre)
    turned_world = _rotate_xy(world, 70, np.zeros(2))  # the world frame turns with the camera too
    np.testing.assert_allclose(hand_features(turned, turned_world), base, atol=1e-4)
    moved = pixels * 2.5 + np.array([40.0, -10.0, 0.0])
    np.testing.assert_allclose(hand_features(moved, world), base, atol=1e-4)
    # the photo resized to another aspect ratio: x and y pixels scale differently, the hand itself does not
    stretched = pixels * np.array([1.6, 0.7, 1.6])
    np.testing.assert_allclose(hand_features(stretched, world), base, atol=1e-4)
    mirrored, mirrored_world = pixels.copy(), world.copy()
    mirrored[:, 0], mirrored_world[:, 0] = 400 - pixels[:, 0], -world[:, 0]
    np.testing.assert_allclose(hand_features(mirrored, mirrored_world), base, atol=1e-4)
    # without world landmarks the pixel x, y, z stand in: still free of position, scale and rotation
    np.testing.assert_allclose(hand_features(_rotate_xy(moved, -40, moved[0, :2])), hand_features(pixels), atol=1e-4)
    # and the features do see the gesture
    other, _ = hand_landmarks("stop", np.random.default_rng(0))
    assert np.abs(hand_features(other) - hand_features(pixels)).max() > 0.3


def test_orientation_block_keeps_direction_and_augmentation_changes_but_keeps_the_hand(hand):
    pixels, world = hand
    up = hand_features(pixels, world, oriented=True)
    down = hand_features(_rotate_xy(pixels, 180, pixels[0, :2]), world, oriented=True)
    assert up.shape == (1, n_features(oriented=True))
    np.testing.assert_allclose(up[:, :n_features()], down[:, :n_features()], atol=1e-4)
    np.testing.assert_allclose(up[:, n_features():], -down[:, n_features():], atol=1e-4)
    rng = np.random.default_rng(1)
    copies, copies_world = augment_hands(np.repeat(pixels[None], 4, 0), np.repeat(world[None], 4, 0), rng,
                                         mirror=np.array([False, True, False, True]))
    assert copies.shape == (4, 21, 3) and not np.allclose(copies[0], pixels)
    changed = hand_features(copies, copies_world)
    assert np.abs(changed - hand_features(pixels, world)).mean() < 0.1  # still the same victory hand


def _pointing_hand(direction: str, handedness: str, rng) -> Detection:
    """An index finger pointing `direction` (left or right in the image), by a `handedness` hand."""
    bends = {name: EXTENDED if name == "index" else FOLDED for name in FINGERS}
    points, drawn = posed_hand(bends, 0.0, rng, jitter=0.5)
    if drawn != handedness:  # posed_hand mirrors at random: undo it, then turn the hand
        points[:, 0] = 2 * points[0, 0] - points[:, 0]
    rotation = rng.normal(90 if direction == "right" else -90, 10)
    points = _rotate_xy(points, rotation, points[0, :2]).astype(np.float32)
    box = np.r_[points[:, :2].min(axis=0), points[:, :2].max(axis=0)]
    return Detection(box, 0.9, points, handedness)


def test_a_left_hand_pointing_left_is_not_mirrored_into_pointing_right():
    rng = np.random.default_rng(0)
    labels = ["point_left", "point_right"]
    train = [_pointing_hand(d, "Right", rng) for d in ("left", "right") for _ in range(30)]
    targets = [f"point_{d}" for d in ("left", "right") for _ in range(30)]
    classifier = LandmarkClassifier(labels, oriented=True, asymmetric=labels, augmented_copies=3).fit(train, targets)
    for direction in ("left", "right"):
        left_hands = [_pointing_hand(direction, "Left", rng) for _ in range(10)]
        answers = np.array(labels)[classifier.probabilities(classifier.hand_features(left_hands)).argmax(axis=1)]
        assert (answers == f"point_{direction}").all(), (direction, answers)
    with pytest.raises(ValueError, match="asymmetric classes not in the class list: wave"):
        LandmarkClassifier(labels, asymmetric=["wave"])


def test_temperature_scaling_fixes_an_over_confident_model():
    rng = np.random.default_rng(0)
    n, classes = 2000, 4
    truth = rng.integers(0, classes, n)
    # a model right 70% of the time that always says 0.97 for its answer
    answer = np.where(rng.random(n) < 0.7, truth, (truth + rng.integers(1, classes, n)) % classes)
    probabilities = np.full((n, classes), 0.01)
    probabilities[np.arange(n), answer] = 0.97
    correct = answer == truth
    assert expected_calibration_error(probabilities.max(axis=1), correct) == pytest.approx(0.27, abs=0.03)
    calibration = TemperatureScaling().fit(probabilities[:1000], truth[:1000])
    calibrated = calibration(probabilities[1000:])
    assert calibration.temperature > 1
    assert expected_calibration_error(calibrated.max(axis=1), correct[1000:]) < 0.03
    assert (calibrated.argmax(axis=1) == answer[1000:]).all()  # the answers stay the same
    assert expected_calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert expected_calibration_error([0.9] * 10, [True] * 5 + [False] * 5) == pytest.approx(0.4)


FINGER_PATTERNS = {0: (), 1: ("index",), 2: ("index", "middle"), 3: ("thumb", "index", "middle"),
                   4: ("index", "middle", "ring", "pinky"), 5: tuple(FINGERS)}


def test_fingers_mode_counts_generated_hands_with_known_counts():
    rng = np.random.default_rng(0)
    counter = FingerCounter({count: f"{count}-hand" for count in range(6)})
    hands, truth = [], []
    for count, extended in FINGER_PATTERNS.items():
        for _ in range(20):
            bends = {name: EXTENDED if name in extended else FOLDED for name in FINGERS}
            points, handedness = posed_hand(bends, rng.uniform(0, 360), rng)
            hands.append(Detection(np.r_[points[:, :2].min(0), points[:, :2].max(0)], 0.9, points, handedness))
            truth.append(f"{count}-hand")
    answers = np.array(counter.labels)[counter.probabilities(counter.hand_features(hands)).argmax(axis=1)]
    assert np.mean(answers == np.array(truth)) >= 0.95
    # a set naming only some counts: a three-finger hand finds no class and, with a threshold, no gesture
    some = FingerCounter({0: "yes", 1: "handup", 2: "vectory", 5: "hello"})
    three = [h for h, t in zip(hands, truth) if t == "3-hand"]
    pipeline = GesturePipeline("fingers", some, threshold=0.5, hands=lambda rgb: [])
    image = np.zeros((300, 400, 3), dtype=np.uint8)
    assert all(pipeline.predict(image, [h]).gesture == NO_GESTURE for h in three)
    two = [h for h, t in zip(hands, truth) if t == "2-hand"]
    assert pipeline.predict(image, two[:1]).gesture == "vectory"
    with pytest.raises(ValueError, match="needs a model.FingerCounter"):
        GesturePipeline("fingers", LandmarkClassifier(["a", "b"]))


def test_the_hand_showing_a_gesture_answers_not_the_surely_idle_one():
    labels = [NO_GESTURE, "like", "stop"]
    idle = [0.9, 0.05, 0.05]  # the resting second hand: surely no gesture
    showing = [0.35, 0.6, 0.05]
    gesture, probability, _ = decide(np.array([idle, showing]), labels, threshold=0.5)
    assert (gesture, probability) == ("like", pytest.approx(0.6))
    assert decide(np.array([showing, idle]), labels, threshold=0.5)[0] == "like"  # order does not matter
    assert decide(np.array([idle, idle]), labels, threshold=0.5)[:2] == (NO_GESTURE, pytest.approx(0.9))
    assert decide(np.array([idle, showing]), labels, threshold=0.7)[0] == NO_GESTURE  # below the threshold


@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_numpy_logistic_model_gives_the_pipelines_probabilities(n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from gesture_detection.model import LinearSoftmax

    rng = np.random.default_rng(0)
    targets = rng.integers(0, n_classes, 300)
    features = rng.normal(size=(300, 6)) * [1, 10, 0.1, 1, 5, 2] + targets[:, None] * [1, 0, 2, 0, 0, 1]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(features, targets)
    queries = rng.normal(size=(50, 6)) * 3
    assert np.allclose(LinearSoftmax.from_pipeline(pipeline).predict_proba(queries), pipeline.predict_proba(queries), atol=1e-12)


def _generated(gestures, per_gesture, rng):
    """Generated hands (pixel landmarks also standing in as world landmarks) and their gestures."""
    hands, truth = [], []
    for gesture in gestures:
        for _ in range(per_gesture):
            points, _ = hand_landmarks(gesture, rng)
            hands.append(Detection(np.r_[points[:, :2].min(0), points[:, :2].max(0)], 0.9, points))
            truth.append(gesture)
    return hands, truth


def test_recording_session_is_read_from_the_real_sets_file_names():
    from gesture_detection.data import recording_session

    assert recording_session("images/train/1528664299.56_pic00003.jpg") == "1528664299.56"
    assert recording_session("ok.34d433b6-1ae1-11ec-b478-84ef18797359.jpg") == "2021-09-21"  # a time-based UUID
    assert recording_session("handup.f88e918e-a8e5-11eb-b8fc-84ef18797359.jpg") == "2021-04-29"
    assert recording_session("Hand_0000002.jpg") is None and recording_session("photo.jpg") is None
    assert recording_session("a.4f0e3c8e-1234-4abc-8def-0123456789ab.jpg") is None  # a random UUID has no time


def test_calibration_and_threshold_are_fitted_on_sessions_the_fold_models_never_saw(monkeypatch):
    """With sessions, each hand's calibration probability comes from a model fitted without its session;
    the final model is fitted on every hand; without sessions the validation hands are used."""
    rng = np.random.default_rng(0)
    hands, truth = _generated(["stop", "victory", "like"], 12, rng)
    sessions = [f"s{i % 4}" for i in range(len(hands))]
    session_of = {id(h): s for h, s in zip(hands, sessions)}
    fitted_sessions = []
    original = LandmarkClassifier._fit_model

    def recording(self, detections, targets):
        fitted_sessions.append({session_of[id(d)] for d in detections if id(d) in session_of})
        return original(self, detections, targets)

    monkeypatch.setattr(LandmarkClassifier, "_fit_model", recording)
    classifier = LandmarkClassifier(["like", "stop", "victory"], augmented_copies=1).fit(hands, truth, sessions=sessions, folds=4)
    final, folds = fitted_sessions[0], fitted_sessions[1:]
    assert len(folds) == 4 and all(len(fold) == 3 for fold in folds)  # each fold model lacks one session
    assert set().union(*({"s0", "s1", "s2", "s3"} - fold for fold in folds)) == {"s0", "s1", "s2", "s3"}
    assert final == {"s0", "s1", "s2", "s3"}
    assert classifier.calibration_fit.startswith("out-of-session") and 0.3 <= classifier.threshold <= 0.95
    plain = LandmarkClassifier(["like", "stop", "victory"], augmented_copies=1).fit(hands[:30], truth[:30], hands[30:], truth[30:])
    assert plain.calibration_fit == "validation hands"


def test_answer_threshold_is_one_half_for_calibrated_answers_and_higher_for_over_confident_wrong_ones():
    from gesture_detection.model import answer_threshold

    rng = np.random.default_rng(0)
    labels = ["a", "b"]
    confidence = rng.uniform(0.5, 1.0, 4000)
    right = rng.random(4000) < confidence  # calibrated: right as often as it says
    truth = np.where(right, 0, 1)
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    assert answer_threshold(probabilities, truth, labels) == pytest.approx(0.5, abs=0.06)
    # answers below 0.8 right only a third of the time: refusing them is better
    right = np.where(confidence < 0.8, rng.random(4000) < 0.33, True)
    assert answer_threshold(probabilities, np.where(right, 0, 1), labels) >= 0.75


def test_idle_hands_are_neither_open_nor_closed_and_make_a_no_gesture_class():
    from gesture_detection.features import finger_state_scores, idle_hands
    from gesture_detection.model import hand_landmarks as landmark_arrays

    rng = np.random.default_rng(0)
    hands, truth = _generated(["stop", "victory", "mute", "like"], 15, rng)
    pixels, world = landmark_arrays(hands)
    idle_pixels, idle_world = idle_hands(pixels, world, 40, rng)
    assert idle_pixels.shape == idle_world.shape == (40, 21, 3)
    long_fingers = finger_state_scores(idle_world)[:, 1:].mean(axis=1)
    open_scores = finger_state_scores(world[np.array(truth) == "stop"])[:, 1:].mean(axis=1)
    closed_scores = finger_state_scores(world[np.array(truth) == "like"])[:, 1:].mean(axis=1)
    assert closed_scores.max() < np.median(long_fingers) < open_scores.min()
    classifier = LandmarkClassifier(["like", "mute", "stop", "victory"], idle_hands=1.0, augmented_copies=2).fit(hands, truth)
    assert classifier.labels[-1] == NO_GESTURE
    idle = [Detection(np.zeros(4), 0.9, p, world_landmarks=w) for p, w in zip(*idle_hands(pixels, world, 20, np.random.default_rng(5)))]
    answers = np.array(classifier.labels)[classifier.probabilities(classifier.hand_features(idle)).argmax(axis=1)]
    assert np.mean(answers == NO_GESTURE) >= 0.8
    shown = classifier.probabilities(classifier.hand_features(hands)).argmax(axis=1)
    assert np.mean(np.array(classifier.labels)[shown] == np.array(truth)) >= 0.95
