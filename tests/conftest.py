"""Shared fixtures. Network access is blocked for the whole suite (pytest-socket, see pyproject.toml),
so a hidden download fails a test here instead of hanging for a user."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import core  # noqa: F401  (sets the offline environment before any library is imported)
from core.env import SHARED_DATA


def write_faststart_mp4(path: Path, frames: int, fps: int = 10) -> Path:
    """A real H.264 mp4 with its index (moov) first, so that cutting the file's end keeps the header
    (the container still states every frame while only the first part decodes)."""
    import imageio_ffmpeg
    import numpy as np

    writer = imageio_ffmpeg.write_frames(str(path), (64, 48), fps=fps, output_params=["-movflags", "+faststart"])
    writer.send(None)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.send(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))  # noise: every frame takes real bytes
    writer.close()
    return path


def shared_data_path(*parts: str) -> Path:
    """A path under ../shared/data; skips the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set SHARED_DATA_DIR or put shared/ beside the repo)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    """The benchmarks and targets assume 2 CPU threads; keep tests comparable on bigger machines."""
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


# ----------------------------------------------------------------------------------------- live demo models
# Quick stand-ins for the released weights (core.weights) the live demos default to: built in seconds from
# generated data, so the live tests run whether or not `make weights` has run. They check that the stages
# run and answer, not how well.
@pytest.fixture(scope="session")
def quick_landmark_model(tmp_path_factory) -> Path:
    """A landmark classifier (gesture_detection) fitted on generated hands, saved as landmark.joblib."""
    from gesture_detection.model import LandmarkClassifier
    from gesture_detection.synthetic import GESTURES, synthetic_detections

    hands, labels = synthetic_detections(8, seed=0)
    classifier = LandmarkClassifier(list(GESTURES), augmented_copies=0).fit(hands, labels)
    return classifier.save(tmp_path_factory.mktemp("gesture_model") / "landmark.joblib")


@pytest.fixture(scope="session")
def quick_emotion_onnx(tmp_path_factory) -> Path:
    """An untrained compact emotion network (40 px) exported to ONNX, which EmotionRecognizer takes as weights."""
    import torch

    from emotion.model import EmotionModule
    from emotion.recognizer import export_onnx

    torch.manual_seed(0)
    module = EmotionModule(architecture="compact_cnn", input_size=40, pretrained=False).eval()
    return export_onnx(module, tmp_path_factory.mktemp("emotion_model") / "emotion.onnx")


@pytest.fixture(scope="session")
def quick_points_checkpoint(tmp_path_factory) -> Path:
    """An untrained point-history SequenceModule (video_gestures) saved as a Lightning checkpoint."""
    import lightning
    import torch

    from video_gestures.model import SequenceModule

    torch.manual_seed(0)
    features = ["position", "velocity", "offset"]
    module = SequenceModule(["Stop", "Clockwise", "Counter Clockwise", "Move"], channels=len(features), features=2,
                            hidden=8, input_config={"source": "points", "point_features": features, "num_frames": 16,
                                                    "channel_names": features})
    path = tmp_path_factory.mktemp("points_model") / "points.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": lightning.__version__}, path)
    return path


@pytest.fixture(scope="session")
def quick_points_onnx(quick_points_checkpoint) -> Path:
    """`quick_points_checkpoint` exported to ONNX, as the released points.onnx is."""
    from video_gestures.model import export_checkpoint

    return export_checkpoint(quick_points_checkpoint, quick_points_checkpoint.with_suffix(".onnx"))


def write_photo_video(path: Path, rgb, frames: int, fps: int = 10, size: tuple[int, int] = (320, 240)) -> Path:
    """A video of a real photo drifting a few pixels per frame (MediaPipe tracks it like a camera's frames)."""
    import cv2
    import numpy as np

    from core.io import AtomicVideoWriter

    base = cv2.resize(np.asarray(rgb), size)
    with AtomicVideoWriter(path, fps, size) as writer:
        for i in range(frames):
            writer.write(np.roll(base, 2 * i, axis=1))
    return path
