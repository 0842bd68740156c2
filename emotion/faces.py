"""Face detection and cropping with shipped detectors: MediaPipe face detection (the `.tflite` models
inside mediapipe 0.10.21), OpenCV's Haar cascade as the fallback. When no face is found the caller
gets the whole image and `found=False`, so every input still gets a prediction and a flag.

FER2013's faces are registered upright; a tilted head in a webcam frame is not. With MediaPipe's eye
keypoints the crop is taken from the frame turned about the face centre until the eyes are level
(`align=True`, the default), so the network sees faces the way it was trained on them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DETECTORS = ("mediapipe", "haar", "none")


@dataclass(frozen=True)
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    score: float
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None  # (right, left) eye in pixels, MediaPipe only

    @property
    def eye_angle(self) -> float:
        """Degrees the eye line is turned from level (0 when the eyes are unknown)."""
        if self.eyes is None:
            return 0.0
        (rx, ry), (lx, ly) = self.eyes
        return float(np.degrees(np.arctan2(ly - ry, lx - rx)))

    @property
    def area(self) -> int:
        return self.w * self.h


class FaceDetector:
    """Largest-face detector. `backend`: mediapipe (falls back to haar if MediaPipe fails to load), haar, none.

    `margin` widens the square crop around the box (the FER faces include forehead and chin); `align` levels
    the eyes first when the detector gives them."""

    def __init__(self, backend: str = "mediapipe", min_confidence: float = 0.5, margin: float = 0.25, align: bool = True):
        if backend not in DETECTORS:
            raise ValueError(f"unknown face detector {backend!r}; choose one of {DETECTORS}")
        self.margin = margin
        self.align = align
        self.min_confidence = min_confidence
        self._mediapipe = None
        self._haar = None
        self.backend = backend
        if backend == "mediapipe":
            try:
                import mediapipe as mp

                # model_selection=1: the full-range model (faces up to ~5 m); 0 is for selfies within 2 m.
                self._mediapipe = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                            min_detection_confidence=min_confidence)
            except Exception:  # a broken mediapipe install must not stop predictions
                self.backend = "haar"
        if self.backend in ("mediapipe", "haar"):
            import cv2

            self._haar = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """All faces in an RGB uint8 image, largest first."""
        if self.backend == "none" or rgb.size == 0:
            return []
        boxes: list[FaceBox] = []
        if self._mediapipe is not None:
            boxes = self._detect_mediapipe(rgb)
        if not boxes and self._haar is not None:
            boxes = self._detect_haar(rgb)
        return sorted(boxes, key=lambda b: b.area, reverse=True)

    def _detect_mediapipe(self, rgb: np.ndarray) -> list[FaceBox]:
        height, width = rgb.shape[:2]
        result = self._mediapipe.process(np.ascontiguousarray(rgb))
        boxes = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            x, y = int(rel.xmin * width), int(rel.ymin * height)
            w, h = int(rel.width * width), int(rel.height * height)
            x0, y0 = max(x, 0), max(y, 0)
            w, h = min(x + w, width) - x0, min(y + h, height) - y0
            right_eye, left_eye = detection.location_data.relative_keypoints[:2]  # as seen in the image: right eye left
            eyes = ((right_eye.x * width, right_eye.y * height), (left_eye.x * width, left_eye.y * height))
            if w > 4 and h > 4:
                boxes.append(FaceBox(x0, y0, w, h, float(detection.score[0]), eyes))
        return boxes

    def _detect_haar(self, rgb: np.ndarray) -> list[FaceBox]:
        import cv2

        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = 640 / max(gray.shape) if max(gray.shape) > 640 else 1.0  # huge photos: detect on a smaller copy
        small = cv2.resize(gray, None, fx=scale, fy=scale) if scale != 1.0 else gray
        min_size = max(16, int(min(small.shape) * 0.1))
        found = self._haar.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
        return [FaceBox(int(x / scale), int(y / scale), int(w / scale), int(h / scale), 1.0) for x, y, w, h in found]

    def square_crop(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        """A square crop around `box` widened by `margin`, clipped to the image; eyes levelled when `align`."""
        height, width = rgb.shape[:2]
        side = int(max(box.w, box.h) * (1 + self.margin))
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        if self.align and abs(box.eye_angle) > 1.0:
            import cv2

            # Turn the frame about the face centre (edges replicated), then crop centred on the face.
            turn = cv2.getRotationMatrix2D((cx, cy), box.eye_angle, 1.0)
            rgb = cv2.warpAffine(rgb, turn, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x0 = int(np.clip(cx - side / 2, 0, max(width - side, 0)))
        y0 = int(np.clip(cy - side / 2, 0, max(height - side, 0)))
        return rgb[y0:y0 + side, x0:x0 + side]

    def crop(self, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        """(largest face crop, True), or (the whole image, False) when no face is found."""
        boxes = self.detect(rgb)
        if not boxes:
            return rgb, False
        return self.square_crop(rgb, boxes[0]), True

    __call__ = crop

    def close(self) -> None:
        if self._mediapipe is not None:
            self._mediapipe.close()
            self._mediapipe = None
