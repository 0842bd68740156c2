"""Following one person with MediaPipe Pose (legacy, single-person) in a video with several people.

MediaPipe's legacy Pose is a single-person tracker. It finds a person with
its detector, then follows the landmarks' region from frame to frame, and re-detects only when it
loses them; the re-detection may pick someone else. So: on the first detection an OpenCV HOG people
detector lists the people, and the target is the largest, with closeness to the centre as the tie
breaker; if that is not the person MediaPipe chose, Pose runs on a crop around the target. Every
later frame must stay near the target's last box; a jump to another place is refused and Pose is
re-run on a crop around the target; if that fails too, the frame is a gap. After one second
without the target, it is chosen again. Limits: HOG misses small, seated or partly hidden people,
and two people who overlap in the image can still be confused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def landmark_box(image: np.ndarray, visibility: np.ndarray, threshold: float = 0.5) -> np.ndarray | None:
    """(x0, y0, x1, y1) normalised box of the visible landmarks."""
    keep = (visibility >= threshold) & np.isfinite(image[:, 0])
    if keep.sum() < 3:
        return None
    xy = image[keep, :2]
    return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()])


def choose_target(boxes: list[np.ndarray]) -> int:
    """Index of the person to follow: the largest box; boxes within 20% of the largest area are
    ranked by closeness of their centre to the image centre. Boxes are normalised (x0, y0, x1, y1)."""
    areas = np.array([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes])
    contenders = np.flatnonzero(areas >= 0.8 * areas.max())
    distance = [np.hypot((boxes[i][0] + boxes[i][2]) / 2 - 0.5, (boxes[i][1] + boxes[i][3]) / 2 - 0.5) for i in contenders]
    return int(contenders[int(np.argmin(distance))])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def grow_box(box: np.ndarray, factor: float) -> np.ndarray:
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * factor
    return np.concatenate([centre - half, centre + half])


def same_person(box: np.ndarray, target: np.ndarray) -> bool:
    """True when `box` is where the target could be one frame later (centre within half its size)."""
    size = max(target[2] - target[0], target[3] - target[1], 1e-6)
    shift = np.hypot((box[0] + box[2] - target[0] - target[2]) / 2, (box[1] + box[3] - target[1] - target[3]) / 2)
    return bool(shift < 0.5 * size)


class HogPeopleDetector:
    """OpenCV's HOG + linear SVM people detector (ships with OpenCV, no download)."""

    def __init__(self, width: int = 480, min_weight: float = 0.3):
        import cv2

        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.width, self.min_weight = width, min_weight

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        import cv2

        height, width = rgb.shape[:2]
        scale = min(1.0, self.width / width)
        gray = cv2.cvtColor(cv2.resize(rgb, None, fx=scale, fy=scale) if scale < 1 else rgb, cv2.COLOR_RGB2GRAY)
        window_width, window_height = self.hog.winSize
        if gray.shape[0] < window_height or gray.shape[1] < window_width:
            return []   # smaller than one detection window: OpenCV's detectMultiScale crashes (segfault) on it
        boxes, weights = self.hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
        return [np.array([x / scale / width, y / scale / height, (x + w) / scale / width, (y + h) / scale / height])
                for (x, y, w, h), weight in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights))
                if weight >= self.min_weight]


@dataclass
class PoseResult:
    image: np.ndarray       # (33, 3)
    world: np.ndarray       # (33, 3)
    visibility: np.ndarray  # (33,)

    @property
    def box(self) -> np.ndarray | None:
        return landmark_box(self.image, self.visibility)


