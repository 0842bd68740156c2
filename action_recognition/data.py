"""Action clips in three layouts, and Kinetics-format clip lists.

Clip layouts (`load_clips` tells them apart):
1. The UCF101 mini set: a zip with `<split>Clips/<NNNNN>/{1,2,3}.jpg` and `labels.csv`
   (`clip_dir,split,label_id,label_name_inferred,...`), read in place (members are never extracted).
2. A folder per clip of frame images: `root/[<split>/]<class>/<clip>/*.jpg` (frames in name order).
3. A folder per class of video files: `root/[<split>/]<class>/*.mp4` (what `download.py` writes);
   `num_frames` frames are sampled evenly over each video.
A top folder level named train/val/test gives the split; otherwise `assign_splits` draws one.

Every reader returns `LoadedClips`: frames as uint8 arrays (T, H, W, 3), one per clip, plus the inputs
it skipped with the reason (broken or zero-length videos, empty clip folders), so a run goes on.

Kinetics CSV (`label,youtube_id,time_start,time_end,split`): `read_kinetics_csv` validates it and
`select_classes` picks classes by name pattern and a per-class count.
"""
from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from core.io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputError, list_files, read_image, video_info

SPLITS = ("train", "val", "test")
KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


# ----------------------------------------------------------------------------------------- clips
@dataclass(frozen=True)
class Clip:
    source: str   # a video path, a clip folder, or `<zip>::<member folder>`
    label: str
    split: str = ""


@dataclass
class LoadedClips:
    clips: list[Clip]
    frames: list[np.ndarray]                       # (T, H, W, 3) uint8 per clip
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return sorted({c.label for c in self.clips})

    def __len__(self) -> int:
        return len(self.clips)

    def take(self, indices: Sequence[int]) -> "LoadedClips":
        return LoadedClips([self.clips[i] for i in indices], [self.frames[i] for i in indices], list(self.skipped))

    def select(self, split: str) -> "LoadedClips":
        return self.take([i for i, c in enumerate(self.clips) if c.split == split])

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(c.label for c in self.clips).items()))


def resize_frames(frames: np.ndarray, size: int | None) -> np.ndarray:
    """Square `size` x `size` frames: the short side scaled to `size`, then a centre crop. None = as is."""
    import cv2

    if size is None or (frames.shape[1] == size and frames.shape[2] == size):
        return frames
    out = []
    for frame in frames:
        height, width = frame.shape[:2]
        scale = size / min(height, width)
        resized = cv2.resize(frame, (max(size, round(width * scale)), max(size, round(height * scale))),
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        y0, x0 = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
        out.append(resized[y0:y0 + size, x0:x0 + size])
    return np.stack(out)


def even_indices(count: int, num_frames: int) -> np.ndarray:
    """`num_frames` indices spread evenly over `count` frames (the centre of each of num_frames segments)."""
    return np.minimum(((np.arange(num_frames) + 0.5) * count / num_frames).astype(int), count - 1)


def sample_video_frames(path: str | Path, num_frames: int = 8, size: int | None = 112) -> np.ndarray:
    """`num_frames` RGB frames spread evenly over a video, as (T, size, size, 3). InputError when unreadable."""
    import cv2

    info = video_info(path)  # InputError for a missing, empty or unopenable file
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    if not frames:
        raise InputError(path, f"no frame could be decoded (header says {info.frame_count} frames)")
    chosen = [cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB) for i in even_indices(len(frames), num_frames)]
    return resize_frames(np.stack(chosen), size)


