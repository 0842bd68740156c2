"""MediaPipe hand detections per image, cached on disk so repeated training and benchmark runs are fast,
and the pairing of detected hands with the annotated boxes.

The cache is one pickle per detector configuration in `.cache/gesture_detection/`, keyed by the
image's absolute path, size and modification time; a changed image is detected again.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from core.env import CACHE_DIR
from core.io import InputError, atomic_path

from gesture_detection.data import AnnotationWarning, load_image
from gesture_detection.detect import Detection, MediaPipeHands, RescuedHands, clip_box
from gesture_detection.features import INDEX_MCP, MIDDLE_MCP, PINKY_MCP, WRIST

CACHE_ROOT = CACHE_DIR / "gesture_detection"


def _image_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _cache_file(config: dict, cache_root: Path) -> Path:
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root / f"mediapipe_{digest}.pkl"


def cached_hand_detections(paths: Sequence[str | os.PathLike], detector: MediaPipeHands | RescuedHands | None = None,
                           cache_root: Path | None = CACHE_ROOT, progress: bool = False
                           ) -> tuple[list[list[Detection] | None], float]:
    """MediaPipe detections for every image (None for an image that cannot be read, with a warning),
    and the mean milliseconds per newly detected image (nan when everything came from the cache).
    A `RescuedHands` detector runs its rescues, each cached on its own, only on the images still
    without a hand."""
    if isinstance(detector, RescuedHands):
        found, milliseconds = cached_hand_detections(paths, detector.primary, cache_root, progress)
        for rescue in detector.rescues:
            missing = [i for i, hands in enumerate(found) if hands == []]
            if not missing:
                break
            again, _ = cached_hand_detections([paths[i] for i in missing], rescue, cache_root)
            for i, hands in zip(missing, again):
                found[i] = [replace(d, source="mediapipe_rescue") for d in hands or []]
        return found, milliseconds
    detector = detector or MediaPipeHands()
    cache_file = _cache_file(detector.config, cache_root) if cache_root is not None else None
    cache: dict = {}
    if cache_file is not None and cache_file.is_file():
        with open(cache_file, "rb") as handle:
            cache = pickle.load(handle)
    results: list[list[Detection] | None] = []
    fresh, seconds = 0, 0.0
    for i, path in enumerate(paths):
        path = Path(path)
        try:
            key = _image_key(path)
        except FileNotFoundError:
            warnings.warn(f"{path}: file not found; skipped", AnnotationWarning, stacklevel=2)
            results.append(None)
            continue
        if key not in cache:
            try:
                rgb = load_image(path)
            except InputError as error:
                warnings.warn(f"{error}; skipped", AnnotationWarning, stacklevel=2)
                results.append(None)
                continue
            started = time.perf_counter()
            cache[key] = detector(rgb)
            seconds += time.perf_counter() - started
            fresh += 1
            if progress and fresh % 200 == 0:
                print(f"  MediaPipe: {i + 1}/{len(paths)} images", flush=True)
        results.append(cache[key])
    if cache_file is not None and fresh:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_file) as tmp, open(tmp, "wb") as handle:
            pickle.dump(cache, handle)
    return results, (seconds / fresh * 1000 if fresh else float("nan"))


def match_to_boxes(detections: Sequence[Detection], annotation) -> list[tuple[Detection, str, np.ndarray | None]]:
    """Pair each detection with the true box that contains its centre and overlaps it most:
    (detection, class, true box). Detections off every box are dropped. An image without boxes
    (class folders) pairs its top detection with the image's gesture."""
    from gesture_detection.detect import box_iou

    if not annotation.boxes:
        top = sorted(detections, key=lambda d: -d.score)[:1]
        return [(d, annotation.label, None) for d in top]
    truths = np.stack([b.as_array() for b in annotation.boxes])
    pairs = []
    for d in detections:
        cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
        inside = (truths[:, 0] <= cx) & (cx <= truths[:, 2]) & (truths[:, 1] <= cy) & (cy <= truths[:, 3])
        if not inside.any():
            continue
        ious = np.where(inside, box_iou(d.box[None], truths)[0], -1.0)
        best = int(np.argmax(ious))
        pairs.append((d, annotation.boxes[best].label, truths[best]))
    return pairs


def fit_box_scale(detections: Sequence[Sequence[Detection] | None], annotations: Sequence) -> float:
    """The factor that turns a landmark box into the annotation style's box: the median of
    sqrt(true area / landmark-box area) over matched hands (1.25 when nothing matches)."""
    ratios = []
    for found, annotation in zip(detections, annotations):
        for d, _, truth in match_to_boxes(found or [], annotation):
            if truth is None:
                continue
            area = max(float((d.box[2] - d.box[0]) * (d.box[3] - d.box[1])), 1.0)
            ratios.append(np.sqrt((truth[2] - truth[0]) * (truth[3] - truth[1]) / area))
    return float(np.median(ratios)) if ratios else 1.25


# a landmark-geometry box needs this many matched hands to fit its 36 coefficients
MIN_HANDS_FOR_EDGES = 30


