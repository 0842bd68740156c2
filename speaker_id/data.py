"""Speaker datasets: find clips in the three supported layouts, read them, and serve fixed-length waveforms.

Layouts (`load_clips` tells them apart):
1. Free Spoken Digit Dataset: `{digit}_{speaker}_{index}.wav` in one folder; official split: index 0-4 test.
2. One folder per speaker with audio files inside (VoxCeleb / VCC style): `root/<speaker>/**/*.wav`.
3. A CSV manifest with columns `path,speaker[,split]`; relative paths are relative to the CSV.
Clips without a split get one from `assign_splits` (stratified per speaker, seeded).
"""
from __future__ import annotations

import random
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from core.io import AUDIO_EXTENSIONS, InputError, list_files, read_audio

FSDD_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z0-9-]+)_(?P<index>\d+)$")
FSDD_TEST_INDICES = range(0, 5)
MIN_CLIP_SECONDS = 0.05


@dataclass(frozen=True)
class Clip:
    path: Path
    speaker: str
    split: str = ""  # "train", "test", or "" when the source gives none


# ----------------------------------------------------------------------------------------- layouts
def scan_fsdd(folder: str | Path) -> list[Clip]:
    """FSDD recordings with the official split (repetition index 0-4 = test)."""
    clips = []
    for path in list_files(folder, AUDIO_EXTENSIONS, recursive=False):
        match = FSDD_NAME.match(path.stem)
        if match is None:
            raise InputError(path, "name is not {digit}_{speaker}_{index} (FSDD layout)")
        split = "test" if int(match["index"]) in FSDD_TEST_INDICES else "train"
        clips.append(Clip(path, match["speaker"], split))
    return clips


def scan_speaker_folders(folder: str | Path) -> list[Clip]:
    """`folder/<speaker>/**/<audio>`: the speaker is the first folder level."""
    folder = Path(folder)
    clips = [Clip(path, path.relative_to(folder).parts[0]) for path in list_files(folder, AUDIO_EXTENSIONS)
             if len(path.relative_to(folder).parts) > 1]
    if not clips:
        raise InputError(folder, "no speaker sub-folders with audio files")
    return clips


def read_manifest(csv_path: str | Path) -> list[Clip]:
    """CSV with `path,speaker` and optionally `split` (train/test)."""
    import pandas as pd

    csv_path = Path(csv_path)
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except Exception as error:
        raise InputError(csv_path, f"cannot read CSV ({error})") from error
    missing = {"path", "speaker"} - set(table.columns)
    if missing:
        raise InputError(csv_path, f"missing column(s) {sorted(missing)}; need path,speaker[,split]")
    if table.empty:
        raise InputError(csv_path, "manifest has no rows")
    bad_splits = set(table.get("split", [])) - {"train", "test", ""}
    if bad_splits:
        raise InputError(csv_path, f"unknown split value(s) {sorted(bad_splits)}; use train or test")
    base = csv_path.parent
    return [Clip(Path(p) if Path(p).is_absolute() else base / p, s, row_split)
            for p, s, row_split in zip(table["path"], table["speaker"], table.get("split", [""] * len(table)))]


