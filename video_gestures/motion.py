"""Dynamic gestures generated from real hand photos: one photo moved over time.

Eight classes in four time-reversed pairs: swipe left/right, swipe up/down, zoom in/out, rotate
clockwise/counter-clockwise. Each clip pastes a hand crop (from the gesture_detection photos and their
boxes) on a varied background (flat colour with noise, a gradient, or a blurred piece of another photo)
and moves it with a random amplitude, onset and end pause. The two classes of a pair are exact time
reversals with the same distribution of start/end points and pauses, so their frames, taken as a set,
look alike: only the order tells them apart. With frames shuffled in time a model can still tell the
four motion kinds apart (a zoomed frame is not a swiped one) but not the direction, so the control's
chance level is 1/2 overall and 1/2 for the direction within the true pair.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from core.io import InputError, read_image, write_image

MOTIONS = ("swipe_left", "swipe_right", "swipe_up", "swipe_down", "zoom_in", "zoom_out", "rotate_cw", "rotate_ccw")
PAIRS = {name: i // 2 for i, name in enumerate(MOTIONS)}  # class → its time-reversal pair


def load_hand_crops(labels_csv: str | os.PathLike, limit: int = 60, size: int = 40, seed: int = 0,
                    split: str | None = None) -> list[np.ndarray]:
    """Square hand crops (box enlarged by 20%) resized to `size`, from a gesture_detection `labels.csv`
    (image,split,width,height,class,xmin,ymin,xmax,ymax). Unreadable images are skipped."""
    import cv2

    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise InputError(labels_csv, "file not found")
    with open(labels_csv, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("xmin") and (split is None or r.get("split") == split)]
    if not rows:
        raise InputError(labels_csv, "no rows with hand boxes")
    rng = np.random.default_rng(seed)
    crops = []
    for index in rng.permutation(len(rows)):
        row = rows[index]
        try:
            image = read_image(labels_csv.parent / row["image"])
        except InputError:
            continue
        x0, y0, x1, y1 = (float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        side = max(x1 - x0, y1 - y0) * 1.2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
        crop = image[top:int(min(cy + side / 2, image.shape[0])), left:int(min(cx + side / 2, image.shape[1]))]
        if min(crop.shape[:2]) < 8:
            continue
        crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
        if len(crops) >= limit:
            break
    if not crops:
        raise InputError(labels_csv, "no readable hand crops")
    return crops


def background(rng: np.random.Generator, size: int, photos: Sequence[np.ndarray] = ()) -> np.ndarray:
    import cv2

    kind = rng.integers(3 if len(photos) else 2)
    if kind == 0:
        canvas = np.full((size, size, 3), rng.integers(0, 256, 3), dtype=np.float32)
        canvas += rng.normal(0, 12, canvas.shape)
    elif kind == 1:
        ramp = np.linspace(0, 1, size, dtype=np.float32)
        ramp = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        canvas = np.broadcast_to(a + (b - a) * ramp, (size, size, 3)).astype(np.float32)
    else:
        photo = photos[rng.integers(len(photos))]
        canvas = cv2.GaussianBlur(cv2.resize(photo, (size, size)), (0, 0), 3).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _progress(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Motion progress 0 → 1 per frame with a random pause at the start and at the end (same distribution,
    so reversing the clip gives the same kind of timing)."""
    onset, tail = rng.uniform(0, 0.2, 2)
    t = np.linspace(0, 1, num_frames)
    return np.clip((t - onset) / max(1 - onset - tail, 1e-3), 0, 1)


def render_motion(hand: np.ndarray, motion: str, rng: np.random.Generator, num_frames: int = 8, size: int = 96,
                  photos: Sequence[np.ndarray] = (), hand_fraction: tuple[float, float] = (0.4, 0.55)) -> np.ndarray:
    """(num_frames, size, size, 3) uint8: `hand` (its side a random `hand_fraction` of the frame) moved over a
    background as `motion`."""
    import cv2

    if motion not in PAIRS:
        raise ValueError(f"unknown motion {motion!r}; choose from {MOTIONS}")
    canvas = background(rng, size, photos)
    p = _progress(num_frames, rng)
    reverse = MOTIONS.index(motion) % 2 == 1
    if reverse:
        p = p[::-1]  # the pair's second class is the first played backwards
    base_scale = size * rng.uniform(*hand_fraction) / hand.shape[0]
    cx, cy = rng.uniform(0.4, 0.6, 2) * size
    amplitude = rng.uniform(0.3, 0.5) * size  # speed: distance covered in the clip
    kind = motion.split("_")[0] + ("_h" if motion in ("swipe_left", "swipe_right") else "")
    frames = []
    for progress in p:
        x, y, scale, angle = cx, cy, base_scale, 0.0
        if kind == "swipe_h":  # swipe_left: from right to left
            x = cx + amplitude * (0.5 - progress)
        elif kind == "swipe":  # swipe_up: from bottom to top
            y = cy + amplitude * (0.5 - progress)
        elif kind == "zoom":  # zoom_in: grows
            scale = base_scale * (0.6 + 0.8 * progress)
        else:  # rotate_cw: clockwise on screen = negative angle in OpenCV's convention
            angle = 50.0 * (0.5 - progress) * 2
        x, y = x + rng.normal(0, 0.6), y + rng.normal(0, 0.6)  # hand shake
        matrix = cv2.getRotationMatrix2D((hand.shape[1] / 2, hand.shape[0] / 2), angle, scale)
        matrix[:, 2] += (x - hand.shape[1] / 2, y - hand.shape[0] / 2)
        warped = cv2.warpAffine(hand, matrix, (size, size))
        mask = cv2.warpAffine(np.ones(hand.shape[:2], np.float32), matrix, (size, size))[..., None]
        frames.append((canvas * (1 - mask) + warped * mask).astype(np.uint8))
    return np.stack(frames)


@dataclass
class MotionSet:
    clips: np.ndarray  # (N, T, H, W, 3) uint8
    targets: np.ndarray
    hands: np.ndarray  # index of the hand photo (group for the split: a photo is in one split only)
    labels: list[str]


def generate_motion_set(hands: Sequence[np.ndarray], clips_per_class: int = 24, num_frames: int = 8, size: int = 96,
                        seed: int = 0, motions: Sequence[str] = MOTIONS,
                        hand_fraction: tuple[float, float] = (0.4, 0.55)) -> MotionSet:
    rng = np.random.default_rng(seed)
    clips, targets, hand_ids = [], [], []
    for k, motion in enumerate(motions):
        for _ in range(clips_per_class):
            h = int(rng.integers(len(hands)))
            clips.append(render_motion(hands[h], motion, rng, num_frames, size, hands, hand_fraction))
            targets.append(k)
            hand_ids.append(h)
    return MotionSet(np.stack(clips), np.array(targets), np.array(hand_ids), list(motions))


def write_motion_folders(motion_set: MotionSet, root: str | os.PathLike) -> Path:
    """The set in the original layout: `root/<class>/<video_id>_frame_<n>.jpg`."""
    root = Path(root)
    for i, (clip, target) in enumerate(zip(motion_set.clips, motion_set.targets)):
        for n, frame in enumerate(clip):
            write_image(root / motion_set.labels[target] / f"clip{i:04d}_frame_{n}.jpg", frame)
    return root
