"""The released weights: what each task's CLIs load when no model is given.

`make weights` (`python -m core.release`) trains each task's default model with its bench recipe on
../shared/data and writes the files below, plus `weights/MANIFEST.json` (bytes, sha256, the train command,
data, headline metric, date, library versions). Every CLI that needs a model defaults to `released(...)`,
so a fresh clone predicts without training.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from core.env import REPO_ROOT
from core.io import InputError

WEIGHTS_DIR = REPO_ROOT / "weights"
MANIFEST = WEIGHTS_DIR / "MANIFEST.json"

# task -> name -> file under weights/<task>/; the names are what the tasks' CLIs ask for, and `checkpoint` is the
# Lightning checkpoint an ONNX export was made from (`make weights`; pass it to run the model in PyTorch)
FILES = {
    "speaker_id": {"checkpoint": "cnn.ckpt", "cnn": "cnn.onnx"},  # cnn: its ONNX export, what the CLIs load
    "gesture_detection": {"landmark_linto": "landmark_linto.joblib",
                          "landmark_hands_dataset": "landmark_hands_dataset.joblib"},
    "emotion": {"checkpoint": "emotion.ckpt", "recognizer": "emotion.onnx"},  # the recognizer: its ONNX export
    "video_gestures": {"checkpoint": "points.ckpt", "points": "points.onnx"},  # points: its ONNX export
    "action_recognition": {"checkpoint": "frame.ckpt", "frame": "frame.onnx"},  # frame: its ONNX export
}


def weights_path(task: str, name: str) -> Path:
    """Where a released file lives (it may be missing); see `released` for the checked version."""
    return WEIGHTS_DIR / task / FILES[task][name]


def released(task: str, name: str) -> Path:
    """The released file of `task` called `name`, or an InputError that says how to get it."""
    path = weights_path(task, name)
    if not path.is_file():
        raise InputError(path, "released weights not found; run `make weights` or pass a model file "
                               "(--checkpoint / --weights / --model)")
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest() -> dict:
    """weights/MANIFEST.json as a dict ({} before `make weights` ran)."""
    return json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