# ----------------------------------------------------------------------------------------- layouts
def read_ucf_zip(zip_path: str | Path, labels_csv: str | Path | None = None,
                 splits: Sequence[str] = ("train", "val"), limit_per_class: int | None = None) -> LoadedClips:
    """The UCF101 mini set, frames decoded from the zip members in place. `labels_csv` defaults to the
    `labels.csv` beside the zip. `limit_per_class` keeps the first N clips of each class and split."""
    zip_path = Path(zip_path)
    labels_csv = Path(labels_csv) if labels_csv else zip_path.with_name("labels.csv")
    if not zip_path.is_file():
        raise InputError(zip_path, "zip not found")
    rows = _read_csv_rows(labels_csv, ("clip_dir", "split", "label_name_inferred"))
    taken: Counter = Counter()
    clips, frames, skipped = [], [], []
    with zipfile.ZipFile(zip_path) as archive:
        members = defaultdict(list)
        for name in archive.namelist():
            folder, _, file = name.rpartition("/")
            if Path(file).suffix.lower() in IMAGE_EXTENSIONS:
                members[folder].append(name)
        for row in rows:
            if row["split"] not in splits:
                continue
            key = (row["label_name_inferred"], row["split"])
            if limit_per_class is not None and taken[key] >= limit_per_class:
                continue
            source = f"{zip_path.resolve()}::{row['clip_dir']}"
            names = sorted(members.get(row["clip_dir"], []), key=_natural_key)
            if not names:
                skipped.append((source, "no frame images in the zip for this clip"))
                continue
            try:
                images = [read_image(archive.read(n), name=f"{zip_path}::{n}") for n in names]
            except InputError as error:
                skipped.append((source, error.reason))
                continue
            taken[key] += 1
            clips.append(Clip(source, row["label_name_inferred"], row["split"]))
            frames.append(np.stack(images))
    return LoadedClips(clips, frames, skipped)


def read_frame_folders(root: str | Path, size: int | None = None) -> LoadedClips:
    """`root/[<split>/]<class>/<clip>/<frame images>`; a clip's frames in natural name order."""
    root = Path(root)
    clips, frames, skipped = [], [], []
    by_folder = defaultdict(list)
    for path in list_files(root, IMAGE_EXTENSIONS):
        by_folder[path.parent].append(path)
    for folder in sorted(by_folder):
        split, label = _split_and_label(root, folder, depth=2)
        if label is None:
            skipped.append((str(folder), "not in a <class>/<clip>/ folder"))
            continue
        try:
            images = [read_image(p) for p in sorted(by_folder[folder], key=lambda p: _natural_key(p.name))]
            if len({im.shape for im in images}) > 1:
                raise InputError(folder, "frames of different sizes")
        except InputError as error:
            skipped.append((str(folder), error.reason))
            continue
        clips.append(Clip(str(folder), label, split))
        frames.append(resize_frames(np.stack(images), size))
    _check_not_empty(root, clips, skipped)
    return LoadedClips(clips, frames, skipped)


def read_video_folders(root: str | Path, num_frames: int = 8, size: int | None = 112) -> LoadedClips:
    """`root/[<split>/]<class>/<video>`; `num_frames` frames sampled evenly from each video."""
    root = Path(root)
    clips, frames, skipped = [], [], []
    for path in list_files(root, VIDEO_EXTENSIONS):
        split, label = _split_and_label(root, path.parent, depth=1)
        if label is None:
            skipped.append((str(path), "not in a <class>/ folder"))
            continue
        try:
            sampled = sample_video_frames(path, num_frames, size)
        except InputError as error:
            skipped.append((str(path), error.reason))
            continue
        clips.append(Clip(str(path), label, split))
        frames.append(sampled)
    _check_not_empty(root, clips, skipped)
    return LoadedClips(clips, frames, skipped)


def load_clips(source: str | Path, num_frames: int = 8, size: int | None = 112,
               limit_per_class: int | None = None) -> LoadedClips:
    """Any of the three layouts: a .zip (UCF101 mini set), a folder of videos, or a folder of frame folders."""
    source = Path(source)
    if source.suffix.lower() == ".zip":
        return read_ucf_zip(source, limit_per_class=limit_per_class)
    if not source.is_dir():
        raise InputError(source, "not a zip or a folder")
    has_video = any(p.suffix.lower() in VIDEO_EXTENSIONS for p in source.rglob("*") if p.is_file())
    return read_video_folders(source, num_frames, size) if has_video else read_frame_folders(source, size)