def box_geometry(landmarks: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """What a hand's annotated box depends on, from its pixel landmarks (21, 3) and landmark box, in
    palm sizes: (9,) [1, box width, box height, the palm's direction (wrist to middle MCP) x, y and
    |x|, |y|, the wrist's offset from the box centre x, y], and the box centre and palm size in pixels."""
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    cx, cy = (float(box[0]) + float(box[2])) / 2, (float(box[1]) + float(box[3])) / 2
    # features.palm_size in the image plane (it measures in 3-D)
    size = max(float(np.linalg.norm(points[[INDEX_MCP, MIDDLE_MCP, PINKY_MCP]] - points[WRIST], axis=1).mean()), 1.0)
    direction = points[MIDDLE_MCP] - points[WRIST]
    direction = direction / max(float(np.linalg.norm(direction)), 1e-9)
    features = np.array([1.0, (box[2] - box[0]) / size, (box[3] - box[1]) / size, direction[0], direction[1],
                         abs(direction[0]), abs(direction[1]), (points[WRIST, 0] - cx) / size, (points[WRIST, 1] - cy) / size])
    return features, cx, cy, size


@dataclass(frozen=True)
class BoxStyle:
    """How an annotation style draws a hand's box around MediaPipe's landmarks.

    Per axis (any box): width and height factors, and the centre's shift in landmark-box widths and
    heights. With `edges` (fitted on enough hands) and the hand's landmarks, the four box edges instead
    come from a linear map of the hand's geometry (`box_geometry`: size, which way the palm points,
    where the wrist is), in palm sizes from the landmark box's centre: LinTO's boxes, for one, are about
    twice as wide as the landmarks and reach down the forearm, which lies wherever the hand points from."""

    width: float = 1.25
    height: float = 1.25
    shift_x: float = 0.0
    shift_y: float = 0.0
    edges: tuple[tuple[float, ...], ...] | None = None  # (9, 4): box_geometry -> xmin, ymin, xmax, ymax

    def apply(self, box: np.ndarray, image_width: int, image_height: int, landmarks: np.ndarray | None = None) -> np.ndarray:
        if self.edges is not None and landmarks is not None:
            features, cx, cy, size = box_geometry(landmarks, box)
            offsets = features @ np.asarray(self.edges)
            styled = np.array([cx, cy, cx, cy]) + offsets * size
            return clip_box(styled.astype(np.float32), image_width, image_height)
        xmin, ymin, xmax, ymax = (float(v) for v in box)
        w, h = xmax - xmin, ymax - ymin
        cx, cy = (xmin + xmax) / 2 + self.shift_x * w, (ymin + ymax) / 2 + self.shift_y * h
        styled = np.array([cx - self.width * w / 2, cy - self.height * h / 2, cx + self.width * w / 2,
                           cy + self.height * h / 2], dtype=np.float32)
        return clip_box(styled, image_width, image_height)


def fit_box_style(detections: Sequence[Sequence[Detection] | None], annotations: Sequence,
                  edges: bool = True) -> BoxStyle:
    """The annotation style of matched hands: per axis, the median size ratio and centre shift of the
    true box to the landmark box (the default style when nothing matches); with `edges` and at least
    MIN_HANDS_FOR_EDGES matched hands with landmarks, also the linear map from their geometry to the
    true box's edges (a Huber fit per edge, so a few odd annotations barely move it)."""
    rows, geometry, targets = [], [], []
    for found, annotation in zip(detections, annotations):
        for d, _, truth in match_to_boxes(found or [], annotation):
            if truth is None:
                continue
            w, h = max(float(d.box[2] - d.box[0]), 1.0), max(float(d.box[3] - d.box[1]), 1.0)
            rows.append(((truth[2] - truth[0]) / w, (truth[3] - truth[1]) / h,
                         ((truth[0] + truth[2]) - (d.box[0] + d.box[2])) / 2 / w,
                         ((truth[1] + truth[3]) - (d.box[1] + d.box[3])) / 2 / h))
            if d.landmarks is not None:
                features, cx, cy, size = box_geometry(d.landmarks, d.box)
                geometry.append(features)
                targets.append((np.asarray(truth, dtype=np.float64) - [cx, cy, cx, cy]) / size)
    if not rows:
        return BoxStyle()
    style = BoxStyle(*(float(v) for v in np.median(rows, axis=0)))
    if not edges or len(geometry) < MIN_HANDS_FOR_EDGES:
        return style
    from sklearn.linear_model import HuberRegressor

    geometry, targets = np.stack(geometry), np.stack(targets)
    coefficients = np.stack([HuberRegressor(fit_intercept=False, alpha=1e-3, max_iter=1000).fit(geometry, targets[:, k]).coef_
                             for k in range(4)], axis=1)
    return replace(style, edges=tuple(tuple(float(v) for v in row) for row in coefficients))


def labelled_hands(annotations: Sequence, detections: Sequence[Sequence[Detection] | None],
                   class_names: Sequence[str]) -> tuple[list[Detection], list[str]]:
    """Every detected hand matched to a true box of a known class, and that class."""
    hands, targets = [], []
    for annotation, found in zip(annotations, detections):
        for d, label, _ in match_to_boxes(found or [], annotation):
            if label in class_names:
                hands.append(d)
                targets.append(label)
    return hands, targets
