"""Action clips in three layouts, and Kinetics-format clip lists.

Clip layouts (`find_clips` tells them apart):
1. The UCF101 mini set: a zip with `<split>Clips/<NNNNN>/{1,2,3}.jpg` and `labels.csv`
   (`clip_dir,split,label_id,label_name_inferred,...`), read in place (members are never extracted).
2. A folder per clip of frame images: `root/[<split>/]<class>/<clip>/*.jpg` (frames in name order).
3. A folder per class of video files: `root/[<split>/]<class>/*.mp4` (what `download.py` writes);
   `num_frames` frames are sampled evenly over each video.
A top folder level named train/val/test gives the split; otherwise `assign_splits` draws one.

Finding clips and reading their frames are two steps, so that a run reads only the clips it uses:
`find_clips` lists sources, labels and splits (`FoundClips`) without decoding a frame; splits and
limits are applied to that list; `read_clips` then decodes what is left into `LoadedClips`: frames as
uint8 arrays (T, H, W, 3), one per clip. Both carry the inputs skipped with the reason (files outside a
class folder, broken or zero-length videos, empty clip folders), so a run goes on. `load_clips`, and
`read_ucf_zip`, `read_frame_folders`, `read_video_folders` for one layout, do both steps at once.

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
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from core.io import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, DecodedLength, InputError, iter_video_frames, list_files,
                     read_image)

SPLITS = ("train", "val", "test")
# what the PyAV reader takes as a video: core.io's video files and animated GIFs
VIDEO_FILE_EXTENSIONS = tuple(VIDEO_EXTENSIONS) + (".gif",)
KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


# ----------------------------------------------------------------------------------------- clips
@dataclass(frozen=True)
class Clip:
    source: str   # a video path, a clip folder, or `<zip>::<member folder>`
    label: str
    split: str = ""


class ClipSelection:
    """What a list of clips offers whether or not its frames are read: its labels, counts per class, the
    clips of a split, the first clips of each class. Subclasses hold `clips` and say how to `take` some."""

    clips: list[Clip]

    def take(self, indices: Sequence[int]):
        raise NotImplementedError

    @property
    def labels(self) -> list[str]:
        return sorted({c.label for c in self.clips})

    def __len__(self) -> int:
        return len(self.clips)

    def select(self, split: str):
        return self.take([i for i, c in enumerate(self.clips) if c.split == split])

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(c.label for c in self.clips).items()))

    def first_of_each_class(self, limit: int | None):
        """The first `limit` clips of each class in each split, in order (None = all)."""
        if limit is None:
            return self
        taken: Counter = Counter()
        keep = []
        for i, clip in enumerate(self.clips):
            if taken[clip.label, clip.split] < limit:
                taken[clip.label, clip.split] += 1
                keep.append(i)
        return self.take(keep)


@dataclass
class FoundClips(ClipSelection):
    """Clips found in a data source, their frames not read yet."""
    clips: list[Clip]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def take(self, indices: Sequence[int]) -> "FoundClips":
        return FoundClips([self.clips[i] for i in indices], list(self.skipped))


@dataclass
class LoadedClips(ClipSelection):
    clips: list[Clip]
    frames: list[np.ndarray]                       # (T, H, W, 3) uint8 per clip
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # source -> what is special about it (a truncated video)
    timelines: dict = field(default_factory=dict)        # source -> (WindowResults, end seconds), predict --timeline

    def take(self, indices: Sequence[int]) -> "LoadedClips":
        chosen = [self.clips[i] for i in indices]
        return LoadedClips(chosen, [self.frames[i] for i in indices], list(self.skipped),
                           {c.source: self.notes[c.source] for c in chosen if c.source in self.notes})


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
    """`num_frames` RGB frames spread evenly over a video, as (T, size, size, 3). InputError when unreadable;
    a truncated video (fewer frames or seconds decoded than its container states) is warned about on stderr."""
    return checked_video_frames(path, num_frames, size)[0]


def checked_video_frames(path: str | Path, num_frames: int = 8, size: int | None = 112,
                         timeline=None) -> tuple[np.ndarray, DecodedLength]:
    """`sample_video_frames` with the comparison of what was decoded against the container (core.io).
    One streaming pass with PyAV: only the chosen frames are converted and kept (`ClipSampler`), so memory
    does not grow with the video's length. `timeline` (timeline.ActionTimeline) is pushed every frame of the
    same pass and finished at the video's end."""
    video = iter_video_frames(path, decoder="av")   # InputError for a missing, empty or unopenable file
    # MKV and WebM state a duration but no frame count: the count it implies picks the same frames
    expected = video.header_frames or int(round(video.header_seconds * video.fps))
    sampler = ClipSampler(num_frames, size, expected)
    for index, seconds, frame in video.lazy_frames():
        sampler.push(index, frame)
        if timeline is not None:
            timeline.push(frame, seconds)
    if timeline is not None:
        timeline.finish(video.decoded_length.decoded_seconds)
    return sampler.frames(), video.decoded_length