def assign_splits(loaded: LoadedClips, val_fraction: float = 0.2, seed: int = 0) -> LoadedClips:
    """Give clips without a split one: `val_fraction` of each class (at least one when a class has 2+) to val."""
    rng = random.Random(seed)
    by_label = defaultdict(list)
    for i, clip in enumerate(loaded.clips):
        if not clip.split:
            by_label[clip.label].append(i)
    clips = list(loaded.clips)
    for label, indices in by_label.items():
        rng.shuffle(indices)
        n_val = max(1, round(len(indices) * val_fraction)) if len(indices) > 1 else 0
        for k, i in enumerate(indices):
            clips[i] = Clip(clips[i].source, label, "val" if k < n_val else "train")
    return LoadedClips(clips, loaded.frames, loaded.skipped)


def _split_and_label(root: Path, folder: Path, depth: int) -> tuple[str, str | None]:
    """For a clip folder (depth 2: class/clip) or a video's folder (depth 1: class) under root."""
    parts = folder.relative_to(root).parts
    split = parts[0] if len(parts) > depth and parts[0] in SPLITS else ""
    rest = parts[1:] if split else parts
    if len(rest) < depth:
        return split, None
    return split, rest[-depth]


def _check_not_empty(root: Path, clips: list[Clip], skipped: list[tuple[str, str]]) -> None:
    if not clips:
        detail = f"; skipped {len(skipped)}: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise InputError(root, f"no readable clips{detail}")


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _read_csv_rows(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError(path, "CSV not found")
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; found {', '.join(reader.fieldnames or []) or 'none'}")
    return list(reader)


# ----------------------------------------------------------------------------------------- Kinetics
@dataclass(frozen=True)
class KineticsEntry:
    label: str
    youtube_id: str
    time_start: float
    time_end: float
    split: str

    @property
    def clip_name(self) -> str:
        """The file stem download.py writes: `<id>_<start>_<end>` with times as 6-digit integers (Kinetics style)."""
        return f"{self.youtube_id}_{int(self.time_start):06d}_{int(self.time_end):06d}"


def read_kinetics_csv(path: str | Path) -> list[KineticsEntry]:
    """A Kinetics annotation CSV. Extra columns (is_cc, ...) are ignored. Missing columns, times that are
    not numbers, negative or with end <= start, and empty labels or ids are errors naming the line."""
    path = Path(path)
    rows = _read_csv_rows(path, KINETICS_COLUMNS)
    entries = []
    for line, row in enumerate(rows, start=2):
        label, video = (row["label"] or "").strip(), (row["youtube_id"] or "").strip()
        if not label or not video:
            raise InputError(path, f"line {line}: empty label or youtube_id")
        try:
            start, end = float(row["time_start"]), float(row["time_end"])
        except (TypeError, ValueError):
            raise InputError(path, f"line {line}: time_start/time_end must be numbers, got "
                                   f"{row['time_start']!r}, {row['time_end']!r}") from None
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
            raise InputError(path, f"line {line}: bad time window [{start}, {end}] (need 0 <= start < end)")
        entries.append(KineticsEntry(label, video, start, end, (row["split"] or "").strip()))
    if not entries:
        raise InputError(path, "no rows")
    return entries


def select_classes(entries: Sequence[KineticsEntry], pattern: str = "", per_class: int | None = None,
                   splits: Sequence[str] | None = None, seed: int | None = None) -> list[KineticsEntry]:
    """Classes whose name matches `pattern` (a regular expression, case-insensitive; '' = all), at most
    `per_class` entries each (the first ones, or a seeded random sample when `seed` is given), from
    `splits` (None = all). The original's selection is `select_classes(entries, "dancing", 200)`."""
    matcher = re.compile(pattern, re.I)
    by_label: dict[str, list[KineticsEntry]] = defaultdict(list)
    for entry in entries:
        if matcher.search(entry.label) and (splits is None or entry.split in splits):
            by_label[entry.label].append(entry)
    if not by_label:
        raise ValueError(f"no class matches {pattern!r}" + (f" in splits {list(splits)}" if splits else ""))
    chosen = []
    for label in sorted(by_label):
        group = by_label[label]
        if seed is not None:
            group = random.Random(f"{seed}:{label}").sample(group, len(group))
        chosen.extend(group[:per_class] if per_class is not None else group)
    return chosen
