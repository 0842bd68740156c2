"""Landmark sequences: the 33 MediaPipe Pose landmarks per frame, with gaps, and their JSON file format.

A gap is NaN: a frame where no person was found has NaN for every landmark (and `detected` False);
a single landmark judged unreliable (low visibility) can be NaN inside a detected frame.

JSON format (`write_landmarks_json`), a superset of the original script's list of `{name: {x, y, z}}`:
    {"format": "pose_smoothing/landmarks-v1", "fps": 25.0, "image_size": [w, h], "source": "...",
     "timestamps": [t0, t1, ...],                 # seconds, from the container
     "frames": [{"NOSE": {"x", "y", "z", "visibility"}, ...} | null, ...],   # image-normalised
     "world_frames": [{"NOSE": {"x", "y", "z"}, ...} | null, ...]}            # metres, hip-centred
`frames` alone is the original format (plus `visibility`); a frame with no person is `null`, a
landmark that is a gap has null coordinates. `read_landmarks_json` also reads a bare original list.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from core.io import IMAGE_EXTENSIONS, InputError, atomic_open, iter_video_frames, list_files, read_image, video_info

# Names and order of mediapipe.solutions.pose.PoseLandmark (checked against it in the tests),
# written out so that the numpy core does not import MediaPipe.
LANDMARK_NAMES: tuple[str, ...] = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP",
    "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL", "RIGHT_HEEL",
    "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)
NUM_LANDMARKS = len(LANDMARK_NAMES)
LANDMARK_INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}
JSON_FORMAT = "pose_smoothing/landmarks-v1"


@dataclass
class LandmarkSequence:
    """Per-frame landmarks of one person. Arrays are float64; NaN marks a gap.

    image:      (T, 33, 3) x, y normalised to [0, 1] by the image width and height, z relative depth
                (same scale as x), as MediaPipe returns them.
    world:      (T, 33, 3) metres, origin between the hips (MediaPipe's pose_world_landmarks).
    visibility: (T, 33) in [0, 1]; 0 where no person was detected.
    timestamps: (T,) seconds from the container (or index / fps).
    """

    image: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    timestamps: np.ndarray
    fps: float
    image_size: tuple[int, int] = (0, 0)
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image = np.asarray(self.image, dtype=np.float64)
        self.world = np.asarray(self.world, dtype=np.float64)
        self.visibility = np.asarray(self.visibility, dtype=np.float64)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        frames = self.timestamps.shape[0]
        for name, array, shape in (("image", self.image, (frames, NUM_LANDMARKS, 3)),
                                   ("world", self.world, (frames, NUM_LANDMARKS, 3)),
                                   ("visibility", self.visibility, (frames, NUM_LANDMARKS))):
            if array.shape != shape:
                raise ValueError(f"LandmarkSequence.{name}: shape {array.shape}, expected {shape}")
        if frames > 1 and np.any(np.diff(self.timestamps) <= 0):
            raise ValueError("LandmarkSequence.timestamps must increase strictly")

    def __len__(self) -> int:
        return self.timestamps.shape[0]

    @classmethod
    def empty(cls, frames: int, fps: float, timestamps: np.ndarray | None = None, **kwargs: Any) -> "LandmarkSequence":
        """A sequence of `frames` gaps (to be filled frame by frame)."""
        nan = np.full((frames, NUM_LANDMARKS, 3), np.nan)
        if timestamps is None:
            timestamps = np.arange(frames) / fps
        return cls(image=nan, world=nan.copy(), visibility=np.zeros((frames, NUM_LANDMARKS)),
                   timestamps=timestamps, fps=fps, **kwargs)

    @property
    def detected(self) -> np.ndarray:
        """(T,) True where at least one landmark has coordinates."""
        return ~np.all(np.isnan(self.image[..., 0]), axis=1)

    @property
    def detection_rate(self) -> float:
        return float(self.detected.mean()) if len(self) else 0.0

    def copy(self, **changes: Any) -> "LandmarkSequence":
        arrays = {k: getattr(self, k).copy() for k in ("image", "world", "visibility", "timestamps")}
        arrays.update(changes)
        return replace(self, meta=dict(self.meta), **arrays)


# ----------------------------------------------------------------------------------------- JSON
def _frame_dicts(coords: np.ndarray, visibility: np.ndarray | None,
                 names: Sequence[str] = LANDMARK_NAMES) -> list[dict | None]:
    """(T, N, 3) -> per frame {name: {x, y, z[, visibility]}} with None for NaN, or None for an all-NaN frame."""
    rounded = np.round(coords, 6)
    values = np.where(np.isnan(rounded), None, rounded).tolist()
    vis = np.round(visibility, 4).tolist() if visibility is not None else None
    empty = np.isnan(coords).all(axis=(1, 2)).tolist()
    frames: list[dict | None] = []
    for t, frame in enumerate(values):
        if empty[t]:
            frames.append(None)
        elif vis is None:
            frames.append({name: {"x": x, "y": y, "z": z} for name, (x, y, z) in zip(names, frame)})
        else:
            frames.append({name: {"x": x, "y": y, "z": z, "visibility": v}
                           for name, (x, y, z), v in zip(names, frame, vis[t])})
    return frames


def landmarks_to_json(sequence: LandmarkSequence, extra_vertices: dict[str, np.ndarray] | None = None) -> dict:
    """The JSON document for `sequence`. `extra_vertices` (name -> (T, 3) image coordinates, e.g. the
    neck-base and spine-base dummies) are added to every frame, as the original script did."""
    frames = _frame_dicts(sequence.image, sequence.visibility)
    if extra_vertices:
        extras = _frame_dicts(np.stack(list(extra_vertices.values()), axis=1), None, list(extra_vertices))
        for frame, extra in zip(frames, extras):
            if frame is not None and extra is not None:
                frame.update(extra)
    return {"format": JSON_FORMAT, "fps": sequence.fps, "image_size": list(sequence.image_size),
            "source": sequence.source, "landmark_names": list(LANDMARK_NAMES),
            "timestamps": np.round(sequence.timestamps, 6).tolist(),
            "frames": frames, "world_frames": _frame_dicts(sequence.world, None),
            **({"meta": sequence.meta} if sequence.meta else {})}


def write_landmarks_json(path: str | os.PathLike, sequence: LandmarkSequence,
                         extra_vertices: dict[str, np.ndarray] | None = None) -> Path:
    """Compact JSON (no indent: Python's fast C encoder only runs without one), written atomically."""
    with atomic_open(path) as handle:
        json.dump(landmarks_to_json(sequence, extra_vertices), handle, separators=(",", ":"))
        handle.write("\n")
    return Path(path)


def _frames_to_arrays(frames: Sequence[Any], label: str, with_visibility: bool) -> tuple[np.ndarray, np.ndarray]:
    coords = np.full((len(frames), NUM_LANDMARKS, 3), np.nan)
    visibility = np.zeros((len(frames), NUM_LANDMARKS))
    for t, frame in enumerate(frames):
        if frame is None:
            continue
        if not isinstance(frame, dict):
            raise InputError(label, f"frame {t} is {type(frame).__name__}, expected an object of landmarks or null")
        for i, name in enumerate(LANDMARK_NAMES):
            entry = frame.get(name)
            if entry is None:
                continue
            try:
                coords[t, i] = [np.nan if entry.get(k) is None else float(entry[k]) for k in ("x", "y", "z")]
            except (TypeError, ValueError, AttributeError) as error:
                raise InputError(label, f"frame {t}, landmark {name}: {error}") from error
            if with_visibility:
                visibility[t, i] = float(entry.get("visibility", 1.0) or 0.0)
    return coords, visibility


def read_landmarks_json(path: str | os.PathLike) -> LandmarkSequence:
    """Read `write_landmarks_json` output, or the original format (a bare list of `{name: {x, y, z}}`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not valid JSON ({error})") from error
    if isinstance(document, list):  # the original script's output: no timestamps, assume 30 fps
        document = {"frames": document, "fps": 30.0}
    if not isinstance(document, dict) or not isinstance(document.get("frames"), list):
        raise InputError(path, "expected a list of frames or an object with a 'frames' list")
    frames = document["frames"]
    if not frames:
        raise InputError(path, "no frames")
    fps = float(document.get("fps") or 30.0)
    image, visibility = _frames_to_arrays(frames, str(path), with_visibility=True)
    world_frames = document.get("world_frames") or [None] * len(frames)
    if len(world_frames) != len(frames):
        raise InputError(path, f"{len(world_frames)} world frames for {len(frames)} frames")
    world, _ = _frames_to_arrays(world_frames, str(path), with_visibility=False)
    timestamps = np.asarray(document.get("timestamps") or np.arange(len(frames)) / fps, dtype=np.float64)
    if timestamps.shape[0] != len(frames):
        raise InputError(path, f"{timestamps.shape[0]} timestamps for {len(frames)} frames")
    size = document.get("image_size") or (0, 0)
    return LandmarkSequence(image=image, world=world, visibility=visibility, timestamps=timestamps, fps=fps,
                            image_size=(int(size[0]), int(size[1])), source=str(document.get("source", "")),
                            meta=dict(document.get("meta") or {}))


# ----------------------------------------------------------------------------------------- frames in
@dataclass
class FrameSource:
    path: Path
    fps: float
    size: tuple[int, int]
    frame_count: int
    frames: Iterator[tuple[int, float, np.ndarray | None]] = field(repr=False)


def open_frames(path: str | Path, folder_fps: float = 30.0) -> FrameSource:
    """A video file, or a folder of images (sorted by name, `folder_fps` frames per second).
    Undecodable images in a folder become gaps (None) with a warning."""
    path = Path(path)
    if path.is_dir():
        files = list_files(path, IMAGE_EXTENSIONS, recursive=False)
        first = next((read_image_or_none(f) for f in files[:1]), None)
        size = (first.shape[1], first.shape[0]) if first is not None else (0, 0)

        def folder_frames():
            for index, file in enumerate(files):
                yield index, index / folder_fps, read_image_or_none(file)

        return FrameSource(path, folder_fps, size, len(files), folder_frames())
    info = video_info(path)
    fps = info.fps if info.fps > 0 else folder_fps
    return FrameSource(path, fps, (info.width, info.height), info.frame_count, iter_video_frames(path, check_length=False))


def read_image_or_none(path: Path) -> np.ndarray | None:
    try:
        return read_image(path)
    except InputError as error:
        print(f"warning: {error}; kept as a gap", file=sys.stderr)
        return None
