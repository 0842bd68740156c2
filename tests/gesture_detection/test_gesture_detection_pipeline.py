"""Box post-processing, the hand choice and threshold, detector metrics, the landmark classifier, the three pipeline paths with stub detectors, and the output CSVs."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from gesture_detection.data import NO_GESTURE
from gesture_detection.detect import (Detection, RescuedHands, TiledHands, box_iou, detection_scores, expand_box,
                                      postprocess)
from gesture_detection.model import LandmarkClassifier, NearestHands
from gesture_detection.pipeline import MCS_CLASSES, GesturePipeline, check_mcs_labels, decide
from gesture_detection.predict import write_predictions
from gesture_detection.synthetic import GESTURES, synthetic_detections

LABELS = list(GESTURES)  # stop, victory, mute, ok, like, dislike


def det(box, score=0.9):
    return Detection(np.array(box, dtype=np.float32), score)


def test_expand_clip_and_keep_top_or_all():
    np.testing.assert_allclose(expand_box(np.array([40, 40, 60, 80]), 1.5, 100, 100), [35, 30, 65, 90])
    np.testing.assert_allclose(expand_box(np.array([40, 40, 60, 80]), 1.0, 100, 100, square=True), [30, 40, 70, 80])
    np.testing.assert_allclose(expand_box(np.array([0, 0, 20, 20]), 2.0, 100, 100), [0, 0, 30, 30])  # clipped
    detections = [det([10, 10, 20, 20], 0.3), det([50, 50, 90, 95], 0.8), det([99.5, 5, 130, 9], 0.5)]
    kept = postprocess(detections, 100, 100, keep="all", expand=1.0)
    assert [d.score for d in kept] == [0.8, 0.3]  # sorted; the box outside the image is gone
    (top,) = postprocess(detections, 100, 100, keep="top", expand=1.2)
    np.testing.assert_allclose(top.box, [46, 45.5, 94, 99.5])
    with pytest.raises(ValueError, match="keep"):
        postprocess(detections, 100, 100, keep="best")


def test_decision_takes_the_max_over_boxes_and_applies_the_threshold():
    labels = ["like", "ok", "stop"]
    boxes = np.array([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    gesture, probability, per_class = decide(boxes, labels, threshold=0.5)
    assert gesture == "stop" and probability == pytest.approx(0.8)
    np.testing.assert_allclose(per_class, [0.6, 0.3, 0.8])
    gesture, probability, _ = decide(boxes, labels, threshold=0.9)
    assert gesture == NO_GESTURE and probability == pytest.approx(0.2)
    assert decide(np.zeros((0, 3)), labels, 0.5)[:2] == (NO_GESTURE, 1.0)


def test_familiarity_weights_rank_the_boxes_but_the_threshold_sees_the_plain_probability():
    labels = ["no", "ok"]
    sure_of_both = np.array([[1.0, 0.0], [0.0, 1.0]])  # a hand on the head (box 0) and a thumb up (box 1)
    assert decide(sure_of_both, labels, 0.5)[0] == "no"  # the plain rule: the first class of the tie
    assert decide(sure_of_both, labels, 0.5, box_weights=[0.3, 0.9])[:2] == ("ok", 1.0)
    # the weighted winner answers with its own probability, and the threshold applies to that
    gesture, probability, _ = decide(np.array([[0.9, 0.1], [0.2, 0.6]]), labels, 0.7, box_weights=[0.1, 0.9])
    assert gesture == NO_GESTURE and probability == pytest.approx(0.4)


def test_nearest_hands_matches_scikit_learn_and_knows_unfamiliar_hands():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 63)).astype(np.float32), rng.integers(0, 4, 300)
    queries = rng.normal(size=(40, 63)).astype(np.float32)
    reference = make_pipeline(StandardScaler(), KNeighborsClassifier(3, weights="distance")).fit(x, y)
    knn = NearestHands(3).fit(x, y)
    np.testing.assert_allclose(knn.predict_proba(queries), reference.predict_proba(queries), atol=1e-5)
    near, far = knn.familiarity(x[:5] + 0.01), knn.familiarity(queries[:5] * 40)
    assert near.min() > 0.95 and far.max() < 0.5  # 40x off: beyond the prior scale (8 typical distances)


def test_rescued_hands_run_only_where_the_primary_finds_nothing(tmp_path):
    from core.io import write_image
    from gesture_detection.landmarks import cached_hand_detections

    class Stub:
        def __init__(self, name, answers):
            self.config, self.answers, self.calls = {"stub": name}, answers, 0

        def __call__(self, rgb):
            self.calls += 1
            return [det([1, 1, 9, 9], 0.2)] if self.answers(rgb) else []

    primary = Stub("primary", lambda rgb: rgb[0, 0, 0] == 255)  # finds a hand in white images only
    low = Stub("low", lambda rgb: False)
    padded = Stub("padded", lambda rgb: True)
    hands = RescuedHands(primary, [low, padded])
    white, black = np.full((20, 20, 3), 255, dtype=np.uint8), np.zeros((20, 20, 3), dtype=np.uint8)
    assert hands(white)[0].source == "" and hands.last_rescue is None and low.calls == 0
    found = hands(black)
    assert found[0].source == "mediapipe_rescue" and hands.last_rescue == 1 and (low.calls, padded.calls) == (1, 1)
    paths = [write_image(tmp_path / "white.png", white), write_image(tmp_path / "black.png", black)]
    for _ in range(2):  # the second pass comes from the caches: no detector runs again
        cached, _ = cached_hand_detections(paths, hands, cache_root=tmp_path / "cache")
        assert [d.source for d in cached[0]] == [""] and [d.source for d in cached[1]] == ["mediapipe_rescue"]
        assert (primary.calls, low.calls, padded.calls) == (4, 2, 2)


def test_tiled_hands_find_a_small_hand_and_give_it_back_in_image_pixels():
    """A stub palm detector that sees the white square only when it is at least 30 px wide: in the
    400 x 300 photo it is 24 px, in a tile enlarged 1.5 times 36 px; two tiles hold it, one hand comes back."""

    class SquareFinder:
        config = {"stub": "square"}

        def __call__(self, rgb):
            ys, xs = np.nonzero(rgb[:, :, 0] == 255)
            if len(xs) == 0 or xs.max() - xs.min() + 1 < 30:
                return []
            points = np.zeros((21, 3), dtype=np.float32)
            points[:, 0], points[:, 1] = xs.min(), ys.min()
            points[1:, 0], points[1:, 1] = xs.max() + 1, ys.max() + 1
            return [Detection(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32), 0.9, points)]

    image = np.zeros((300, 400, 3), dtype=np.uint8)
    image[138:162, 188:212] = 255  # in the middle: inside all four tiles
    assert SquareFinder()(image) == []
    tiled = TiledHands(SquareFinder())
    (found,) = tiled(image)
    np.testing.assert_allclose(found.box, [188, 138, 212, 162], atol=1)
    np.testing.assert_allclose(found.landmarks[0, :2], [188, 138], atol=1)
    assert tiled.config["tiles"] == 2 and tiled.config["stub"] == "square"


def test_box_style_is_fitted_per_axis_and_applied_with_clipping():
    from pathlib import Path

    from gesture_detection.data import HandBox, ImageAnnotation
    from gesture_detection.landmarks import BoxStyle, fit_box_style

    # landmark boxes 40 x 50; the annotations draw them twice as wide, 1.5 times as high, 10 px lower
    found = [[det([100 + k, 100, 140 + k, 150])] for k in range(3)]
    truths = [ImageAnnotation(Path(f"{k}.jpg"), 400, 300, [HandBox("ok", 80 + k, 97.5, 160 + k, 172.5)]) for k in range(3)]
    style = fit_box_style(found, truths)
    assert (style.width, style.height, style.shift_x, style.shift_y) == pytest.approx((2.0, 1.5, 0.0, 0.2))
    np.testing.assert_allclose(style.apply(np.array([100, 100, 140, 150]), 400, 300), [80, 97.5, 160, 172.5])
    np.testing.assert_allclose(style.apply(np.array([0, 0, 40, 50]), 400, 300), [0, 0, 60, 72.5])  # clipped
    assert fit_box_style([[]], truths[:1]) == BoxStyle()


def test_detection_scores():
    truths = [np.array([[0, 0, 10, 10]]), np.array([[20, 20, 40, 40], [50, 50, 60, 60]])]
    perfect = [[det([0, 0, 10, 10])], [det([20, 20, 40, 40]), det([50, 50, 60, 60])]]
    assert detection_scores(perfect, truths).map50 == pytest.approx(1.0)
    # one hit, one duplicate of the same hand (a false positive), one miss
    partial = [[det([0, 0, 10, 10], 0.9), det([1, 1, 10, 10], 0.8)], [det([200, 200, 210, 210], 0.1)]]
    scores = detection_scores(partial, truths)
    assert scores.recall_iou50 == pytest.approx(1 / 3) and scores.map50 == pytest.approx(1 / 3)
    assert box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10]))[0, 0] == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def landmark_classifier():
    train, labels = synthetic_detections(40, seed=0)
    validation, validation_labels = synthetic_detections(10, seed=2)
    return LandmarkClassifier(LABELS, "mlp", oriented=True).fit(train, labels, validation, validation_labels)


def test_landmark_classifier_learns_generated_hands_and_round_trips(landmark_classifier, tmp_path):
    test, test_labels = synthetic_detections(15, seed=1)
    features = landmark_classifier.hand_features(test)
    predicted = np.array(LABELS)[landmark_classifier.probabilities(features).argmax(axis=1)]
    assert np.mean(predicted == np.array(test_labels)) >= 0.9
    again = LandmarkClassifier.load(landmark_classifier.save(tmp_path / "landmark.joblib"))
    np.testing.assert_allclose(again.probabilities(features), landmark_classifier.probabilities(features))
    knn = LandmarkClassifier(LABELS, "knn", oriented=True, augmented_copies=0).fit(test, test_labels)
    assert knn.probabilities(features).argmax(axis=1).tolist() == [LABELS.index(g) for g in test_labels]
    without_victory = [i for i, g in enumerate(test_labels) if g != "victory"]
    with pytest.raises(ValueError, match="classes with no training hand: victory"):
        LandmarkClassifier(LABELS).fit([test[i] for i in without_victory], [test_labels[i] for i in without_victory])


class StubCrop:
    """A crop classifier that always says `ok` with 0.7, and records the crop sizes it saw."""

    labels = LABELS
    mediapipe_box_scale = 1.0

    def __init__(self):
        self.seen = []

    def probabilities(self, crops):
        self.seen += [c.shape[:2] for c in crops]
        out = np.full((len(crops), len(LABELS)), 0.06, dtype=np.float32)
        out[:, LABELS.index("ok")] = 0.7
        return out


def test_pipeline_paths_and_fallbacks(landmark_classifier):
    image = np.zeros((300, 400, 3), dtype=np.uint8)
    hands, _ = synthetic_detections(1, seed=3, gestures=("victory",))
    yolo_box = [det([100, 100, 160, 200], 0.6)]
    crop_model = StubCrop()

    landmark = GesturePipeline("landmark", landmark_classifier, hands=lambda rgb: [])
    assert landmark.predict(image, hands).gesture == "victory"
    assert landmark.predict(image).gesture == NO_GESTURE  # no hand found
    assert GesturePipeline("landmark", landmark_classifier, threshold=1.01).predict(image, hands).gesture == NO_GESTURE

    combined = GesturePipeline("combined", landmark_classifier, crop_model, hands=lambda rgb: [], yolo=lambda rgb: yolo_box)
    assert combined.predict(image, hands).gesture == "victory"  # MediaPipe found the hand: landmarks
    fallback = combined.predict(image)  # no MediaPipe hand: crop CNN on the YOLO box
    assert (fallback.gesture, fallback.boxes[0].source) == ("ok", "yolo")
    assert crop_model.seen[-1] == (130, 130)  # the 60x100 box expanded by 1.3 to a square

    # MediaPipe finds the hand only inside the enlarged YOLO crop: its landmarks decide
    second_look = GesturePipeline("combined", landmark_classifier, StubCrop(), yolo=lambda rgb: yolo_box,
                                  hands=lambda rgb: hands if rgb.shape[:2] == (256, 256) else [], second_look=True)
    found_again = second_look.predict(image)
    assert (found_again.gesture, found_again.boxes[0].source) == ("victory", "yolo+mediapipe")

    assert set(fallback.stage_milliseconds) == {"mediapipe", "yolo", "crop_cnn"}
    assert set(combined.predict(image, hands).stage_milliseconds) == {"landmark"}  # detections given

    whole = GesturePipeline("crop_cnn", crop_model=crop_model, hands=lambda rgb: [], yolo=lambda rgb: [])
    prediction = whole.predict(image)
    assert prediction.boxes[0].source == "image" and crop_model.seen[-1] == (300, 400)
    with pytest.raises(ValueError, match="needs a crop classifier"):
        GesturePipeline("combined", landmark_classifier)


def test_csv_and_mcs_outputs(landmark_classifier, tmp_path):
    pipeline = GesturePipeline("landmark", landmark_classifier, hands=lambda rgb: [])
    hands, _ = synthetic_detections(1, seed=4, gestures=("like",))
    image = np.zeros((300, 400, 3), dtype=np.uint8)
    rows = [("a.jpg", pipeline.predict(image, hands), ""), ("b.jpg", pipeline.predict(image), ""),
            ("c.jpg", None, "cannot decode image")]
    count, errors = write_predictions(rows, tmp_path / "predictions.csv", "csv")
    assert count == 2 and errors == [("c.jpg", "cannot decode image")]
    table = list(csv.DictReader(open(tmp_path / "predictions.csv")))
    assert list(table[0]) == ["path", "gesture", "probability"]
    assert [(r["path"], r["gesture"]) for r in table] == [("a.jpg", "like"), ("b.jpg", NO_GESTURE)]
    assert "cannot decode" in (tmp_path / "predictions_errors.csv").read_text()

    write_predictions(rows, tmp_path / "answers.csv", "mcs")
    answers = list(csv.DictReader(open(tmp_path / "answers.csv")))
    assert list(answers[0]) == ["no_gesture", "stop", "victory", "mute", "ok", "like", "dislike", "frame_path"]
    assert max(MCS_CLASSES, key=lambda c: float(answers[0][c])) == "like"
    assert float(answers[1]["no_gesture"]) == 1.0 and answers[1]["frame_path"] == "b.jpg"
    with pytest.raises(ValueError, match="lacks mute"):
        check_mcs_labels(["stop", "victory", "ok", "like", "dislike"])


def test_landmark_edges_draw_a_box_that_reaches_down_the_forearm_whichever_way_the_hand_points():
    from pathlib import Path

    from gesture_detection.data import HandBox, ImageAnnotation
    from gesture_detection.landmarks import MIN_HANDS_FOR_EDGES, fit_box_style
    from gesture_detection.synthetic import EXTENDED, posed_hand

    # an annotation style that boxes the hand and 1.5 palm sizes of forearm beyond the wrist
    rng = np.random.default_rng(0)

    def annotated_hand(k: int):
        points, _ = posed_hand({finger: EXTENDED for finger in ("thumb", "index", "middle", "ring", "pinky")},
                               rng.uniform(-100, 100), rng, size=40.0, centre=(400.0, 300.0))
        palm = points[9, :2] - points[0, :2]
        forearm = points[0, :2] - 1.5 * palm
        corners = np.vstack([points[:, :2], forearm])
        truth = HandBox("hand", *corners.min(axis=0), *corners.max(axis=0))
        box = np.r_[points[:, :2].min(axis=0), points[:, :2].max(axis=0)]
        return [Detection(box.astype(np.float32), 0.9, points)], ImageAnnotation(Path(f"{k}.jpg"), 800, 600, [truth])

    fitted = [annotated_hand(k) for k in range(3 * MIN_HANDS_FOR_EDGES)]
    style = fit_box_style([found for found, _ in fitted], [a for _, a in fitted])
    assert style.edges is not None and np.asarray(style.edges).shape == (9, 4)
    assert fit_box_style([found for found, _ in fitted[:5]], [a for _, a in fitted[:5]]).edges is None  # too few

    new = [annotated_hand(k) for k in range(100)]
    truths = [a.boxes[0].as_array()[None] for _, a in new]
    edge_boxes = np.stack([style.apply(found[0].box, 800, 600, found[0].landmarks) for found, _ in new])
    axis_boxes = np.stack([style.apply(found[0].box, 800, 600) for found, _ in new])
    edge_iou = np.array([box_iou(b[None], t)[0, 0] for b, t in zip(edge_boxes, truths)])
    axis_iou = np.array([box_iou(b[None], t)[0, 0] for b, t in zip(axis_boxes, truths)])
    # at the benchmark's IoU 0.5 the edges find nearly every such box, the per-axis style misses many
    assert (edge_iou >= 0.5).mean() >= 0.97 and (axis_iou >= 0.5).mean() <= 0.8
    assert edge_iou.mean() > axis_iou.mean() + 0.2
