"""Gesture clips from files: four layouts, a uniform frame sampler and a split grouped by video.

| layout | example |
|---|---|
| `frames` (the original) | `root/<class>/<video_id>_frame_<n>.jpg` |
| `jester` | `root/<video_id>/00001.jpg` + a CSV of `video_id;label` (`,` or `;`, header optional) |
| `videos` | `root/<class>/<name>.mp4` (any OpenCV container) |
| point history | `point_history.csv`: `label, x0, y0, ..., x15, y15` (MediaPipe fingertip, Kazuhito00) |

Frames are sampled uniformly (32 per clip by default); a clip shorter than that is padded by repeating its
last frame. A video with missing frame numbers (a gap) or no frames is skipped and listed with the reason.
"""
from __future__ import annotations

import csv
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from core.io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputError, iter_video_frames, read_image

FRAME_NAME = re.compile(r"^(?P<video>.+)_frame_(?P<number>\d+)$")
NUMBERED_NAME = re.compile(r"^(?:.*?)(?P<number>\d+)$")
POINT_HISTORY_FEATURES = ("position", "velocity", "offset")


class ClipWarning(UserWarning):
    """A clip that was skipped (gap in frame numbers, no frames); the message names it and the reason."""


@dataclass
class VideoItem:
    """One clip: its id, class and either its frame files (in order) or a video file."""

    video_id: str
    label: str
    frames: list[Path] = field(default_factory=list)
    video: Path | None = None

    @property
    def source(self) -> str:
        return str(self.video or (self.frames[0].parent if self.frames else self.video_id))


@dataclass
class ClipSet:
    items: list[VideoItem]
    skipped: list[tuple[str, str]]  # (path, reason)

    @property
    def labels(self) -> list[str]:
        return sorted({item.label for item in self.items})


# ----------------------------------------------------------------------------------------- layouts
def _check_numbering(video: str, numbered: list[tuple[int, Path]]) -> str | None:
    numbers = [n for n, _ in numbered]
    if len(set(numbers)) != len(numbers):
        return "duplicate frame numbers"
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        shown = ", ".join(str(n) for n in missing[:5]) + (" ..." if len(missing) > 5 else "")
        return f"gap in frame numbers: missing {shown} between {numbers[0]} and {numbers[-1]}"
    return None


def _finish(groups: dict[tuple[str, str], list[tuple[int, Path]]], skipped: list[tuple[str, str]],
            allow_gaps: bool) -> list[VideoItem]:
    items = []
    for (label, video), numbered in sorted(groups.items()):
        numbered.sort()
        problem = _check_numbering(video, numbered)
        if problem and not allow_gaps:
            where = str(numbered[0][1].parent / video)
            warnings.warn(f"{where}: {problem}; skipped", ClipWarning, stacklevel=3)
            skipped.append((where, problem))
            continue
        items.append(VideoItem(video, label, [p for _, p in numbered]))
    return items


