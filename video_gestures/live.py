"""Live recognition: a sliding window over a video file or a camera, with smoothed predictions.

Each frame is encoded once when it arrives (a per-frame embedding, or the index fingertip from MediaPipe
Hands for a point-history model); every `stride` frames the last `window` encodings become one sequence
for the model, and the class probabilities are smoothed with an exponential moving average.

A window may have nothing to recognise: the fingertip encoder marks frames without a hand, and a window with
fewer than `min_hand_fraction` of them is answered `no_hand`, never a gesture (the model would read a still,
repeated point as one). Hand motion that is none of the gestures is `none`: the point-history model has a class
for it (trained on generated wandering paths), and a smoothed probability under the model's `gesture_threshold`
(chosen at training time on other generated paths, `gesture_threshold`) is `none` as well. The model's
`resting_labels` (the point-history set's `Stop`: a fingertip held still) are answers, never gestures.
`Occurrences` turns the windows into one row per gesture: start, end, label, confidence.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

import numpy as np

from core.live import LiveStage
from video_gestures.data import NONE, point_history_features, sample_indices
from video_gestures.inference import SequenceModel, load_model


NO_HAND = "no_hand"


class FrameEncoder(Protocol):
    num_frames: int

    def encode(self, rgb: np.ndarray) -> np.ndarray: ...

    def to_sequence(self, encodings: list[np.ndarray]) -> np.ndarray: ...

    def abstain(self, encodings: list[np.ndarray]) -> str | None:
        """Why a window holds nothing to recognise (e.g. `no_hand`), or None."""


class EmbeddingEncoder:
    """Per-frame backbone embeddings (channels, features); a window is sampled uniformly to `num_frames`."""

    def __init__(self, embedder, num_frames: int):
        self.embedder, self.num_frames = embedder, num_frames

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        return self.embedder(rgb[None])[0]

    def to_sequence(self, encodings: list[np.ndarray]) -> np.ndarray:
        return np.stack([encodings[i] for i in sample_indices(len(encodings), self.num_frames)])

    def abstain(self, encodings: list[np.ndarray]) -> str | None:
        return None   # a whole-frame embedding always has something to say


class FingertipEncoder:
    """MediaPipe Hands' index fingertip (landmark 8) in image-normalised coordinates, and whether a hand was
    there: (x, y, hand). A frame without a hand repeats the last position with hand 0. A window's last
    `num_frames` points, relative to the first, are the point-history features the model was trained on;
    a window where fewer than `min_hand_fraction` of the frames had a hand is `no_hand`."""

    INDEX_TIP = 8

    def __init__(self, features: list[str], num_frames: int = 16, detector=None, min_hand_fraction: float = 0.75):
        self.features, self.num_frames, self.min_hand_fraction = features, num_frames, min_hand_fraction
        self.detector = detector   # MediaPipe Hands on the first `encode` when None (`encode_detections` needs none)
        self.last = np.zeros(2, np.float32)
        self.seen_hand = False

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        if self.detector is None:
            from gesture_detection.detect import MediaPipeHands

            self.detector = MediaPipeHands(max_hands=1)
        height, width = rgb.shape[:2]
        return self.encode_detections(self.detector(rgb), width, height)

    def encode_detections(self, detections: list, width: int, height: int) -> np.ndarray:
        """The same from hands detected elsewhere (the live demo shares one MediaPipe Hands run per frame). Of
        several hands, the fingertip nearest the last one is followed, so the trajectory does not jump between hands."""
        tips = [d.landmarks[self.INDEX_TIP, :2] / np.array([width, height], np.float32)
                for d in detections if d.landmarks is not None]
        if tips:
            self.last = min(tips, key=lambda tip: float(np.sum((tip - self.last) ** 2))) if self.seen_hand else tips[0]
            self.seen_hand = True
        return np.append(self.last, np.float32(bool(tips)))

    def to_sequence(self, encodings: list[np.ndarray]) -> np.ndarray:
        points = np.stack(encodings[-self.num_frames:])[:, :2]
        points = points[sample_indices(len(points), self.num_frames)]
        return point_history_features((points - points[0])[None], self.features)[0]

    def abstain(self, encodings: list[np.ndarray]) -> str | None:
        hand = np.stack(encodings[-self.num_frames:])[:, 2]
        return NO_HAND if hand.mean() < self.min_hand_fraction else None


def frame_encoder_for(model: SequenceModel) -> FrameEncoder:
    """The front end a model was trained with (stored in its `input_config`)."""
    config = model.input_config
    if config.get("source") == "points":
        return FingertipEncoder(config["point_features"], config["num_frames"])
    if config.get("source") == "embeddings":
        from video_gestures.embeddings import embedder_from_config

        return EmbeddingEncoder(embedder_from_config(config), config["num_frames"])
    raise ValueError("the checkpoint does not say how its inputs were made (no input_config); retrain with train.py")


@dataclass
class WindowPrediction:
    frame: int  # index of the window's last frame
    seconds: float
    label: str            # the model's answer, or why there is none (`no_hand`)
    confidence: float     # NaN when there is no answer
    smoothed_label: str   # `none` when the smoothed best class is under the gesture threshold
    smoothed_confidence: float   # the smoothed best class's probability
    start_seconds: float = 0.0   # the window's first frame
    resting: bool = False        # the smoothed answer is one of the model's resting labels (no gesture)

    @property
    def is_gesture(self) -> bool:
        return self.smoothed_label not in (NO_HAND, NONE) and not self.resting


class SlidingWindowRecognizer:
    """`threshold`: the smoothed probability a gesture needs, below it the answer is `none` (None: the model's
    `gesture_threshold`, 0 for models without one)."""

    def __init__(self, model: SequenceModel, encoder: FrameEncoder, window: int = 32, stride: int = 4, smoothing: float = 0.6,
                 threshold: float | None = None):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.model, self.encoder, self.stride, self.smoothing = model, encoder, max(stride, 1), smoothing
        self.threshold = float(model.input_config.get("gesture_threshold", 0.0) if threshold is None else threshold)
        self.resting = set(model.input_config.get("resting_labels", ()))
        self.buffer: deque[np.ndarray] = deque(maxlen=max(window, 1))
        self.times: deque[float] = deque(maxlen=max(window, 1))
        self.smoothed: np.ndarray | None = None
        self.seen = 0

    def push(self, rgb: np.ndarray, seconds: float = 0.0) -> WindowPrediction | None:
        """Add a frame; a prediction when the window is full and a stride has passed, else None."""
        return self.push_encoding(self.encoder.encode(rgb), seconds)

    def push_encoding(self, encoding: np.ndarray, seconds: float = 0.0) -> WindowPrediction | None:
        """`push` for a frame already encoded (`FrameEncoder.encode`)."""
        self.buffer.append(encoding)
        self.times.append(seconds)
        self.seen += 1
        if len(self.buffer) < self.buffer.maxlen or (self.seen - self.buffer.maxlen) % self.stride:
            return None
        reason = self.encoder.abstain(list(self.buffer))
        if reason is not None:
            self.smoothed = None   # a gesture starts afresh after the gap
            return WindowPrediction(self.seen - 1, seconds, reason, float("nan"), reason, float("nan"), self.times[0])
        probabilities = self.model.predict_with_attention(self.encoder.to_sequence(list(self.buffer))[None])[0][0]
        self.smoothed = probabilities if self.smoothed is None else self.smoothing * self.smoothed + (1 - self.smoothing) * probabilities
        labels = self.model.labels
        best, smooth_best = int(probabilities.argmax()), int(self.smoothed.argmax())
        smoothed_label = labels[smooth_best] if self.smoothed[smooth_best] >= self.threshold else NONE
        return WindowPrediction(self.seen - 1, seconds, labels[best], float(probabilities[best]), smoothed_label,
                                float(self.smoothed[smooth_best]), self.times[0], smoothed_label in self.resting)

    def run(self, frames: Iterable[tuple[int, float, np.ndarray]]) -> Iterator[WindowPrediction]:
        """Predictions over (index, seconds, rgb) frames, e.g. core.io.iter_video_frames(path)."""
        for _, seconds, rgb in frames:
            prediction = self.push(rgb, seconds)
            if prediction is not None:
                yield prediction


@dataclass
class Occurrence:
    start: float        # seconds: the first window's first frame
    end: float          # seconds: the last window's last frame
    label: str
    confidence: float   # the highest smoothed probability over its windows
    windows: int


class Occurrences:
    """Windows to gestures, one per occurrence: neighbouring windows with the same smoothed gesture are one;
    `no_hand` windows end a gesture and are not reported."""

    def __init__(self):
        self.current: Occurrence | None = None

    def push(self, prediction: WindowPrediction) -> Occurrence | None:
        """The occurrence this window ends, if any."""
        current = self.current
        if current is not None and prediction.is_gesture and prediction.smoothed_label == current.label:
            current.end, current.windows = prediction.seconds, current.windows + 1
            current.confidence = max(current.confidence, prediction.smoothed_confidence)
            return None
        self.current = (Occurrence(prediction.start_seconds, prediction.seconds, prediction.smoothed_label,
                                   prediction.smoothed_confidence, 1) if prediction.is_gesture else None)
        return current

    def finish(self) -> Occurrence | None:
        current, self.current = self.current, None
        return current


def occurrences(predictions: Iterable[WindowPrediction]) -> Iterator[Occurrence]:
    tracker = Occurrences()
    for prediction in predictions:
        if (done := tracker.push(prediction)) is not None:
            yield done
    if (done := tracker.finish()) is not None:
        yield done


def gesture_threshold(model: SequenceModel, paths: Iterable[np.ndarray], fps: float, per_minute: float,
                      stride: int = 4, smoothing: float = 0.6) -> tuple[float, float]:
    """The smallest smoothed probability (on a 0.01 grid, at least 0.5) under which the live path gives at most
    `per_minute` gesture occurrences on `paths`, fingertip encodings (frames, 3) of hands making no gesture;
    (threshold, the rate it gives there). Each path is its own video."""
    paths, windows = list(paths), []
    for path in paths:
        encoder = FingertipEncoder(model.input_config["point_features"], model.input_config["num_frames"])
        recognizer = SlidingWindowRecognizer(model, encoder, encoder.num_frames, stride, smoothing, threshold=0.0)
        found = [p for i, point in enumerate(path) if (p := recognizer.push_encoding(point, i / fps)) is not None]
        windows += [*found, None]   # None: the end of a video ends an occurrence
    minutes = sum(len(path) for path in paths) / fps / 60

    def rate(threshold: float) -> float:
        count, previous = 0, None
        for w in windows:
            label = w.smoothed_label if w is not None and w.is_gesture and w.smoothed_confidence >= threshold else None
            count += label is not None and label != previous
            previous = label
        return count / minutes

    for threshold in np.round(np.arange(0.5, 1.0, 0.01), 2):
        if rate(threshold) <= per_minute:
            return float(threshold), rate(threshold)
    return 1.0, rate(1.0)


def camera_frames(device: int = 0) -> Iterator[tuple[int, float, np.ndarray]]:
    """Frames from a camera until it stops (or Ctrl-C); an InputError now if it cannot be opened."""
    from core.io import open_capture
    from core.live import capture_frames

    return capture_frames(open_capture(str(device), "give video files as inputs instead of --camera"), camera=True)


# ----------------------------------------------------------------------------------------- live demo stage
TIMELINE_COLOURS = [(230, 90, 60), (60, 180, 230), (90, 210, 90), (230, 200, 60), (200, 90, 220), (240, 140, 40),
                    (120, 120, 240), (60, 220, 190)]


@dataclass
class DynamicAnswer:
    prediction: WindowPrediction | None   # the last window's (None until the first window is full)
    trail: list                            # the last fingertip positions (pixels), newest last


class DynamicGestureStage(LiveStage):
    """The dynamic-gesture timeline for the root webcam_demo.py: the hands shared with the static-gesture
    stage (`gesture_detection.live.LiveHands`) -> index fingertip -> `SlidingWindowRecognizer` with a
    point-history model. Only frames where MediaPipe ran are pushed (on light frames that is every other
    one), so a stalled fingertip never enters the trajectory. Draws the fingertip's trail and a strip of
    the smoothed answers of the last `timeline_frames` frames."""

    name = "dynamic"

    def __init__(self, checkpoint, hands, window: int | None = None, stride: int = 4, smoothing: float = 0.6,
                 threads: int = 2, timeline_frames: int = 150):
        from core.io import InputError

        model = load_model(checkpoint, threads)
        config = model.input_config
        if config.get("source") != "points":
            raise InputError(checkpoint, f"the live demo needs a point-history model (`video_gestures.train --source "
                                         f"points`); this one reads {config.get('source') or 'unknown'} inputs")
        self.hands = hands
        self.encoder = FingertipEncoder(config["point_features"], config["num_frames"], detector=hands)
        self.recognizer = SlidingWindowRecognizer(model, self.encoder, window or config["num_frames"], stride, smoothing)
        self.labels = list(model.labels)
        self.trail: deque = deque(maxlen=config["num_frames"])
        self.timeline: deque = deque(maxlen=timeline_frames)
        self.last: WindowPrediction | None = None
        self.tracker, self.occurrences = Occurrences(), []   # each gesture once, printed when it ends

    def _report(self, occurrence: Occurrence | None) -> None:
        if occurrence is not None:
            self.occurrences.append(occurrence)
            print(f"dynamic gesture {occurrence.label} {occurrence.start:.2f}-{occurrence.end:.2f} s "
                  f"({occurrence.confidence:.2f})")

    def __call__(self, frame) -> DynamicAnswer:
        found = self.hands.detect(frame)
        if found.fresh:
            height, width = frame.rgb.shape[:2]
            encoding = self.encoder.encode_detections(found.detections, width, height)
            prediction = self.recognizer.push_encoding(encoding, frame.seconds)
            if prediction is not None:
                self._report(self.tracker.push(prediction))
            self.last = prediction or self.last
            self.trail.append(encoding[:2] * np.array([width, height], np.float32) if found.detections else None)
        self.timeline.append(self.last.smoothed_label if self.last is not None and self.last.is_gesture else None)
        return DynamicAnswer(self.last, list(self.trail))

    def colour(self, label: str) -> tuple[int, int, int]:
        return TIMELINE_COLOURS[self.labels.index(label) % len(TIMELINE_COLOURS)]

    def draw(self, canvas: np.ndarray, answer: DynamicAnswer) -> None:
        import cv2

        points = [p for p in answer.trail if p is not None]
        for a, b in zip(points, points[1:]):
            cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (255, 255, 0), 2, cv2.LINE_AA)
        height, width = canvas.shape[:2]
        top, step = height - 14, width / max(self.timeline.maxlen, 1)
        canvas[top:] = (canvas[top:] * 0.4).astype(canvas.dtype)
        for i, label in enumerate(self.timeline):
            if label is not None:
                cv2.rectangle(canvas, (int(i * step), top + 2), (int((i + 1) * step), height - 2), self.colour(label), -1)

    def summary(self, answer: DynamicAnswer) -> str:
        p = answer.prediction
        if p is None:
            return "dynamic: waiting for a full window"
        if p.smoothed_label in (NO_HAND, NONE):
            return f"dynamic: {p.smoothed_label.replace('_', ' ')}"
        return f"dynamic: {p.smoothed_label} {p.smoothed_confidence:.2f}" + ("" if p.is_gesture else " (no gesture)")

    def row(self, answer: DynamicAnswer) -> dict:
        p = answer.prediction
        return {"dynamic": p.smoothed_label if p else "", "dynamic_p": round(p.smoothed_confidence, 4) if p else float("nan")}

    def close(self) -> None:
        self._report(self.tracker.finish())
        self.hands.close()
