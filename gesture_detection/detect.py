"""Hand detectors behind one interface, box post-processing, and detector metrics.

A detector maps an RGB image to a list of `Detection` (box in pixels, score, and for MediaPipe the 21
hand landmarks with handedness). Two implementations:

- `MediaPipeHands`: MediaPipe Hands (palm detector + landmark model, both shipped inside the
  mediapipe wheel, so it runs offline). Its box is the landmarks' extent; its score is the
  handedness confidence (the legacy API exposes no detection score).
- `YoloHands`: an ultralytics YOLO model trained by `train_detector.py` on the hand boxes.

Post-processing as the original pipeline: keep the top box or all, expand by a factor, clip.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from core.io import InputError


@dataclass
class Detection:
    box: np.ndarray  # xmin, ymin, xmax, ymax in pixels
    score: float
    landmarks: np.ndarray | None = None  # (21, 3): x, y in pixels, z in pixels (MediaPipe's depth, scaled like x)
    handedness: str | None = None  # "Left" or "Right" as MediaPipe reports it
    source: str = ""
    # (21, 3) in metres about the hand's centre (MediaPipe's world landmarks): the hand's own 3-D shape,
    # not tied to the photo's pixel grid; None where the detector gives none
    world_landmarks: np.ndarray | None = None

    def with_box(self, box: np.ndarray) -> "Detection":
        return replace(self, box=np.asarray(box, dtype=np.float32))


class HandDetector(Protocol):
    name: str

    def __call__(self, rgb: np.ndarray) -> list[Detection]: ...


# ----------------------------------------------------------------------------------------- post-processing
def expand_box(box: np.ndarray, factor: float, width: int, height: int, square: bool = False) -> np.ndarray:
    """Scale a box about its centre by `factor` (optionally to a square of its longer side), then clip."""
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    w, h = (xmax - xmin) * factor, (ymax - ymin) * factor
    if square:
        w = h = max(w, h)
    return clip_box(np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32), width, height)


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    box = np.asarray(box, dtype=np.float32).copy()
    box[[0, 2]] = np.clip(box[[0, 2]], 0, width)
    box[[1, 3]] = np.clip(box[[1, 3]], 0, height)
    return box


def postprocess(detections: Sequence[Detection], width: int, height: int, keep: str = "all",
                expand: float = 1.0, square: bool = False) -> list[Detection]:
    """Sort by score, keep the top box (`keep="top"`) or all, expand and clip every box; drop empty ones."""
    if keep not in ("top", "all"):
        raise ValueError(f"keep must be 'top' or 'all', not {keep!r}")
    ordered = sorted(detections, key=lambda d: -d.score)
    if keep == "top":
        ordered = ordered[:1]
    out = []
    for d in ordered:
        box = expand_box(d.box, expand, width, height, square)
        if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
            out.append(d.with_box(box))
    return out


def crop(rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    xmin, ymin, xmax, ymax = (int(round(float(v))) for v in box)
    height, width = rgb.shape[:2]
    xmin, ymin = max(xmin, 0), max(ymin, 0)
    xmax, ymax = min(max(xmax, xmin + 1), width), min(max(ymax, ymin + 1), height)
    return rgb[ymin:ymax, xmin:xmax]


# ----------------------------------------------------------------------------------------- MediaPipe
class MediaPipeHands:
    """MediaPipe Hands in static-image mode, or with `tracking` in video mode (the palm detector runs
    only until the hands are found, then the landmarks of one frame give the next frame's region: for
    consecutive frames of a video or a camera). `model_complexity` 1 (full) or 0 (lite) both ship
    offline. `pad` adds a black border of that fraction of the longer side first (a hand at the image
    edge, or one filling much of it, is found more often by the palm detector); boxes and landmarks are
    given back in the original image's pixels."""

    name = "mediapipe"

    def __init__(self, max_hands: int = 2, min_confidence: float = 0.5, model_complexity: int = 1, pad: float = 0.0,
                 tracking: bool = False):
        import mediapipe as mp

        # "world": detections made before world landmarks were kept are detected again (the cache key)
        self.config = {"max_hands": max_hands, "min_confidence": min_confidence, "model_complexity": model_complexity,
                       "world": True}
        if pad:
            self.config["pad"] = pad
        if tracking:
            self.config["tracking"] = True
        self.pad = pad
        self._hands = mp.solutions.hands.Hands(static_image_mode=not tracking, max_num_hands=max_hands,
                                               model_complexity=model_complexity,
                                               min_detection_confidence=min_confidence)

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        height, width = rgb.shape[:2]
        border = int(round(self.pad * max(height, width)))
        padded = cv2.copyMakeBorder(rgb, border, border, border, border, cv2.BORDER_CONSTANT) if border else rgb
        result = self._hands.process(np.ascontiguousarray(padded))
        if not result.multi_hand_landmarks:
            return []
        detections = []
        for landmarks, world, handedness in zip(result.multi_hand_landmarks, result.multi_hand_world_landmarks,
                                                result.multi_handedness):
            side = width + 2 * border
            points = np.array([[p.x * side - border, p.y * (height + 2 * border) - border, p.z * side]
                               for p in landmarks.landmark], dtype=np.float32)
            box = np.array([points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()], dtype=np.float32)
            box = clip_box(box, width, height)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue  # a "hand" wholly in the border
            category = handedness.classification[0]
            world_points = np.array([[p.x, p.y, p.z] for p in world.landmark], dtype=np.float32)
            detections.append(Detection(box, float(category.score), points, category.label, self.name, world_points))
        return detections

    def close(self) -> None:
        self._hands.close()