def _class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError(root, "not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(root, "no class folders")
    return folders


def read_frame_folders(root: str | os.PathLike, allow_gaps: bool = False) -> ClipSet:
    """The original layout: `root/<class>/<video_id>_frame_<n>.<ext>`; frames of one video share the id."""
    root = Path(root)
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    skipped: list[tuple[str, str]] = []
    for folder in _class_folders(root):
        images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise InputError(folder, "empty class folder (no <video_id>_frame_<n>.jpg images)")
        for path in images:
            match = FRAME_NAME.match(path.stem)
            if not match:
                skipped.append((str(path), "name is not <video_id>_frame_<n>"))
                continue
            groups.setdefault((folder.name, match["video"]), []).append((int(match["number"]), path))
    return ClipSet(_finish(groups, skipped, allow_gaps), skipped)


def read_label_csv(csv_path: str | os.PathLike) -> dict[str, str]:
    """`video_id;label` or `video_id,label` rows (Jester uses `;` and no header); a header row is skipped."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(csv_path, "label CSV not found")
    text = csv_path.read_text(encoding="utf-8-sig")
    delimiter = ";" if text.count(";") >= text.count(",") else ","
    labels: dict[str, str] = {}
    for line_number, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise InputError(csv_path, f"line {line_number}: expected video_id{delimiter}label, got {row}")
        video, label = row[0].strip(), row[1].strip()
        if line_number == 1 and video.lower() in ("video_id", "video", "id"):
            continue
        labels[video] = label
    if not labels:
        raise InputError(csv_path, "no labelled videos")
    return labels


def read_jester(root: str | os.PathLike, labels_csv: str | os.PathLike, allow_gaps: bool = False) -> ClipSet:
    """Jester-style: a folder per video of numbered frames (`00001.jpg`), labels from a CSV."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    labels = read_label_csv(labels_csv)
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    skipped: list[tuple[str, str]] = []
    for video, label in labels.items():
        folder = root / video
        if not folder.is_dir():
            skipped.append((str(folder), "video folder listed in the CSV is missing"))
            continue
        numbered = []
        for path in folder.iterdir():
            match = NUMBERED_NAME.match(path.stem)
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and match:
                numbered.append((int(match["number"]), path))
        if not numbered:
            skipped.append((str(folder), "no numbered frames"))
            continue
        groups[(label, video)] = numbered
    for problem in skipped:
        warnings.warn(f"{problem[0]}: {problem[1]}; skipped", ClipWarning, stacklevel=2)
    return ClipSet(_finish(groups, skipped, allow_gaps), skipped)


def read_video_folders(root: str | os.PathLike) -> ClipSet:
    """`root/<class>/<name>.mp4`: one clip per video file; the video id is `<class>/<name>`."""
    root = Path(root)
    items = []
    for folder in _class_folders(root):
        videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise InputError(folder, f"empty class folder (no {', '.join(VIDEO_EXTENSIONS)} files)")
        items += [VideoItem(f"{folder.name}/{p.stem}", folder.name, video=p) for p in videos]
    return ClipSet(items, [])


def read_clips(root: str | os.PathLike, layout: str = "auto", labels_csv: str | os.PathLike | None = None,
               allow_gaps: bool = False) -> ClipSet:
    """Any of the three frame/video layouts; `auto` picks by what it finds."""
    root = Path(root)
    if layout == "auto":
        if labels_csv is not None:
            layout = "jester"
        else:
            layout = "videos" if any(p.suffix.lower() in VIDEO_EXTENSIONS for p in root.glob("*/*")) else "frames"
    if layout == "frames":
        return read_frame_folders(root, allow_gaps)
    if layout == "jester":
        if labels_csv is None:
            raise InputError(root, "the jester layout needs a label CSV (--labels-csv)")
        return read_jester(root, labels_csv, allow_gaps)
    if layout == "videos":
        return read_video_folders(root)
    raise ValueError(f"unknown layout {layout!r}; choose auto, frames, jester or videos")


# ----------------------------------------------------------------------------------------- sampling
def sample_indices(available: int, num_frames: int) -> np.ndarray:
    """`num_frames` indices spread uniformly over `available` frames; short clips repeat their last frame."""
    if available < 1:
        raise ValueError("a clip needs at least one frame")
    if available >= num_frames:
        return np.linspace(0, available - 1, num_frames).round().astype(int)
    return np.concatenate([np.arange(available), np.full(num_frames - available, available - 1)])


def read_clip(item: VideoItem, num_frames: int = 32, frames: Iterable | None = None) -> np.ndarray:
    """(num_frames, H, W, 3) uint8 RGB. Frames of different sizes are resized to the first frame's size.
    `frames`: the video's (index, seconds, rgb) frames when the caller already opened them."""
    import cv2

    if item.video is not None:
        frames = [frame for _, _, frame in (frames if frames is not None else iter_video_frames(item.video))]
        chosen = [frames[i] for i in sample_indices(len(frames), num_frames)]
    else:
        if not item.frames:
            raise InputError(item.source, "clip has no frames")
        cache: dict[int, np.ndarray] = {}
        chosen = []
        for i in sample_indices(len(item.frames), num_frames):
            if i not in cache:
                cache[i] = read_image(item.frames[i])
            chosen.append(cache[i])
    height, width = chosen[0].shape[:2]
    return np.stack([f if f.shape[:2] == (height, width) else cv2.resize(f, (width, height)) for f in chosen])


class VideoClipDataset:
    """Clips as float tensors (num_frames, 3, size, size) in [0, 1]; `transform` maps a uint8 clip (T, H, W, 3)
    to another (e.g. the clip-consistent augmentation). A map-style dataset for torch's DataLoader; PyTorch is
    imported only when a clip is read, so the point-history readers here start without it."""

    def __init__(self, items: Sequence[VideoItem], labels: Sequence[str], num_frames: int = 32, size: int = 112,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None):
        self.items, self.index = list(items), {name: i for i, name in enumerate(labels)}
        self.num_frames, self.size, self.transform = num_frames, size, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        import cv2
        import torch

        item = self.items[i]
        clip = read_clip(item, self.num_frames)
        if self.transform is not None:
            clip = self.transform(clip)
        clip = np.stack([cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_AREA) for f in clip])
        return torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255.0, self.index[item.label]