class PersonFollower:
    """MediaPipe Pose (model_complexity=1, the model that ships in the wheel) that follows one person."""

    def __init__(self, fps: float, detect_people: bool = True, people_detector=None):
        """`people_detector`: rgb -> list of normalised (x0, y0, x1, y1) boxes; default OpenCV's HOG."""
        import mediapipe as mp

        self._pose_cls = mp.solutions.pose.Pose
        self.tracker = self._pose_cls(static_image_mode=False, model_complexity=1, smooth_landmarks=False)
        self.crop_pose = None
        self.people = (people_detector or HogPeopleDetector()) if detect_people else None
        self.target: np.ndarray | None = None
        self.crop_mode = False
        self.missed, self.max_missed = 0, max(1, int(round(fps)))
        self.stats = {"frames_on_crop": 0, "jumps_refused": 0, "target_choices": 0}

    def close(self) -> None:
        self.tracker.close()
        if self.crop_pose is not None:
            self.crop_pose.close()

    @staticmethod
    def _result(landmarks, world_landmarks) -> PoseResult:
        image = np.array([[p.x, p.y, p.z] for p in landmarks.landmark])
        visibility = np.array([p.visibility for p in landmarks.landmark])
        world = np.array([[p.x, p.y, p.z] for p in world_landmarks.landmark])
        return PoseResult(image, world, visibility)

    def _on_crop(self, rgb: np.ndarray, box: np.ndarray) -> PoseResult | None:
        """Pose on a square crop around `box` grown 1.5x, mapped back to full-image coordinates."""
        if self.crop_pose is None:
            self.crop_pose = self._pose_cls(static_image_mode=True, model_complexity=1)
        height, width = rgb.shape[:2]
        cx, cy = (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height
        half = 0.75 * max((box[2] - box[0]) * width, (box[3] - box[1]) * height)
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(width, cx + half)), int(min(height, cy + half))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        found = self.crop_pose.process(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        if found.pose_landmarks is None:
            return None
        result = self._result(found.pose_landmarks, found.pose_world_landmarks)
        crop_width = x1 - x0
        result.image[:, 0] = (x0 + result.image[:, 0] * crop_width) / width
        result.image[:, 1] = (y0 + result.image[:, 1] * (y1 - y0)) / height
        result.image[:, 2] = result.image[:, 2] * crop_width / width
        self.stats["frames_on_crop"] += 1
        return result

    def _choose(self, rgb: np.ndarray, found: PoseResult | None) -> PoseResult | None:
        """First sight (or after losing the target): pick the largest / most central person.

        People are compared by their HOG boxes (loose, with a margin); MediaPipe's person is the HOG box
        that overlaps its landmarks most, or its landmark box grown by a HOG-like margin if HOG missed it."""
        boxes = self.people(rgb) if self.people is not None else []
        own = found.box if found is not None else None
        own_index = None
        if own is not None:
            overlaps = [box_iou(b, own) for b in boxes]
            if overlaps and max(overlaps) >= 0.3:
                own_index = int(np.argmax(overlaps))
            else:
                boxes.append(grow_box(own, 1.25))
                own_index = len(boxes) - 1
        if not boxes:
            return None
        self.stats["target_choices"] += 1
        chosen = choose_target(boxes)
        if chosen == own_index:
            self.crop_mode = False
            return found
        self.crop_mode = True
        return self._on_crop(rgb, boxes[chosen])

    def __call__(self, rgb: np.ndarray) -> PoseResult | None:
        processed = self.tracker.process(rgb)
        found = (self._result(processed.pose_landmarks, processed.pose_world_landmarks)
                 if processed.pose_landmarks is not None else None)
        if self.target is None:
            result = self._choose(rgb, found)
        elif not self.crop_mode and found is not None and found.box is not None and same_person(found.box, self.target):
            result = found
        else:
            if found is not None and found.box is not None and not self.crop_mode:
                self.stats["jumps_refused"] += 1
            result = self._on_crop(rgb, self.target)
            if result is not None and (result.box is None or not same_person(result.box, self.target)):
                result = None
            if found is not None and found.box is not None and same_person(found.box, self.target):
                result, self.crop_mode = found, False  # the tracker is back on the target
        if result is not None and result.box is not None:
            self.target, self.missed = result.box, 0
            return result
        self.missed += 1
        if self.missed > self.max_missed:
            self.target, self.crop_mode = None, False
        return None
