"""Live recognition: a sliding window over a video file or a camera, with smoothed predictions.

Each frame is encoded once when it arrives (a per-frame embedding, or the index fingertip from MediaPipe
Hands for a point-history model); every `stride` frames the last `window` encodings become one sequence
for the model, and the class probabilities are smoothed with an exponential moving average.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

import numpy as np

from core.live import LiveStage
from video_gestures.data import point_history_features, sample_indices
from video_gestures.inference import SequenceModel, load_model


class FrameEncoder(Protocol):
    num_frames: int

    def encode(self, rgb: np.ndarray) -> np.ndarray: ...

    def to_sequence(self, encodings: list[np.ndarray]) -> np.ndarray: ...


class EmbeddingEncoder:
    """Per-frame backbone embeddings (channels, features); a window is sampled uniformly to `num_frames`."""

    def __init__(self, embedder, num_frames: int):
        self.embedder, self.num_frames = embedder, num_frames

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        return self.embedder(rgb[None])[0]

    def to_sequence(self, encodings: list[np.ndarray]) -> np.ndarray:
        return np.stack([encodings[i] for i in sample_indices(len(encodings), self.num_frames)])


class FingertipEncoder:
    """MediaPipe Hands' index fingertip (landmark 8) in image-normalised coordinates; a frame without a hand
    repeats the last position. A window's last `num_frames` points, relative to the first, are the
    point-history features the model was trained on."""

    INDEX_TIP = 8

    def __init__(self, features: list[str], num_frames: int = 16, detector=None):
        from gesture_detection.detect import MediaPipeHands

        self.features, self.num_frames = features, num_frames
        self.detector = detector or MediaPipeHands(max_hands=1)
        self.last = np.zeros(2, np.float32)
        self.seen_hand = False

    def encode(self, rgb: np.ndarray) -> np.ndarray:
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
        return self.last.copy()

    def to_sequence(self, encodings: list[np.ndarray]) -> np.ndarray:
        points = np.stack(encodings[-self.num_frames:])
        points = points[sample_indices(len(points), self.num_frames)]
        return point_history_features((points - points[0])[None], self.features)[0]


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
    label: str
    confidence: float
    smoothed_label: str
    smoothed_confidence: float


class SlidingWindowRecognizer:
    def __init__(self, model: SequenceModel, encoder: FrameEncoder, window: int = 32, stride: int = 4, smoothing: float = 0.6):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.model, self.encoder, self.stride, self.smoothing = model, encoder, max(stride, 1), smoothing
        self.buffer: deque[np.ndarray] = deque(maxlen=max(window, 1))
        self.smoothed: np.ndarray | None = None
        self.seen = 0

    def push(self, rgb: np.ndarray, seconds: float = 0.0) -> WindowPrediction | None:
        """Add a frame; a prediction when the window is full and a stride has passed, else None."""
        return self.push_encoding(self.encoder.encode(rgb), seconds)

    def push_encoding(self, encoding: np.ndarray, seconds: float = 0.0) -> WindowPrediction | None:
        """`push` for a frame already encoded (`FrameEncoder.encode`)."""
        self.buffer.append(encoding)
        self.seen += 1
        if len(self.buffer) < self.buffer.maxlen or (self.seen - self.buffer.maxlen) % self.stride:
            return None
        probabilities = self.model.predict_with_attention(self.encoder.to_sequence(list(self.buffer))[None])[0][0]
        self.smoothed = probabilities if self.smoothed is None else self.smoothing * self.smoothed + (1 - self.smoothing) * probabilities
        labels = self.model.labels
        best, smooth_best = int(probabilities.argmax()), int(self.smoothed.argmax())
        return WindowPrediction(self.seen - 1, seconds, labels[best], float(probabilities[best]), labels[smooth_best],
                                float(self.smoothed[smooth_best]))

    def run(self, frames: Iterable[tuple[int, float, np.ndarray]]) -> Iterator[WindowPrediction]:
        """Predictions over (index, seconds, rgb) frames, e.g. core.io.iter_video_frames(path)."""
        for _, seconds, rgb in frames:
            prediction = self.push(rgb, seconds)
            if prediction is not None:
                yield prediction


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

    def __call__(self, frame) -> DynamicAnswer:
        found = self.hands.detect(frame)
        if found.fresh:
            height, width = frame.rgb.shape[:2]
            encoding = self.encoder.encode_detections(found.detections, width, height)
            prediction = self.recognizer.push_encoding(encoding, frame.seconds)
            self.last = prediction or self.last
            self.trail.append(encoding * np.array([width, height], np.float32) if found.detections else None)
        self.timeline.append(self.last.smoothed_label if self.last is not None else None)
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
        return "dynamic: waiting for a full window" if p is None else \
            f"dynamic: {p.smoothed_label} {p.smoothed_confidence:.2f}"

    def row(self, answer: DynamicAnswer) -> dict:
        p = answer.prediction
        return {"dynamic": p.smoothed_label if p else "", "dynamic_p": round(p.smoothed_confidence, 4) if p else float("nan")}

    def close(self) -> None:
        self.hands.close()
