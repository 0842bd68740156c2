"""What happens when in a long video: a window slid over the frames as they stream, one answer per window,
neighbouring windows with the same answer merged into segments (start, end, label, confidence, top-k).

`WindowSampler` takes frames one at a time (`push(frame, seconds)`, a numpy RGB frame or a lazily converted
core.io.AvFrame) and hands back each window's `num_frames` frames as soon as its last one has passed: the frame
shown at the centre of each of `num_frames` equal parts of the window, the rule `data.even_indices` applies
to a whole clip, so a window as long as a clip samples what the clip answer samples. `ActionTimeline` scores
each window with a clip model as it completes (nothing waits for the end of the video, memory stays flat) and
is what a file and a live stream both drive. `merge_windows` turns the windows into segments: window k speaks
for the `hop` seconds around its centre (the first from 0, the last to the end of the video), and neighbours
with the same label join. Below the open-set threshold (`unknown.py`) a window's label is `unknown`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from action_recognition.data import resize_frames

UNKNOWN = "unknown"


@dataclass
class Window:
    start: float
    end: float
    frames: np.ndarray            # (num_frames, size, size, 3) uint8


@dataclass
class WindowResult:
    start: float
    end: float
    probabilities: np.ndarray     # (C,)


@dataclass
class Segment:
    start: float
    end: float
    label: str                    # a class, or `unknown` below the threshold
    confidence: float             # the mean over the segment's windows of the best known class's probability
    probabilities: np.ndarray     # (C,) the mean over its windows
    windows: int


def _as_rgb(frame) -> np.ndarray:
    return frame if isinstance(frame, np.ndarray) else frame.to_rgb()


class WindowSampler:
    """Windows of `length` seconds every `hop` seconds, `num_frames` frames each, from frames pushed in time
    order. A frame is converted (and resized to `size`) only when a window picks it, once however many do."""

    def __init__(self, num_frames: int, size: int | None, length: float, hop: float):
        if length <= 0 or hop <= 0:
            raise ValueError(f"window length and hop must be positive, not {length} and {hop}")
        self.num_frames, self.size, self.length, self.hop = num_frames, size, length, hop
        self.pending: list[tuple[float, list[float], list]] = []   # (start, target times, picked frames)
        self.next_start = 0.0
        self.previous = None          # (seconds, frame, converted or None)
        self.last_seconds = 0.0

    def _targets(self, start: float) -> list[float]:
        return [start + (j + 0.5) * self.length / self.num_frames for j in range(self.num_frames)]

    def _converted(self) -> np.ndarray:
        seconds, frame, converted = self.previous
        if converted is None:
            converted = resize_frames(_as_rgb(frame)[None], self.size)[0]
            self.previous = (seconds, frame, converted)
        return converted

    def _assign(self, before: float) -> None:
        """Give the previous frame to every pending target shown before `before` (when the next frame starts)."""
        for _, targets, picked in self.pending:
            while len(picked) < len(targets) and targets[len(picked)] < before:
                picked.append(self._converted())

    def _complete(self) -> list[Window]:
        done = [w for w in self.pending if len(w[2]) == len(w[1])]
        self.pending = [w for w in self.pending if len(w[2]) < len(w[1])]
        return [Window(start, start + self.length, np.stack(picked)) for start, _, picked in done]

    def push(self, frame, seconds: float) -> list[Window]:
        """Add the frame shown from `seconds` on; the windows completed by it."""
        if self.previous is not None:
            self._assign(seconds)
        while self.next_start <= seconds + 1e-9:
            self.pending.append((self.next_start, self._targets(self.next_start), []))
            self.next_start = round(self.next_start + self.hop, 9)
        self.previous, self.last_seconds = (seconds, frame, None), seconds
        return self._complete()

    def finish(self, end_seconds: float) -> list[Window]:
        """The windows that end by `end_seconds` (the video's end: last frame's time plus one frame) and are
        still open; a window running past the end is dropped (its seconds are covered by `merge_windows`)."""
        if self.previous is not None:
            self._assign(end_seconds)
        windows = [w for w in self._complete() if w.end <= end_seconds + 1e-6]
        self.pending, self.previous = [], None
        return windows


class ActionTimeline:
    """Scores windows as they complete: `push(frame, seconds)` returns the new WindowResults (usually none or
    one), `finish(end_seconds)` the last ones. `score(frames) -> (C,) probabilities` is a clip model. `results`
    keeps every window for a file's segments; a live stream (`keep_results=False`) keeps none, so an endless one
    holds no more than the open windows."""

    def __init__(self, score: Callable[[np.ndarray], np.ndarray], num_frames: int, size: int | None,
                 length: float = 2.0, hop: float = 1.0, keep_results: bool = True):
        self.score, self.keep_results = score, keep_results
        self.sampler = WindowSampler(num_frames, size, length, hop)
        self.results: list[WindowResult] = []

    def _scored(self, windows: list[Window]) -> list[WindowResult]:
        new = [WindowResult(w.start, w.end, np.asarray(self.score(w.frames), dtype=np.float64)) for w in windows]
        if self.keep_results:
            self.results += new
        return new

    def push(self, frame, seconds: float) -> list[WindowResult]:
        return self._scored(self.sampler.push(frame, seconds))

    def finish(self, end_seconds: float) -> list[WindowResult]:
        return self._scored(self.sampler.finish(end_seconds))


def window_label(probabilities: np.ndarray, labels: Sequence[str], threshold: float | None = None) -> str:
    """The best class, or `unknown` when its probability is below the open-set threshold."""
    best = int(np.argmax(probabilities))
    return UNKNOWN if threshold is not None and probabilities[best] < threshold else labels[best]


def merge_windows(results: Sequence[WindowResult], labels: Sequence[str], end_seconds: float,
                  threshold: float | None = None) -> list[Segment]:
    """Segments from windows in time order: each window speaks for `hop` seconds around its centre (the first
    from 0, the last to `end_seconds`), and neighbours with the same label join."""
    segments: list[Segment] = []
    centres = [(r.start + r.end) / 2 for r in results]
    for k, result in enumerate(results):
        start = 0.0 if k == 0 else (centres[k - 1] + centres[k]) / 2
        end = end_seconds if k == len(results) - 1 else (centres[k] + centres[k + 1]) / 2
        label = window_label(result.probabilities, labels, threshold)
        confidence = float(result.probabilities.max())
        if segments and segments[-1].label == label:
            last = segments[-1]
            last.probabilities = (last.probabilities * last.windows + result.probabilities) / (last.windows + 1)
            last.confidence = (last.confidence * last.windows + confidence) / (last.windows + 1)
            last.end, last.windows = end, last.windows + 1
        else:
            segments.append(Segment(start, end, label, confidence, result.probabilities.copy(), 1))
    return segments


def segment_rows(source: str, segments: Sequence[Segment], labels: Sequence[str], top_k: int = 1,
                 note: str = "") -> list[dict]:
    """CSV rows: input, start, end, label, score (core.timeline.SEGMENT_COLUMNS; the score is the segment's mean
    best-class probability), then label_2, probability_2 ... (the segment's mean probabilities), windows, note."""
    rows = []
    for segment in segments:
        order = np.argsort(-segment.probabilities)[:max(1, min(top_k, len(labels)))]
        row = {"input": source, "start": round(segment.start, 3), "end": round(segment.end, 3), "label": segment.label,
               "score": round(segment.confidence, 6)}
        for rank, k in enumerate(order, start=1):
            if rank > 1 or segment.label == UNKNOWN:   # an unknown segment still lists the known classes it was nearest to
                row[f"label_{rank}"], row[f"probability_{rank}"] = labels[k], round(float(segment.probabilities[k]), 6)
        row["windows"], row["note"] = segment.windows, note
        rows.append(row)
    return rows


def timeline_panel(source: str, segments: Sequence[Segment], results: Sequence[WindowResult], end: float,
                   threshold: float | None = None):
    """A video's segments as a panel of the shared timeline plot, each window's best-class probability drawn over
    them (the `unknown` threshold dashed)."""
    from core.timeline import Panel

    curve = ([(r.start + r.end) / 2 for r in results], [float(r.probabilities.max()) for r in results]) if results else None
    return Panel(Path(source).name, [(s.start, s.end, s.label) for s in segments], curve=curve, threshold=threshold,
                 duration=end)
