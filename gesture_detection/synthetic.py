"""Generated hand landmarks for the demo and the tests: 21 points in MediaPipe's order for the six
MachinesCanSee gestures, from a simple kinematic hand (five fingers, bent joints, random pose).

Landmark order as MediaPipe: 0 wrist; thumb 1-4; index 5-8; middle 9-12; ring 13-16; pinky 17-20.
A finger is "extended" (joints straight) or "folded" (each joint bent about 80 degrees towards the
camera and back to the palm). The whole hand is rotated, scaled, mirrored (left hands) and jittered.
"""
from __future__ import annotations

import numpy as np

from gesture_detection.detect import Detection

# per finger: base angle from the wrist (degrees from "up", towards the thumb side negative),
# distance of the first joint from the wrist, segment lengths (palm-width units)
FINGERS = {
    "thumb": (-55, 0.35, (0.35, 0.3, 0.25)),
    "index": (-14, 0.95, (0.4, 0.25, 0.2)),
    "middle": (0, 1.0, (0.45, 0.28, 0.22)),
    "ring": (13, 0.95, (0.42, 0.26, 0.2)),
    "pinky": (27, 0.85, (0.32, 0.2, 0.18)),
}
EXTENDED, FOLDED = 0.0, 80.0

# bend in degrees per finger, and the hand's rotation in degrees (0 = fingers up)
GESTURES: dict[str, tuple[dict[str, float], float]] = {
    "stop": ({"thumb": EXTENDED, "index": EXTENDED, "middle": EXTENDED, "ring": EXTENDED, "pinky": EXTENDED}, 0),
    "victory": ({"thumb": FOLDED, "index": EXTENDED, "middle": EXTENDED, "ring": FOLDED, "pinky": FOLDED}, 0),
    "mute": ({"thumb": FOLDED, "index": EXTENDED, "middle": FOLDED, "ring": FOLDED, "pinky": FOLDED}, 0),
    "ok": ({"thumb": 30.0, "index": 45.0, "middle": EXTENDED, "ring": EXTENDED, "pinky": EXTENDED}, 0),
    "like": ({"thumb": EXTENDED, "index": FOLDED, "middle": FOLDED, "ring": FOLDED, "pinky": FOLDED}, 55),
    "dislike": ({"thumb": EXTENDED, "index": FOLDED, "middle": FOLDED, "ring": FOLDED, "pinky": FOLDED}, 235),
}
# like and dislike are the same hand turned over: only where it points tells them apart
ORIENTED_GESTURES = ("like", "dislike")


def _rotation_z(degrees: float) -> np.ndarray:
    r = np.radians(degrees)
    return np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])


def hand_landmarks(gesture: str, rng: np.random.Generator, size: float = 80.0, centre=(200.0, 150.0),
                   jitter: float = 1.0) -> tuple[np.ndarray, str]:
    """(21 x 3 landmarks in pixels, handedness) for one random hand showing `gesture`."""
    bends, rotation = GESTURES[gesture]
    return posed_hand(bends, rotation, rng, size, centre, jitter)


def posed_hand(bends: dict[str, float], rotation: float, rng: np.random.Generator, size: float = 80.0,
               centre=(200.0, 150.0), jitter: float = 1.0) -> tuple[np.ndarray, str]:
    """(21 x 3 landmarks in pixels, handedness) for one random hand with each finger bent by `bends`
    degrees per joint (EXTENDED, FOLDED or between), turned by `rotation` degrees (0 = fingers up)."""
    points = [np.zeros(3)]
    for name, (angle, base, segments) in FINGERS.items():
        angle += rng.normal(0, 4 * jitter)
        direction = np.array([np.sin(np.radians(angle)), -np.cos(np.radians(angle)), 0.0])
        joint = direction * base
        points.append(joint.copy())
        bend = bends[name] + rng.normal(0, 8 * jitter)
        for k, length in enumerate(segments):
            # bend about the axis across the finger: towards the camera (-z), then back to the palm
            total = np.radians(bend * (k + 1) if name != "thumb" else bend * (k + 1) * 0.8)
            if name == "thumb":  # the thumb folds across the palm rather than towards the camera
                across = np.array([-direction[1], direction[0], 0.0])
                step = np.cos(total) * direction + np.sin(total) * across
            else:
                step = np.cos(total) * direction + np.sin(total) * np.array([0.0, 0.0, -1.0]) + \
                       (1 - np.cos(total)) * 0.3 * -direction
            joint = joint + length * step / np.linalg.norm(step)
            points.append(joint.copy())
    hand = np.stack(points)
    hand = hand @ _rotation_z(rotation + rng.normal(0, 12 * jitter)).T
    hand *= size * rng.uniform(0.8, 1.25)
    handedness = "Right"
    if rng.random() < 0.5:
        hand[:, 0] *= -1
        handedness = "Left"
    hand[:, :2] += np.asarray(centre) + rng.normal(0, 20, size=2)
    return hand.astype(np.float32), handedness


def synthetic_detections(n_per_class: int, seed: int = 0, gestures=tuple(GESTURES)) -> tuple[list[Detection], list[str]]:
    """Detections carrying generated landmarks (as MediaPipe would give them) and their gestures."""
    rng = np.random.default_rng(seed)
    detections, labels = [], []
    for gesture in gestures:
        for _ in range(n_per_class):
            points, handedness = hand_landmarks(gesture, rng)
            box = np.r_[points[:, :2].min(axis=0), points[:, :2].max(axis=0)].astype(np.float32)
            detections.append(Detection(box, 0.95, points, handedness, "synthetic"))
            labels.append(gesture)
    return detections, labels