class TiledHands:
    """MediaPipe on overlapping tiles of the image, each enlarged: a hand small in the photo fills more
    of what the palm detector sees. `grid` x `grid` tiles of `fraction` of the image's width and height
    (evenly spaced, so neighbours overlap), each resized by `upscale`; landmarks and boxes come back in
    the image's pixels, and a hand found in two tiles is kept once (the higher score where boxes
    overlap by IoU > 0.3)."""

    name = "mediapipe"

    def __init__(self, detector: MediaPipeHands, grid: int = 2, fraction: float = 2 / 3, upscale: float = 1.5):
        self.detector, self.grid, self.fraction, self.upscale = detector, grid, fraction, upscale
        self.config = {**detector.config, "tiles": grid, "tile_fraction": round(fraction, 4), "upscale": upscale}

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        height, width = rgb.shape[:2]
        tile_w, tile_h = int(round(width * self.fraction)), int(round(height * self.fraction))
        found: list[Detection] = []
        for y0 in np.linspace(0, height - tile_h, self.grid).round().astype(int):
            for x0 in np.linspace(0, width - tile_w, self.grid).round().astype(int):
                tile = cv2.resize(np.ascontiguousarray(rgb[y0:y0 + tile_h, x0:x0 + tile_w]), None,
                                  fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
                for d in self.detector(tile):
                    points = d.landmarks / self.upscale + np.array([x0, y0, 0], dtype=np.float32)
                    box = clip_box(d.box / self.upscale + np.array([x0, y0, x0, y0], dtype=np.float32), width, height)
                    found.append(replace(d, box=box, landmarks=points))
        kept: list[Detection] = []
        for d in sorted(found, key=lambda d: -d.score):
            if all(box_iou(d.box, k.box)[0, 0] <= 0.3 for k in kept):
                kept.append(d)
        return kept


class RescuedHands:
    """MediaPipe as configured, and only where it finds no hand, the rescue detectors in turn (by
    default the palm detector at confidence 0.1, then the same on the image with a 25% border, then
    on 2 x 2 enlarged tiles, `TiledHands`). On the HandsDataset train split the first two found a
    hand in 18 of the 29 images the default misses (see the README's selection table for the tiles)."""

    name = "mediapipe"

    def __init__(self, primary: MediaPipeHands | None = None, rescues: Sequence[MediaPipeHands] | None = None):
        self.primary = primary or MediaPipeHands()
        self.rescues = list(rescues) if rescues is not None else [
            MediaPipeHands(self.primary.config["max_hands"], 0.1, self.primary.config["model_complexity"]),
            MediaPipeHands(self.primary.config["max_hands"], 0.1, self.primary.config["model_complexity"], pad=0.25),
            TiledHands(MediaPipeHands(self.primary.config["max_hands"], 0.1, self.primary.config["model_complexity"]))]
        self.config = {"primary": self.primary.config, "rescues": [r.config for r in self.rescues]}
        self.last_rescue: int | None = None  # which rescue found the hands of the last image (None: the primary)

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        return self.rescue(rgb, self.primary(rgb))

    def rescue(self, rgb: np.ndarray, found: list[Detection]) -> list[Detection]:
        """`found` (the primary's hands) when not empty, else the first rescue's hands."""
        self.last_rescue = None
        for i, detector in enumerate(self.rescues):
            if found:
                break
            found = [replace(d, source="mediapipe_rescue") for d in detector(rgb)]
            self.last_rescue = i
        return found


# ----------------------------------------------------------------------------------------- YOLO
class YoloHands:
    """An ultralytics YOLO hand detector from `train_detector.py` (`best.pt`)."""

    name = "yolo"

    def __init__(self, weights: str | os.PathLike, confidence: float = 0.25, image_size: int = 320, device: str = "cpu"):
        weights = Path(weights)
        if not weights.is_file():
            raise InputError(weights, "no YOLO weights; train them with `python -m gesture_detection.train_detector`")
        self.model = load_yolo(weights)
        self.confidence, self.image_size, self.device = confidence, image_size, device

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        # ultralytics takes numpy images as BGR
        result = self.model.predict(np.ascontiguousarray(rgb[:, :, ::-1]), imgsz=self.image_size, conf=self.confidence,
                                    device=self.device, verbose=False)[0]
        boxes = result.boxes.xyxy.cpu().numpy()
        scores = result.boxes.conf.cpu().numpy()
        return [Detection(box.astype(np.float32), float(score), source=self.name) for box, score in zip(boxes, scores)]


def load_yolo(weights: str | os.PathLike):
    from core.env import install_ultralytics_font

    from core.models import CHECKPOINT, ONNX, sniff_format

    if sniff_format(weights) not in (CHECKPOINT, ONNX):   # a missing name would make ultralytics download one
        raise InputError(weights, "is not YOLO weights (a .pt checkpoint or an ONNX export)")
    install_ultralytics_font()
    from ultralytics import YOLO

    try:
        model = YOLO(str(weights))
    except Exception as error:  # ultralytics raises many types for a file it cannot read
        raise InputError(weights, f"is not YOLO weights ultralytics can load ({type(error).__name__}: {error})") from None
    return model


# ----------------------------------------------------------------------------------------- metrics
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes a (N, 4) and b (M, 4)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class DetectionScores:
    map50: float  # average precision at IoU 0.5 (one class: hand), all-point interpolation
    recall_iou50: float  # fraction of true boxes matched by a detection at IoU >= 0.5
    n_boxes: int
    n_images: int
    extra: dict = field(default_factory=dict)


def detection_scores(predictions: Sequence[Sequence[Detection]], truths: Sequence[np.ndarray],
                     iou_threshold: float = 0.5) -> DetectionScores:
    """AP@0.5 and recall over images: greedy matching by score, each true box matched at most once."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} prediction lists for {len(truths)} images")
    records = []  # (score, is true positive)
    n_true = 0
    for detections, true_boxes in zip(predictions, truths):
        true_boxes = np.asarray(true_boxes, dtype=np.float32).reshape(-1, 4)
        n_true += len(true_boxes)
        matched = np.zeros(len(true_boxes), dtype=bool)
        for d in sorted(detections, key=lambda d: -d.score):
            hit = False
            if len(true_boxes):
                ious = box_iou(d.box[None], true_boxes)[0]
                ious[matched] = -1
                best = int(np.argmax(ious))
                if ious[best] >= iou_threshold:
                    matched[best], hit = True, True
            records.append((d.score, hit))
    if n_true == 0:
        raise ValueError("no true boxes to score against")
    records.sort(key=lambda r: -r[0])
    hits = np.array([r[1] for r in records], dtype=float)
    true_positives = np.cumsum(hits)
    recall = true_positives / n_true
    precision = true_positives / np.arange(1, len(hits) + 1)
    # all-point interpolated AP (as VOC 2010+ and COCO's AP50 without the 101-point sampling)
    envelope = np.maximum.accumulate(np.r_[precision, 0.0][::-1])[::-1]
    recall_steps = np.r_[0.0, recall]
    ap = float(np.sum((recall_steps[1:] - recall_steps[:-1]) * envelope[:-1])) if len(hits) else 0.0
    return DetectionScores(map50=ap, recall_iou50=float(recall[-1]) if len(hits) else 0.0,
                           n_boxes=n_true, n_images=len(truths))


def score_detector(predictions: Sequence[Sequence[Detection]], annotations: Sequence, confidence: float = 0.25) -> dict:
    """mAP@0.5 over all detections, and recall at IoU 0.5 of those scoring at least `confidence`,
    against the hand boxes of `annotations` (data.ImageAnnotation)."""
    truths = [[b.as_array() for b in a.boxes] for a in annotations]
    scores = detection_scores(predictions, truths)
    kept = [[d for d in found if d.score >= confidence] for found in predictions]
    return {"map50": scores.map50, "recall_iou50": detection_scores(kept, truths).recall_iou50,
            "n_images": scores.n_images, "n_boxes": scores.n_boxes}
