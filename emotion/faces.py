"""Face detection and cropping with shipped detectors: MediaPipe face detection (the `.tflite` models inside
mediapipe 0.10.21) and, only when asked for, OpenCV's Haar cascade. A box is kept only if it is a face:
detector score, size, and a plausible layout of the six MediaPipe keypoints (eyes level with each other,
nose below them, mouth below the nose). Nothing falls back silently: no face is an answer (`[]`), and each
caller says what it did then (`emotion.predict --no-face whole|skip`, the timeline's gaps).

Faces at every distance. MediaPipe's short-range model (128 px input) finds faces that fill 30-60% of the
picture it is given and misses small ones; the full-range model (192 px) reaches further but misses close-ups
(measured on 300 close-up portraits: 29 found against the short-range model's 299). `detect` runs both on the
whole picture, then the short-range model on overlapping square tiles at smaller and smaller sizes, down to
faces of `min_face` pixels (`tile_levels`), and merges the boxes (one per face: the best-scoring box of a group
that overlaps). `detect_near` looks again only around a known face (the timeline's tracker), one short-range call.

FER2013's faces are registered upright; a tilted head in a webcam frame is not. With MediaPipe's eye
keypoints the crop is taken from the frame turned about the face centre until the eyes are level
(`align=True`, the default), so the network sees faces the way it was trained on them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DETECTORS = ("mediapipe", "haar", "none")
# the face fills this fraction of a tile's side when the short-range model sees it best (measured on FER+
# faces placed in tiles: 93-100% found between 0.3 and 0.6)
TILE_FACE_FRACTION = (0.3, 0.6)
# a candidate is confirmed when the short-range model, shown a window around it, finds it again with this score
# and this overlap (on the benchmark's pictures: 13 of 495 false boxes above score 0.75 survive it, 50 of 58 faces)
CONFIRM_SCORE, CONFIRM_IOU = 0.5, 0.5
CONFIRM_SCALES = (2.2, 1.5)   # windows this many times the box's side: a face comes back in both
# The second opinion: MTCNN's O-Net (the last stage of MTCNN, weights shipped in the facenet-pytorch wheel, run in
# onnxruntime) on a square ONET_GROW times the box's side. A box that the short-range model finds again in both
# windows but scores under `min_confidence` (a face without its head around it, a gray or blurred face: FER+'s
# tight crops score 0.5-0.7) is a face when O-Net says so with ONET_SCORE. Neither alone is enough: O-Net says
# "face" to some hands, MediaPipe's low scores come on textures. ONET_SCORE was chosen with
# `python -m emotion.bench --only onet` (FER+ valid faces; hands of the gesture photos' train split and other frames
# of the pose videos), never on the benchmark's test pictures.
ONET_GROW, ONET_SCORE = 1.2, 0.9
# A box found in a tile and scoring under TILE_SURE_SCORE is a face only when O-Net agrees too: in photos of
# people, the short-range model shown a tile takes shirt prints, logos and fists for faces at scores under 0.8,
# and they come back in both windows. Chosen with `python -m emotion.bench --only onet` on the gesture photos'
# train split, never the test split the benchmark uses (tile boxes kept from 0.7 without O-Net: 0.069 false
# faces per picture there; from 0.8: 0.005).
TILE_SURE_SCORE = 0.8


@dataclass(frozen=True)
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    score: float
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None  # (right, left) eye in pixels, MediaPipe only
    detector: str = "mediapipe_short"   # mediapipe_short, mediapipe_full, mediapipe_tile, haar (verified)
    keypoints: tuple[tuple[float, float], ...] | None = None  # MediaPipe's 6: eyes, nose tip, mouth, ear tragions
    onet: float | None = None   # O-Net's face probability when the box was kept through the second opinion

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

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h


def iou(a, b) -> float:
    """Intersection over union of two boxes (FaceBox or (x, y, w, h))."""
    ax, ay, aw, ah = a.as_tuple() if isinstance(a, FaceBox) else a
    bx, by, bw, bh = b.as_tuple() if isinstance(b, FaceBox) else b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


def _overlap_of_smaller(a: FaceBox, b: FaceBox) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return ix * iy / max(min(a.area, b.area), 1)


def merge_boxes(boxes: list[FaceBox], overlap: float = 0.5) -> list[FaceBox]:
    """One box per face: boxes from several models and tiles that cover the same face (IoU >= 0.3, or most of
    the smaller box inside the larger) are one group, and the group keeps its best-scoring box."""
    kept: list[FaceBox] = []
    for box in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(iou(box, other) < 0.3 and _overlap_of_smaller(box, other) < overlap for other in kept):
            kept.append(box)
    return kept


def plausible_face(box: FaceBox) -> bool:
    """Whether MediaPipe's keypoints sit where a face's do, whatever the roll: both eyes apart by 15-75% of the
    box width, the mouth 0.3-2.2 eye distances below the eye line, the nose between the eye line and the mouth,
    the mouth not far to the side. A box without keypoints (none given) passes."""
    if box.keypoints is None:
        return True
    points = np.asarray(box.keypoints, dtype=float)
    right, left, nose, mouth = points[:4]
    distance = float(np.hypot(*(left - right)))
    if not 0.15 * box.w <= distance <= 0.75 * box.w:
        return False
    along = (left - right) / distance
    down = np.array([-along[1], along[0]])  # image y grows downwards
    middle = (left + right) / 2
    mouth_down, nose_down = float((mouth - middle) @ down), float((nose - middle) @ down)
    mouth_side = abs(float((mouth - middle) @ along))
    return 0.3 * distance <= mouth_down <= 2.2 * distance and 0.0 < nose_down < mouth_down and mouth_side < 0.8 * distance


def tile_windows(width: int, height: int, min_face: int) -> list[tuple[int, int, int]]:
    """Square windows (x, y, side) in which the short-range model sees every face from `min_face` pixels up to
    what the whole-picture pass finds: sides halve from 0.66 of the shorter side, neighbours overlap by half."""
    windows = []
    lo, hi = TILE_FACE_FRACTION
    side = int(min(width, height) * 0.66)
    while min_face > 0 and side * hi >= min_face and side >= 24:
        step = max(side // 2, 1)
        xs = sorted({*range(0, max(width - side, 0) + 1, step), max(width - side, 0)})
        ys = sorted({*range(0, max(height - side, 0) + 1, step), max(height - side, 0)})
        windows += [(x, y, side) for y in ys for x in xs]
        if side * lo <= min_face:
            break
        side //= 2
    return windows


class FaceDetector:
    """Face detector. `backend`: mediapipe (short- and full-range models, tiles for small faces), haar (the
    OpenCV cascade, each box verified by MediaPipe's short-range model around it), none (no detection).

    `min_face`: the smallest face side in pixels that the tiles look for (0: whole-picture passes only);
    `tiles_if_none`: search the tiles only when the whole-picture passes found nothing (callers that want one face).
    `min_size`: boxes smaller than this are not faces. `margin` widens the square crop around the box (the
    FER faces include forehead and chin); `align` levels the eyes first when the detector gives them.
    `second_opinion`: confirmed boxes scoring under `min_confidence` (under `tile_sure_score` when found in a tile)
    are kept only when MTCNN's O-Net gives them at least this face probability (default `ONET_SCORE`; None: never,
    and `min_confidence` alone decides); their detector name ends in `+onet`."""

    def __init__(self, backend: str = "mediapipe", min_confidence: float = 0.7, margin: float = 0.25, align: bool = True,
                 min_face: int = 0, min_size: int = 12, confirm: bool = True, tiles_if_none: bool = False,
                 second_opinion: float | None = ONET_SCORE, tile_sure_score: float = TILE_SURE_SCORE):
        if backend not in DETECTORS:
            raise ValueError(f"unknown face detector {backend!r}; choose one of {DETECTORS}")
        self.margin, self.align, self.min_confidence = margin, align, min_confidence
        self.min_face, self.min_size, self.confirm, self.tiles_if_none = min_face, min_size, confirm, tiles_if_none
        self.backend = backend
        self.second_opinion = second_opinion if confirm and backend == "mediapipe" else None
        self.tile_sure_score = max(tile_sure_score, min_confidence) if self.second_opinion is not None else min_confidence
        self._short = self._full = self._haar = self._onet = None
        if backend in ("mediapipe", "haar"):
            import mediapipe as mp

            # model_selection=0: short range (faces within ~2 m); 1: full range (up to ~5 m). Both are needed.
            self._short = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=CONFIRM_SCORE)
        if backend == "mediapipe":
            import mediapipe as mp

            self._full = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=CONFIRM_SCORE)
        if backend == "haar":
            import cv2

            self._haar = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    # ------------------------------------------------------------------------------------ detection
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Every face in an RGB uint8 image, largest first ([] when there is none)."""
        if self.backend == "none" or rgb.size == 0:
            return []
        rgb = np.ascontiguousarray(rgb[..., :3])
        if self.backend == "haar":
            boxes = [box for candidate in self._detect_haar(rgb) for box in self._verify(rgb, candidate)]
        else:
            # whole-picture boxes from CONFIRM_SCORE on (a small face scores low there and high in a window
            # around it), tile boxes from min_confidence on (from CONFIRM_SCORE with the second opinion)
            low = CONFIRM_SCORE if self.confirm else self.min_confidence
            tile_low = CONFIRM_SCORE if self.second_opinion is not None else self.min_confidence
            boxes = self._run(self._short, rgb, "mediapipe_short", min_score=low) + \
                self._run(self._full, rgb, "mediapipe_full", min_score=low)
            height, width = rgb.shape[:2]
            windows = tile_windows(width, height, self.min_face)
            if self.tiles_if_none and boxes:   # one face is all the caller wants, and there is one
                windows = []
            for x, y, side in windows:
                boxes += self._run(self._short, rgb[y:y + side, x:x + side], "mediapipe_tile", (x, y),
                                   min_score=tile_low)
            boxes = merge_boxes(boxes)
            if self.confirm:
                boxes = merge_boxes([again for again in (self.confirmed(rgb, box) for box in boxes) if again is not None])
        return sorted(boxes, key=lambda b: b.area, reverse=True)

    def confirmed(self, rgb: np.ndarray, box: FaceBox) -> FaceBox | None:
        """The short-range model finds the face again in two windows around the box (other views of the same
        pixels: most false boxes on textures, torsos and hands do not come back), and the best score of the box
        and of its views reaches `min_confidence`. The box kept is the best-scoring one of the three (the
        full-range model's boxes are looser: a view's box counts as the same face when IoU >= 0.5 or when it lies
        inside the box and covers at least a third of it). With `second_opinion`, a box under that score (under
        `tile_sure_score` for a box found in a tile) is kept only when O-Net says face too (`onet_score`). None when
        not confirmed."""
        best = box
        for scale in CONFIRM_SCALES:
            again = [other for other in self.detect_near(rgb, box, scale) if iou(other, box) >= CONFIRM_IOU
                     or (_overlap_of_smaller(other, box) >= 0.8 and other.area >= box.area / 3)]
            if not again:
                return None
            best = max([best, *again], key=lambda b: b.score)
        if best.score >= (self.tile_sure_score if box.detector == "mediapipe_tile" else self.min_confidence):
            return best if best is box else FaceBox(best.x, best.y, best.w, best.h, best.score, best.eyes, box.detector,
                                                    best.keypoints)
        onet = self.onet_score(rgb, box) if self.second_opinion is not None else 0.0
        if self.second_opinion is None or onet < self.second_opinion:
            return None
        return FaceBox(best.x, best.y, best.w, best.h, best.score, best.eyes, box.detector + "+onet", best.keypoints, onet)

    def onet_score(self, rgb: np.ndarray, box: FaceBox) -> float:
        """MTCNN O-Net's face probability for a square `ONET_GROW` times the box's side around its centre (black
        outside the picture), resized to O-Net's 48 px input."""
        import cv2

        if self._onet is None:
            self._onet = onet_session()
        x, y, w, h = box.as_tuple()
        side = max(int(round(max(w, h) * ONET_GROW)), 1)
        x0, y0 = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
        height, width = rgb.shape[:2]
        square = np.zeros((side, side, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
        if sx1 > sx0 and sy1 > sy0:
            square[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1, :3]
        square = cv2.resize(square, (48, 48), interpolation=cv2.INTER_AREA if side > 48 else cv2.INTER_LINEAR)
        x = ((square.astype(np.float32) - 127.5) * 0.0078125).transpose(2, 0, 1)[None]
        return float(self._onet.run(["probability"], {"faces": x})[0][0, 1])

    def detect_near(self, rgb: np.ndarray, box: FaceBox | tuple, scale: float = 2.2) -> list[FaceBox]:
        """Faces in a square window `scale` times the side of `box` around its centre (one short-range call):
        how a tracker finds a known face again in the next frame, at any distance."""
        if self.backend == "none" or rgb.size == 0:
            return []
        x, y, w, h = box.as_tuple() if isinstance(box, FaceBox) else box
        height, width = rgb.shape[:2]
        side = int(max(w, h) * scale)
        x0 = int(np.clip(x + w / 2 - side / 2, 0, max(width - side, 0)))
        y0 = int(np.clip(y + h / 2 - side / 2, 0, max(height - side, 0)))
        window = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side, :3])
        return merge_boxes(self._run(self._short, window, "mediapipe_short", (x0, y0), min_score=CONFIRM_SCORE))

    def _run(self, model, rgb: np.ndarray, name: str, offset: tuple[int, int] = (0, 0),
             min_score: float = CONFIRM_SCORE) -> list[FaceBox]:
        if model is None or min(rgb.shape[:2]) < 8:
            return []
        height, width = rgb.shape[:2]
        result = model.process(np.ascontiguousarray(rgb))
        boxes = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            x, y = rel.xmin * width, rel.ymin * height
            x0, y0 = max(x, 0.0), max(y, 0.0)
            w, h = min(x + rel.width * width, width) - x0, min(y + rel.height * height, height) - y0
            points = tuple((p.x * width + offset[0], p.y * height + offset[1])
                           for p in detection.location_data.relative_keypoints)
            box = FaceBox(int(x0) + offset[0], int(y0) + offset[1], int(w), int(h), float(detection.score[0]),
                          (points[0], points[1]) if len(points) >= 2 else None, name, points if len(points) >= 4 else None)
            if self.is_face(box, min_score):
                boxes.append(box)
        return boxes

    def is_face(self, box: FaceBox, min_score: float | None = None) -> bool:
        """Score, size and keypoint layout (`plausible_face`) all say face."""
        min_score = self.min_confidence if min_score is None else min_score
        return (box.score >= min_score and min(box.w, box.h) >= self.min_size
                and 0.5 <= box.w / max(box.h, 1) <= 2.0 and plausible_face(box))

    def _detect_haar(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        import cv2

        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = 640 / max(gray.shape) if max(gray.shape) > 640 else 1.0  # huge photos: detect on a smaller copy
        small = cv2.resize(gray, None, fx=scale, fy=scale) if scale != 1.0 else gray
        min_size = max(16, int(self.min_face * scale), int(min(small.shape) * 0.05))
        found = self._haar.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
        return [(int(x / scale), int(y / scale), int(w / scale), int(h / scale)) for x, y, w, h in found]

    def _verify(self, rgb: np.ndarray, candidate: tuple[int, int, int, int]) -> list[FaceBox]:
        """A Haar box is a face only if MediaPipe's short-range model, shown a window around it, finds a face
        there (same score, size and keypoint checks) that overlaps it; the kept box is MediaPipe's."""
        found = [box for box in self.detect_near(rgb, candidate) if box.score >= self.min_confidence
                 and (iou(box, candidate) >= 0.3
                 or _overlap_of_smaller(box, FaceBox(*candidate, 1.0)) >= 0.7)]
        return [FaceBox(b.x, b.y, b.w, b.h, b.score, b.eyes, "haar", b.keypoints) for b in found[:1]]

    # ------------------------------------------------------------------------------------ cropping
    def square_crop(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        """A square crop around `box` widened by `margin`, clipped to the image; eyes levelled when `align`."""
        height, width = rgb.shape[:2]
        side = int(max(box.w, box.h) * (1 + self.margin))
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        x0 = int(np.clip(cx - side / 2, 0, max(width - side, 0)))
        y0 = int(np.clip(cy - side / 2, 0, max(height - side, 0)))
        if self.align and abs(box.eye_angle) > 1.0:
            import cv2

            # The frame turned about the face centre (edges replicated), then cropped centred on the face: one
            # warp straight into the crop, so only the crop's pixels are computed.
            turn = cv2.getRotationMatrix2D((cx, cy), box.eye_angle, 1.0)
            turn[:, 2] -= (x0, y0)
            return cv2.warpAffine(rgb, turn, (min(side, width - x0), min(side, height - y0)), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        return rgb[y0:y0 + side, x0:x0 + side]

    def crop(self, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        """(largest face crop, True), or (the whole image, False) when no face is found: the caller decides
        what a whole-picture answer means (and says so)."""
        face, box = self.crop_box(rgb)
        return face, box is not None

    def crop_box(self, rgb: np.ndarray) -> tuple[np.ndarray, FaceBox | None]:
        boxes = self.detect(rgb)
        if not boxes:
            return rgb, None
        return self.square_crop(rgb, boxes[0]), boxes[0]

    __call__ = crop

    def close(self) -> None:
        for model in (self._short, self._full):
            if model is not None:
                model.close()
        self._short = self._full = self._onet = None


def onet_weights():
    """facenet-pytorch's `onet.pt` (MTCNN's O-Net, inside the wheel), found without importing the package."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("facenet-pytorch is not installed (it ships MTCNN's O-Net weights): `uv sync`")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "onet.pt"


def onet_session(threads: int = 1):
    """An onnxruntime session of O-Net (input `faces` N x 3 x 48 x 48 RGB scaled to [-1, 1]; outputs `box`,
    `landmarks`, `probability`), exported from facenet-pytorch once into .cache/emotion/onnx/ (PyTorch is
    imported only then)."""
    from core.onnx import cached_onnx_session, export_onnx

    def export(target):
        import torch
        from facenet_pytorch.models.mtcnn import ONet

        return export_onnx(ONet(pretrained=True).eval(), torch.zeros(1, 3, 48, 48), target, ["faces"],
                           ["box", "landmarks", "probability"], {"model": "MTCNN O-Net (facenet-pytorch 2.6.0)"},
                           task="emotion")

    return cached_onnx_session(onet_weights(), "emotion", export, threads, backend="onnx", key="onet")