class ClipSampler:
    """`num_frames` frames spread evenly over a video (`even_indices` of the decoded frames), chosen as they
    stream past. With the container's frame count the chosen indices are known before decoding; in case fewer
    frames decode (a truncated file) or the count is unknown (WebM, MKV), a small reserve of frames taken at a
    stride that doubles whenever it fills (at most `8 * num_frames` frames) gives the frames nearest to
    `even_indices` of what did decode. Frames are pushed lazily (anything with `to_rgb()`, core.io.AvFrame) and
    converted and resized (`resize_frames`) only when kept."""

    def __init__(self, num_frames: int, size: int | None, expected_frames: int = 0, reserve: int | None = None):
        self.num_frames, self.size, self.expected = num_frames, size, expected_frames
        # headers are often a few frames over what decodes (AVI, MP4 with dropped frames): those counts' picks too
        self.targets = {int(i) for count in range(max(1, expected_frames - 4), expected_frames + 1)
                        for i in even_indices(count, num_frames)} if expected_frames > 0 else set()
        self.chosen: dict[int, np.ndarray] = {}
        self.reserve: dict[int, np.ndarray] = {}
        self.capacity, self.stride, self.count = reserve or 8 * num_frames, 1, 0

    def _convert(self, frame) -> np.ndarray:
        return resize_frames(frame.to_rgb()[None], self.size)[0]

    def push(self, index: int, frame) -> None:
        self.count = index + 1
        converted = None
        if index in self.targets:
            converted = self.chosen[index] = self._convert(frame)
        if index % self.stride == 0:
            self.reserve[index] = converted if converted is not None else self._convert(frame)
            if len(self.reserve) > self.capacity:
                self.stride *= 2
                self.reserve = {i: f for i, f in self.reserve.items() if i % self.stride == 0}

    def frames(self) -> np.ndarray:
        """(num_frames, size, size, 3): the frames at even_indices(decoded count), or the nearest reserve frames."""
        wanted = even_indices(self.count, self.num_frames)
        if all(int(i) in self.chosen for i in wanted):
            return np.stack([self.chosen[int(i)] for i in wanted])
        kept = np.array(sorted(self.reserve))
        return np.stack([self.reserve[int(kept[np.abs(kept - i).argmin()])] for i in wanted])


def read_frame_folder(folder: Path, size: int | None = None) -> np.ndarray:
    """The frame images of one clip folder in natural name order, as (T, H, W, 3), resized to `size`."""
    images = [read_image(p) for p in sorted(list_files(folder, IMAGE_EXTENSIONS, recursive=False),
                                            key=lambda p: _natural_key(p.name))]
    if len({image.shape for image in images}) > 1:
        raise InputError(folder, "frames of different sizes")
    return resize_frames(np.stack(images), size)


# ----------------------------------------------------------------------------------------- finding clips
def find_ucf_zip(zip_path: str | Path, labels_csv: str | Path | None = None,
                 splits: Sequence[str] = ("train", "val")) -> FoundClips:
    """The UCF101 mini set's clips of `splits`, in `labels.csv` order (`labels_csv` defaults to the one
    beside the zip); a listed clip with no frame images in the zip is skipped."""
    zip_path = Path(zip_path)
    labels_csv = Path(labels_csv) if labels_csv else zip_path.with_name("labels.csv")
    if not zip_path.is_file():
        raise InputError(zip_path, "zip not found")
    rows = _read_csv_rows(labels_csv, ("clip_dir", "split", "label_name_inferred"))
    with zipfile.ZipFile(zip_path) as archive:
        folders_with_frames = set(_frame_members(archive))
    clips, skipped = [], []
    for row in rows:
        if row["split"] not in splits:
            continue
        source = f"{zip_path.resolve()}::{row['clip_dir']}"
        if row["clip_dir"] in folders_with_frames:
            clips.append(Clip(source, row["label_name_inferred"], row["split"]))
        else:
            skipped.append((source, "no frame images in the zip for this clip"))
    return FoundClips(clips, skipped)


def find_frame_folders(root: str | Path) -> FoundClips:
    """`root/[<split>/]<class>/<clip>/<frame images>`: one clip per folder of images."""
    root = Path(root)
    clips, skipped = [], []
    for folder in sorted({path.parent for path in list_files(root, IMAGE_EXTENSIONS)}):
        split, label = _split_and_label(root, folder, depth=2)
        if label is None:
            skipped.append((str(folder), "not in a <class>/<clip>/ folder"))
        else:
            clips.append(Clip(str(folder), label, split))
    _check_not_empty(root, clips, skipped)
    return FoundClips(clips, skipped)


def find_video_folders(root: str | Path) -> FoundClips:
    """`root/[<split>/]<class>/<video>`: one clip per video file."""
    root = Path(root)
    clips, skipped = [], []
    for path in list_files(root, VIDEO_FILE_EXTENSIONS):
        split, label = _split_and_label(root, path.parent, depth=1)
        if label is None:
            skipped.append((str(path), "not in a <class>/ folder"))
        else:
            clips.append(Clip(str(path), label, split))
    _check_not_empty(root, clips, skipped)
    return FoundClips(clips, skipped)