def detect_layout(source: str | Path) -> str:
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return "manifest"
    if not source.is_dir():
        raise InputError(source, "not a folder or a .csv manifest")
    top_audio = [p for p in source.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
    if top_audio and all(FSDD_NAME.match(p.stem) for p in top_audio):
        return "fsdd"
    if any(p.is_dir() for p in source.iterdir()):
        return "folders"
    raise InputError(source, "no audio found: expected FSDD files, speaker sub-folders or a CSV manifest")


def load_clips(source: str | Path) -> list[Clip]:
    layout = detect_layout(source)
    return {"manifest": read_manifest, "fsdd": scan_fsdd, "folders": scan_speaker_folders}[layout](source)


def assign_splits(clips: Sequence[Clip], test_fraction: float = 0.1, seed: int = 0) -> list[Clip]:
    """Give clips without a split one, per speaker, so every speaker is in both splits.

    Speakers with a single clip cannot be both trained on and tested; they are dropped with a warning."""
    by_speaker: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        by_speaker[clip.speaker].append(clip)
    result: list[Clip] = []
    rng = random.Random(seed)
    for speaker, own in sorted(by_speaker.items()):
        if all(c.split for c in own):
            result.extend(own)
            continue
        if len(own) < 2:
            warnings.warn(f"speaker {speaker!r} has only one clip ({own[0].path}); need at least 2 to train and test: skipped")
            continue
        unsplit = sorted((c for c in own if not c.split), key=lambda c: str(c.path))
        rng.shuffle(unsplit)
        n_test = min(max(1, round(len(unsplit) * test_fraction)), len(unsplit) - 1)
        result.extend(c for c in own if c.split)
        result.extend(replace(c, split="test") for c in unsplit[:n_test])
        result.extend(replace(c, split="train") for c in unsplit[n_test:])
    return result


# ----------------------------------------------------------------------------------------- reading
@dataclass
class LoadedClips:
    clips: list[Clip]
    waveforms: list[np.ndarray]
    skipped: list[tuple[Path, str]]

    def select(self, split: str | None = None, speakers: set[str] | None = None, exclude: set[str] | None = None) -> "LoadedClips":
        return self.take([i for i, c in enumerate(self.clips)
                          if (split is None or c.split == split) and (speakers is None or c.speaker in speakers)
                          and (exclude is None or c.speaker not in exclude)])

    def take(self, indices: Sequence[int]) -> "LoadedClips":
        return LoadedClips([self.clips[i] for i in indices], [self.waveforms[i] for i in indices], [])

    @property
    def speakers(self) -> list[str]:
        return sorted({c.speaker for c in self.clips})


def read_clips(clips: Sequence[Clip], sample_rate: int, progress: bool = True) -> LoadedClips:
    """Read every clip; unreadable, empty or too-short files are skipped and listed, not fatal."""
    loaded = LoadedClips([], [], [])
    for clip in tqdm(clips, desc="reading audio", unit="clip", disable=not progress, leave=False):
        try:
            loaded.waveforms.append(read_audio(clip.path, sample_rate, min_seconds=MIN_CLIP_SECONDS))
            loaded.clips.append(clip)
        except InputError as error:
            loaded.skipped.append((clip.path, error.reason))
    if loaded.skipped:
        listing = "\n  ".join(f"{path}: {reason}" for path, reason in loaded.skipped)
        warnings.warn(f"skipped {len(loaded.skipped)} unreadable or too-short file(s):\n  {listing}")
    if not loaded.clips:
        if len(loaded.skipped) == 1:
            raise InputError(*loaded.skipped[0])
        raise InputError(clips[0].path.parent if clips else "<none>", "no readable audio clips: " + "; ".join(
            f"{Path(path).name}: {reason}" for path, reason in loaded.skipped[:5]))
    return loaded


# ----------------------------------------------------------------------------------------- tensors
def fix_length(waveform: np.ndarray, num_samples: int, rng: np.random.Generator | None) -> np.ndarray:
    """Crop or zero-pad to `num_samples`: a random position when `rng` is given (training), else centred."""
    length = len(waveform)
    if length == num_samples:
        return waveform
    slack = abs(length - num_samples)
    offset = int(rng.integers(0, slack + 1)) if rng is not None else slack // 2
    if length > num_samples:
        return waveform[offset:offset + num_samples]
    padded = np.zeros(num_samples, dtype=np.float32)
    padded[offset:offset + length] = waveform
    return padded


def time_shift(waveform: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift by up to ±max_shift samples, filling with silence (no wrap-around)."""
    shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift > 0 else 0
    if shift == 0:
        return waveform
    shifted = np.zeros_like(waveform)
    if shift > 0:
        shifted[shift:] = waveform[:-shift]
    else:
        shifted[:shift] = waveform[-shift:]
    return shifted


class WaveformDataset:
    """Fixed-length waveforms with speaker indices; random crop and time shift when `train`. A map-style
    dataset for torch's DataLoader (whose collate turns the arrays into tensors); no torch import here, so
    prediction can run without PyTorch."""

    def __init__(self, waveforms: Sequence[np.ndarray], labels: Sequence[int], num_samples: int,
                 train: bool = False, max_shift: int = 0, seed: int = 0):
        if len(waveforms) != len(labels):
            raise ValueError(f"{len(waveforms)} waveforms but {len(labels)} labels")
        self.waveforms = list(waveforms)
        self.labels = list(labels)
        self.num_samples = num_samples
        self.train = train
        self.max_shift = max_shift
        self.seed = seed
        self.epoch_rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.waveforms)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        rng = self.epoch_rng if self.train else None
        waveform = fix_length(self.waveforms[index], self.num_samples, rng)
        if rng is not None:
            waveform = time_shift(waveform, self.max_shift, rng)
        return np.ascontiguousarray(waveform, dtype=np.float32), self.labels[index]


def audio_inputs(paths: Sequence[str | Path]) -> list[Clip]:
    """Clips (with no speaker) for CLI inputs: audio files, and folders searched recursively (a missing one is
    reported and left out, `core.cli.input_files`)."""
    from core.cli import input_files

    return [Clip(path, "") for path in input_files(paths, AUDIO_EXTENSIONS)]
