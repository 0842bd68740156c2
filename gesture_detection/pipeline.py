"""Photo -> hands -> gesture, or `no_gesture`: every kept hand box is classified and the image takes
the gesture of the hand most likely to show one (`decide`); below `threshold`, or with no hand at
all, the answer is `no_gesture`.

Three paths (`mode`):
- `landmark`: MediaPipe hands -> landmark classifier. No MediaPipe hand -> no_gesture.
  MediaPipe is `detect.RescuedHands` by default: where the palm detector finds nothing at its
  usual confidence it looks again at 0.1, then on the image with a border.
- `crop_cnn`: hand boxes (MediaPipe's, else the YOLO detector's, else the whole image) -> crop CNN.
- `fingers`: MediaPipe hands -> extended fingers counted from the landmarks (`model.FingerCounter`,
  no training) -> the class named for that count.
- `combined`: the landmark classifier where MediaPipe finds a hand; where it finds none, the crop
  CNN on the YOLO boxes (or on the whole image when YOLO finds nothing or is not given). With
  `second_look`, MediaPipe first looks again inside each enlarged YOLO crop and its landmarks decide
  where it finds the hand there (off by default: it recovered none of the HandsDataset misses).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from gesture_detection.data import NO_GESTURE
from gesture_detection.detect import Detection, crop, expand_box, postprocess

MODES = ("landmark", "crop_cnn", "combined", "fingers")
MCS_CLASSES = ("no_gesture", "stop", "victory", "mute", "ok", "like", "dislike")


@dataclass
class BoxPrediction:
    box: np.ndarray
    label: str
    probability: float
    source: str  # which detector gave the box: mediapipe, yolo, image


@dataclass
class Prediction:
    gesture: str
    # of `gesture`; for no_gesture: P(no_gesture) where the classifier has that class, else 1 - the
    # answering hand's best class probability (1 with no hand)
    probability: float
    class_probabilities: dict[str, float]  # max over boxes per class
    boxes: list[BoxPrediction] = field(default_factory=list)
    milliseconds: float = 0.0
    stage_milliseconds: dict[str, float] = field(default_factory=dict)  # mediapipe, landmark, yolo, crop_cnn


def decide(box_probabilities: np.ndarray, labels: Sequence[str], threshold: float,
           box_weights: Sequence[float] | None = None) -> tuple[str, float, np.ndarray]:
    """The answer of the hand most likely to show a gesture, or no_gesture below `threshold` or with no box.

    With a `no_gesture` class among `labels` the hands are ranked by 1 - P(no_gesture): an idle second
    hand that is surely no gesture does not outvote the hand showing one. Without it, by the best
    class probability, times `box_weights` where given (the kNN's familiarity: a hand unlike every
    training hand, resting on the head say, loses to one showing a trained gesture even when the kNN
    is as sure of both). The winning hand answers with its best class and that class's own
    (unweighted) probability, to which the threshold applies. Also returns the per-class maximum."""
    box_probabilities = np.asarray(box_probabilities, dtype=np.float32).reshape(-1, len(labels))
    if len(box_probabilities) == 0:
        return NO_GESTURE, 1.0, np.zeros(len(labels), dtype=np.float32)
    per_class = box_probabilities.max(axis=0)
    if NO_GESTURE in labels:
        showing = 1.0 - box_probabilities[:, list(labels).index(NO_GESTURE)]
    else:
        showing = box_probabilities.max(axis=1)
    if box_weights is not None:
        showing = showing * np.asarray(box_weights, dtype=np.float64)
    box = int(np.argmax(showing))
    best = int(box_probabilities[box].argmax())
    probability = float(box_probabilities[box, best])
    if labels[best] == NO_GESTURE:
        return NO_GESTURE, probability, per_class
    if probability < threshold:
        return NO_GESTURE, 1.0 - probability, per_class
    return labels[best], probability, per_class


class GesturePipeline:
    def __init__(self, mode: str = "landmark", landmark=None, crop_model=None, hands=None, yolo=None,
                 threshold: float | None = 0.5, keep: str = "all", crop_expand: float = 1.3, second_look: bool = False):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
        if mode in ("landmark", "combined") and landmark is None:
            raise ValueError(f"mode {mode} needs a landmark classifier (--landmark-model)")
        if mode == "fingers" and getattr(landmark, "kind", None) != "fingers":
            raise ValueError("mode fingers needs a model.FingerCounter (--finger-classes)")
        if mode in ("crop_cnn", "combined") and crop_model is None:
            raise ValueError(f"mode {mode} needs a crop classifier (--crop-model)")
        if mode != "fingers" and landmark is not None and crop_model is not None \
                and [label for label in landmark.labels if label != NO_GESTURE] != list(crop_model.labels):
            raise ValueError(f"the landmark and crop classifiers have different classes: {landmark.labels} vs {crop_model.labels}")
        self.mode, self.landmark, self.crop_model, self.yolo = mode, landmark, crop_model, yolo
        self.labels = list((crop_model if mode == "crop_cnn" else landmark).labels)
        # None: the classifier's own threshold (chosen on held-out sessions when it was trained), else 0.5
        if threshold is None:
            threshold = getattr(crop_model if mode == "crop_cnn" else landmark, "threshold", 0.5)
        self.threshold, self.keep, self.crop_expand, self.second_look = threshold, keep, crop_expand, second_look
        self._hands = hands

    def _second_look(self, crops, boxes, probabilities: np.ndarray) -> np.ndarray:
        """MediaPipe again on each YOLO crop, enlarged: a hand too small or too blurred in the whole
        photo is often found in the crop. Where it is, its landmarks decide instead of the crop CNN."""
        import cv2

        probabilities = probabilities.copy()
        for i, (patch, (_, source)) in enumerate(zip(crops, boxes)):
            if source != "yolo" or min(patch.shape[:2]) < 8:
                continue
            side = max(patch.shape[:2])
            enlarged = cv2.resize(patch, None, fx=256 / side, fy=256 / side) if side < 256 else patch
            found = postprocess(self.hands(enlarged), enlarged.shape[1], enlarged.shape[0], keep="top")
            if found:
                probabilities[i] = self.landmark.probabilities(self.landmark.hand_features(found))[0]
                boxes[i] = (boxes[i][0], "yolo+mediapipe")
        return probabilities

    @property
    def hands(self):
        if self._hands is None:
            from gesture_detection.detect import RescuedHands

            self._hands = RescuedHands()
        return self._hands

    def predict(self, rgb: np.ndarray, mediapipe_hands: list[Detection] | None = None,
                yolo_hands: list[Detection] | None = None) -> Prediction:
        """Classify one RGB image. `mediapipe_hands` and `yolo_hands` pass detections computed before
        (the benchmark's cache); otherwise the detectors run here. The YOLO detector and the crop CNN
        run only where MediaPipe (with its rescues, `detect.RescuedHands`) finds no hand."""
        clock = _StageClock()
        height, width = rgb.shape[:2]
        if mediapipe_hands is None:
            mediapipe_hands = self.hands(rgb)
            clock.lap("mediapipe")
        hands = postprocess(mediapipe_hands, width, height, keep=self.keep)
        boxes: list[tuple[np.ndarray, str]] = []
        weights = None
        if hands and self.mode in ("landmark", "combined", "fingers"):
            features = self.landmark.hand_features(hands)
            probabilities, weights = self.landmark.probabilities_and_familiarity(features)
            boxes = [(self.landmark.box_style.apply(h.box, width, height, h.landmarks), h.source or "mediapipe") for h in hands]
            clock.lap("landmark")
        elif self.mode in ("landmark", "fingers"):
            probabilities = np.zeros((0, len(self.labels)), dtype=np.float32)
        else:
            if hands:
                scale = self.crop_model.mediapipe_box_scale
                boxes = [(expand_box(h.box, scale, width, height), h.source or "mediapipe") for h in hands]
            elif self.yolo is not None or yolo_hands is not None:
                found = yolo_hands if yolo_hands is not None else self.yolo(rgb)
                boxes = [(d.box, "yolo") for d in postprocess(found, width, height, keep=self.keep)]
                clock.lap("yolo")
            if not boxes:
                boxes = [(np.array([0, 0, width, height], dtype=np.float32), "image")]
            crops = [crop(rgb, expand_box(b, self.crop_expand, width, height, square=True)) if source != "image"
                     else rgb for b, source in boxes]
            probabilities = self.crop_model.probabilities(crops)
            if list(self.crop_model.labels) != self.labels:  # a landmark classifier's extra no_gesture column
                columns = [self.labels.index(label) for label in self.crop_model.labels]
                padded = np.zeros((len(probabilities), len(self.labels)), dtype=np.float32)
                padded[:, columns] = probabilities
                probabilities = padded
            clock.lap("crop_cnn")
            if self.mode == "combined" and self.second_look:
                probabilities = self._second_look(crops, boxes, probabilities)
                clock.lap("second_look")
        gesture, probability, per_class = decide(probabilities, self.labels, self.threshold, weights)
        box_predictions = [BoxPrediction(b, self.labels[int(p.argmax())], float(p.max()), source)
                           for (b, source), p in zip(boxes, probabilities)]
        return Prediction(gesture, probability, dict(zip(self.labels, per_class.tolist())), box_predictions,
                          clock.total(), clock.stages)


class _StageClock:
    """Milliseconds per pipeline stage."""

    def __init__(self):
        self.started = self.last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + (now - self.last) * 1000
        self.last = now

    def total(self) -> float:
        return (time.perf_counter() - self.started) * 1000


def mcs_row(prediction: Prediction, frame_path: str) -> dict:
    """One row of the MachinesCanSee answers.csv: a probability per class and frame_path."""
    row = {name: float(prediction.class_probabilities.get(name, 0.0)) for name in MCS_CLASSES[1:]}
    best = max(row.values()) if prediction.boxes else 0.0
    row = {NO_GESTURE: 1.0 - best, **row}
    row["frame_path"] = frame_path
    return row


def check_mcs_labels(labels: Sequence[str]) -> None:
    missing = [name for name in MCS_CLASSES[1:] if name not in labels]
    if missing:
        raise ValueError(f"--format mcs needs a classifier with the classes {', '.join(MCS_CLASSES[1:])}; "
                         f"this one lacks {', '.join(missing)}")


def draw(rgb: np.ndarray, prediction: Prediction) -> np.ndarray:
    """The image with each box, its class and probability, and the image's answer in the corner."""
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    for b in prediction.boxes:
        if b.source == "image":
            continue
        x0, y0, x1, y1 = (int(round(float(v))) for v in b.box)
        colour = (0, 200, 0) if b.source.startswith("mediapipe") else (255, 140, 0)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
        cv2.putText(out, f"{b.label} {b.probability:.2f}", (x0, max(y0 - 5, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2)
    cv2.putText(out, f"{prediction.gesture} {prediction.probability:.2f}", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                (255, 0, 0), 2)
    return out