def find_clips(source: str | Path) -> FoundClips:
    """Any of the three layouts: a .zip (UCF101 mini set), a folder of videos, or a folder of frame folders."""
    source = Path(source)
    if source.suffix.lower() == ".zip":
        return find_ucf_zip(source)
    if not source.is_dir():
        raise InputError(source, "not a zip or a folder")
    has_video = any(p.suffix.lower() in VIDEO_FILE_EXTENSIONS for p in source.rglob("*") if p.is_file())
    return find_video_folders(source) if has_video else find_frame_folders(source)


# ----------------------------------------------------------------------------------------- reading frames
def read_clips(found: FoundClips, num_frames: int = 8, size: int | None = 112) -> LoadedClips:
    """The frames of found clips, in order: all frames of a zip clip (as stored) or of a clip folder
    (resized to `size`), `num_frames` sampled evenly from a video (resized to `size`). A clip that
    cannot be read is left out and added to `skipped` with the reason."""
    clips, frames, skipped = [], [], list(found.skipped)
    with ExitStack() as open_zips:
        archives: dict[str, tuple[zipfile.ZipFile, dict[str, list[str]]]] = {}

        def zip_clip_frames(source: str) -> np.ndarray:
            zip_path, _, folder = source.rpartition("::")
            if zip_path not in archives:     # opened once per read: its member list is long to parse
                archive = open_zips.enter_context(zipfile.ZipFile(zip_path))
                archives[zip_path] = archive, _frame_members(archive)
            archive, members = archives[zip_path]
            if folder not in members:
                raise InputError(source, "no frame images in the zip for this clip")
            return np.stack([read_image(archive.read(name), name=f"{zip_path}::{name}") for name in members[folder]])

        for clip in found.clips:
            try:
                if "::" in clip.source:
                    clip_frames = zip_clip_frames(clip.source)
                elif Path(clip.source).is_dir():
                    clip_frames = read_frame_folder(Path(clip.source), size)
                else:
                    clip_frames = sample_video_frames(clip.source, num_frames, size)
            except InputError as error:
                skipped.append((clip.source, error.reason))
                continue
            clips.append(clip)
            frames.append(clip_frames)
    return LoadedClips(clips, frames, skipped)


def read_ucf_zip(zip_path: str | Path, labels_csv: str | Path | None = None,
                 splits: Sequence[str] = ("train", "val"), limit_per_class: int | None = None) -> LoadedClips:
    """The UCF101 mini set, frames decoded from the zip members in place. `limit_per_class` reads the
    first N clips of each class and split only."""
    return read_clips(find_ucf_zip(zip_path, labels_csv, splits).first_of_each_class(limit_per_class))


def read_frame_folders(root: str | Path, size: int | None = None) -> LoadedClips:
    """`root/[<split>/]<class>/<clip>/<frame images>`; a clip's frames in natural name order."""
    loaded = read_clips(find_frame_folders(root), size=size)
    _check_not_empty(Path(root), loaded.clips, loaded.skipped)
    return loaded


def read_video_folders(root: str | Path, num_frames: int = 8, size: int | None = 112) -> LoadedClips:
    """`root/[<split>/]<class>/<video>`; `num_frames` frames sampled evenly from each video."""
    loaded = read_clips(find_video_folders(root), num_frames, size)
    _check_not_empty(Path(root), loaded.clips, loaded.skipped)
    return loaded


def load_clips(source: str | Path, num_frames: int = 8, size: int | None = 112) -> LoadedClips:
    """Every clip of any of the three layouts (`find_clips`), frames read (`read_clips`)."""
    return read_clips(find_clips(source), num_frames, size)


def assign_splits(found: ClipSelection, val_fraction: float = 0.2, seed: int = 0):
    """Give clips without a split one: `val_fraction` of each class (at least one when a class has 2+) to val."""
    rng = random.Random(seed)
    by_label = defaultdict(list)
    for i, clip in enumerate(found.clips):
        if not clip.split:
            by_label[clip.label].append(i)
    clips = list(found.clips)
    for label, indices in by_label.items():
        rng.shuffle(indices)
        n_val = max(1, round(len(indices) * val_fraction)) if len(indices) > 1 else 0
        for k, i in enumerate(indices):
            clips[i] = Clip(clips[i].source, label, "val" if k < n_val else "train")
    return replace(found, clips=clips)


def _frame_members(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """Member folder -> its frame image members in natural name order."""
    members = defaultdict(list)
    for name in archive.namelist():
        folder, _, file = name.rpartition("/")
        if Path(file).suffix.lower() in IMAGE_EXTENSIONS:
            members[folder].append(name)
    return {folder: sorted(names, key=_natural_key) for folder, names in members.items()}


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