# ----------------------------------------------------------------------------------------- split
def grouped_stratified_split(labels: Sequence[str], groups: Sequence[str], fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of the held-out share: per class, `fraction` of its groups (videos), so no group is on both sides."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    labels, groups = np.asarray(labels), np.asarray(groups)
    rng = np.random.default_rng(seed)
    group_label: dict[str, str] = {}
    for group in dict.fromkeys(groups.tolist()):
        group_label[group] = Counter(labels[groups == group].tolist()).most_common(1)[0][0]
    held: set[str] = set()
    for label in sorted(set(group_label.values())):
        members = sorted(g for g, l in group_label.items() if l == label)
        count = int(round(len(members) * fraction))
        if len(members) > 1:
            count = min(max(count, 1), len(members) - 1)
        held.update(rng.permutation(members)[:count].tolist())
    return np.array([g in held for g in groups.tolist()])


def stratified_split(labels: Sequence, fraction: float, seed: int = 0) -> np.ndarray:
    """Held-out mask for samples that are their own group (e.g. point-history rows), stratified by class."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    _, held = train_test_split(index, test_size=fraction, random_state=seed, stratify=np.asarray(labels))
    mask = np.zeros(len(labels), dtype=bool)
    mask[held] = True
    return mask


# ----------------------------------------------------------------------------------------- point history
@dataclass
class PointHistory:
    sequences: np.ndarray  # (N, 16, 2) raw fingertip offsets from the first point
    targets: np.ndarray  # (N,) class index
    labels: list[str]


def read_point_history(csv_path: str | os.PathLike, labels_path: str | os.PathLike | None = None) -> PointHistory:
    """Kazuhito00's `point_history.csv` (label, then x, y of 16 points) and its label file."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(csv_path, "file not found")
    try:
        table = np.loadtxt(csv_path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise InputError(csv_path, f"not a numeric CSV ({error})") from error
    if table.shape[1] < 3 or (table.shape[1] - 1) % 2:
        raise InputError(csv_path, f"expected label + x, y pairs per row, got {table.shape[1]} columns")
    targets = table[:, 0].astype(int)
    labels_path = Path(labels_path) if labels_path else csv_path.with_name("point_history_classifier_label.csv")
    if labels_path.is_file():
        labels = [line.strip() for line in labels_path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    else:
        labels = [str(i) for i in range(targets.max() + 1)]
    if targets.min() < 0 or targets.max() >= len(labels):
        raise InputError(csv_path, f"labels outside 0..{len(labels) - 1}")
    return PointHistory(table[:, 1:].reshape(len(table), -1, 2).astype(np.float32), targets, labels)


def point_history_features(sequences: np.ndarray, features: Sequence[str] = POINT_HISTORY_FEATURES) -> np.ndarray:
    """(N, T, 2) trajectories → (N, T, channels, 2): one channel per feature. `position` is scaled by the
    sequence's largest offset (so the gesture's size does not matter), `velocity` is its frame-to-frame
    difference (0 at the first step); `offset` keeps the size: the offset from the first point as a fraction
    of the image (upstream's normalisation), times 10. Size separates a still finger (Stop) from a moving one."""
    sequences = np.asarray(sequences, dtype=np.float32)
    scale = np.abs(sequences).reshape(len(sequences), -1).max(axis=1)
    position = sequences / np.where(scale > 0, scale, 1.0)[:, None, None]
    velocity = np.diff(position, axis=1, prepend=position[:, :1])
    available = {"position": position, "velocity": velocity, "offset": sequences * 10.0}
    unknown = set(features) - set(available)
    if unknown or not features:
        raise ValueError(f"unknown point-history features {sorted(unknown)}; choose from {sorted(available)}")
    return np.stack([available[name] for name in features], axis=2)


# ------------------------------------------------------------------------------- motion that is no gesture
NONE = "none"   # the point-history models' answer for hand motion that is none of their gestures


def random_fingertip_paths(frames: int = 3600, seed: int = 0, step: float = 0.002, damping: float = 0.9,
                           moving: float = 0.7) -> np.ndarray:
    """(frames, 3) encodings (x, y, hand) of a fingertip wandering at random in image-normalised coordinates, a
    hand in every frame: its velocity decays by `damping` per frame and, in a random `moving` share of the
    frames, gets a normal kick of std `step` (smoothed steps and slow stretches). Motion that is none of the gestures."""
    rng = np.random.default_rng(seed)
    velocity = np.zeros(2)
    position, path = np.array([0.5, 0.5]), []
    for _ in range(frames):
        velocity = damping * velocity + rng.normal(0, step, 2) * (rng.random() > 1 - moving)
        position = np.clip(position + velocity, 0.1, 0.9)
        path.append((*position, 1.0))
    return np.asarray(path, np.float32)


# Wandering hands slower than the recorded Move strokes: kicks of std 0.001-0.0025 with damping 0.8-0.92 make
# 16-frame paths of median length 0.05 (90%: 0.09) of the image, where the recorded Move strokes' 5% quantile is
# 0.08 (faster random paths would be Move strokes, and the model would have to call real ones none).
NONE_KICKS, NONE_DAMPING, NONE_MOVING = (0.001, 0.0025), (0.8, 0.92), (0.5, 0.9)


def non_gesture_paths(count: int, frames: int, seed: int = 1) -> list[np.ndarray]:
    """`count` `random_fingertip_paths` of `frames` frames, each with a speed, damping and share of moving frames
    drawn from the ranges above."""
    rng = np.random.default_rng(seed)
    return [random_fingertip_paths(frames, int(rng.integers(2**31)), rng.uniform(*NONE_KICKS), rng.uniform(*NONE_DAMPING),
                                   rng.uniform(*NONE_MOVING)) for _ in range(count)]


def non_gesture_sequences(count: int, num_frames: int = 16, seed: int = 1, warm_up: int = 30) -> np.ndarray:
    """(count, num_frames, 2) fingertip offsets from the first point, like `read_point_history`'s, of the last
    `num_frames` of `non_gesture_paths` (after `warm_up` frames, so each starts already in motion): the training
    examples of the `none` class. The benchmark's test paths use seed 0; the training default is another seed,
    so those stay unseen."""
    paths = np.stack(non_gesture_paths(count, warm_up + num_frames, seed))[:, -num_frames:, :2]
    return (paths - paths[:, :1]).astype(np.float32).reshape(count, num_frames, 2)
