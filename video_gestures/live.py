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
import torch

from video_gestures.data import point_history_features, sample_indices
from video_gestures.model import SequenceModule


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

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        detections = self.detector(rgb)
        if detections and detections[0].landmarks is not None:
            height, width = rgb.shape[:2]
            self.last = detections[0].landmarks[self.INDEX_TIP, :2] / np.array([width, height], np.float32)
        return self.last.copy()

    def to_sequence(self, encodings: list[np.ndarray]) -> np.ndarray:
        points = np.stack(encodings[-self.num_frames:])
        points = points[sample_indices(len(points), self.num_frames)]
        return point_history_features((points - points[0])[None], self.features)[0]


def frame_encoder_for(model: SequenceModule) -> FrameEncoder:
    """The front end a checkpoint was trained with (stored in its `input_config`)."""
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
    def __init__(self, model: SequenceModule, encoder: FrameEncoder, window: int = 32, stride: int = 4, smoothing: float = 0.6):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.model, self.encoder, self.stride, self.smoothing = model.eval(), encoder, max(stride, 1), smoothing
        self.buffer: deque[np.ndarray] = deque(maxlen=max(window, 1))
        self.smoothed: np.ndarray | None = None
        self.seen = 0

    @torch.inference_mode()
    def push(self, rgb: np.ndarray, seconds: float = 0.0) -> WindowPrediction | None:
        """Add a frame; a prediction when the window is full and a stride has passed, else None."""
        self.buffer.append(self.encoder.encode(rgb))
        self.seen += 1
        if len(self.buffer) < self.buffer.maxlen or (self.seen - self.buffer.maxlen) % self.stride:
            return None
        sequence = torch.from_numpy(self.encoder.to_sequence(list(self.buffer))[None].astype(np.float32))
        probabilities = torch.softmax(self.model(sequence), dim=1)[0].numpy()
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
    """Frames from a camera until it stops (or Ctrl-C)."""
    import time

    import cv2

    capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        raise RuntimeError(f"camera {device}: cannot open")
    started, index = time.perf_counter(), 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield index, time.perf_counter() - started, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
