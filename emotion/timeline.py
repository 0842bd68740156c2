"""A viewer's reaction video -> emotion timeline and highlight moments (and a trailer cut from the content).

    python -m emotion.timeline reaction.mp4 -o out/
    python -m emotion.timeline viewer1.mp4 viewer2.mp4 --offsets 0 3.5 -o out/     # same content, started 3.5 s later
    python -m emotion.timeline reaction.mp4 -o out/ --content episode.mp4 --trailer  # clips + edit list + trailer.mp4

Each video is read as a stream (`core.io.iter_video_frames`) and its per-frame rows are written as they come;
what the per-second curves need is kept as sums per second and viewer (`SecondSums`), so memory stays flat in
the video's length. `FaceTracker` finds faces on the whole frame
every `--detect-every` seconds and follows each one in between by looking again around its last box (one
short-range MediaPipe call per face and frame): each track is one viewer. Every `--every`-th frame the tracked
faces are classified (the frames in between keep the last answer, `classified` = 0 in the CSV).

Outputs in the folder (per video `<stem>_frames.csv`, `<stem>_seconds.csv`; then for all videos together):
- `<stem>_frames.csv`: one row per frame and viewer: time, content time, face found (box, detector, score) or
  not, the nine probabilities, valence, arousal. A frame without a face is a row with `face` = 0 and empty
  answers (a gap, never `neutral`).
- `<stem>_seconds.csv`: per whole second and viewer: the fraction of frames with a face, mean probabilities,
  valence, arousal and the reaction strength (empty where there was no face).
- `combined_seconds.csv`: per second of the content: how many viewers had a face, the mean reaction strength,
  valence and arousal over them.
- `highlights.csv`: the top moments of the combined curve (see `find_highlights`): input (`combined`), start,
  end, label (the dominant emotion), score (the reaction strength), then rank, peak, viewers, valence, arousal.
- `timeline.png`: emotions over time per viewer, valence and arousal, reaction strength with highlights marked.
- with `--content`: `edit_list.csv` (one clip per highlight, in content time) and `clips/clip_NN.mp4`; with
  `--trailer` also `trailer.mp4` (the clips joined, ffmpeg from imageio-ffmpeg).

Reaction strength (per viewer, per second): how far the viewer's face is from their own resting face, as the
total-variation distance 0.5 * sum |p(t) - p_rest| between the second's mean class probabilities and the
viewer's resting face (`resting_face`: the mean over their 20% most neutral-looking frames), plus 0.5 * the
distance in the valence-arousal plane; 0 = the resting face, about 1 = a different expression at full confidence. The combined
curve is the mean over the viewers with a face in that second. Highlights are its peaks, strongest first, at
least `--min-strength` and `--spacing` seconds apart, at most `--top` of them.
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401

import numpy as np  # noqa: E402

from core.cli import InputArgument, ModelArgument, OutputFolder, run_main, skip  # noqa: E402
from core.io import InputError, atomic_open, iter_video_frames, save_figure, video_info, write_csv, write_json  # noqa: E402
from core.timeline import SEGMENT_COLUMNS  # noqa: E402
from core.weights import released  # noqa: E402
from emotion.faces import FaceBox, iou  # noqa: E402


# ----------------------------------------------------------------------------------------- tracking
@dataclass
class Track:
    id: int
    box: FaceBox
    missed: int = 0
    probabilities: np.ndarray | None = None
    va: np.ndarray | None = None
    frames: int = 0


@dataclass
class TrackedFace:
    viewer: int
    box: FaceBox


class FaceTracker:
    """Faces followed across frames, one identity each. `push(rgb, t)` -> the faces in this frame.

    The whole frame is searched (`detector.detect`) every `detect_every` seconds and whenever nobody is tracked;
    in between each track is looked for again around its last box (`detector.detect_near`). A detection joins
    the track it overlaps most (IoU >= `min_iou`, or its centre inside the track's box); a track not found for
    `max_missed` frames ends; a detection that joins no track starts a new one, reported once it has been found
    in `min_hits` looks (a false face seldom comes back in the next frame)."""

    def __init__(self, detector, detect_every: float = 1.0, max_missed: int = 5, min_iou: float = 0.3, min_hits: int = 2):
        self.detector, self.detect_every, self.max_missed, self.min_iou = detector, detect_every, max_missed, min_iou
        self.min_hits = min_hits
        self.tracks: list[Track] = []
        self.next_id = 1
        self._last_search: float | None = None

    def push(self, rgb: np.ndarray, t: float, look: bool = True) -> list[TrackedFace]:
        """The faces in this frame. With `look=False` the tracks keep their last boxes (no detection: the frames
        between two looks of `--every`)."""
        if not look and self._last_search is not None:
            return self._reported()
        search = (not self.tracks or self._last_search is None or t - self._last_search >= self.detect_every)
        found: list[FaceBox] = []
        if search:
            found = self.detector.detect(rgb)
            self._last_search = t
        else:
            for track in self.tracks:
                near = self.detector.detect_near(rgb, track.box)
                near = [b for b in near if self.detector.is_face(b)]
                if near:
                    found.append(max(near, key=lambda b: iou(b, track.box)))
        matched: dict[int, FaceBox] = {}   # by id() of the track: tentative tracks have no viewer number yet
        for box in sorted(found, key=lambda b: b.score, reverse=True):
            candidates = [tr for tr in self.tracks if id(tr) not in matched and self._same(tr.box, box)]
            if candidates:
                best = max(candidates, key=lambda tr: iou(tr.box, box))
                matched[id(best)] = box
            elif all(iou(box, other) < 0.3 for other in matched.values()):
                track = Track(0, box)
                self.tracks.append(track)
                matched[id(track)] = box
        for track in self.tracks:
            if id(track) in matched:
                track.box, track.missed = matched[id(track)], 0
                track.frames += 1
                if track.id == 0 and track.frames >= self.min_hits:
                    track.id, self.next_id = self.next_id, self.next_id + 1
            else:
                track.missed += 1
        # a tentative track (not yet found in min_hits looks) ends at its first miss
        self.tracks = [tr for tr in self.tracks if tr.missed <= (self.max_missed if tr.frames >= self.min_hits else 0)]
        return self._reported()

    def _reported(self) -> list[TrackedFace]:
        return [TrackedFace(tr.id, tr.box) for tr in self.tracks if tr.missed == 0 and tr.frames >= self.min_hits]

    def _same(self, a: FaceBox, b: FaceBox) -> bool:
        cx, cy = b.centre
        return iou(a, b) >= self.min_iou or (a.x <= cx <= a.x + a.w and a.y <= cy <= a.y + a.h)


@dataclass
class ViewerEmotion:
    viewer: int
    box: FaceBox
    probabilities: np.ndarray
    va: np.ndarray
    classified: bool   # classified on this frame; False: the viewer's last answer, kept


class EmotionTracker:
    """The faces of a stream followed (`FaceTracker`: one identity per viewer) and classified. `push(rgb, t, look,
    classify)`: with `look` the tracker looks for the faces (else they keep their boxes); with `look` and `classify`
    every face is classified, and a viewer seen for the first time always is; otherwise each viewer keeps their
    last answer. `analyse_video` drives it on every k-th frame of a file, the live `EmotionStage` on the frames its
    phase works on: a file and a camera give the same answers. At most `max_faces` faces, largest first (0: all)."""

    def __init__(self, recognizer, tracker: FaceTracker, max_faces: int = 0):
        self.recognizer, self.tracker, self.max_faces = recognizer, tracker, max_faces
        self.last: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def push(self, rgb: np.ndarray, t: float, look: bool = True, classify: bool = True) -> list[ViewerEmotion]:
        from emotion.data import to_gray_square

        faces = sorted(self.tracker.push(rgb, t, look), key=lambda f: f.box.area, reverse=True)
        faces = faces[:self.max_faces] if self.max_faces > 0 else faces
        classify = (look and classify) or any(face.viewer not in self.last for face in faces)
        if faces and classify:
            detector = self.recognizer.detector
            crops = np.stack([to_gray_square(detector.square_crop(rgb, f.box), self.recognizer.input_size) for f in faces])
            probabilities, va = self.recognizer.predict_faces(crops)
            for face, p, v in zip(faces, probabilities, va):
                self.last[face.viewer] = (p, v)
        # the answers of viewers whose track has ended go (memory grows with the viewers present, not the frames)
        alive = {track.id for track in self.tracker.tracks}
        self.last = {viewer: answer for viewer, answer in self.last.items() if viewer in alive}
        return [ViewerEmotion(f.viewer, f.box, *self.last[f.viewer], classify) for f in faces]


# ----------------------------------------------------------------------------------------- one video
REST_BINS = 200   # p(neutral) is binned this finely to find a viewer's most neutral-looking frames


class SecondSums:
    """What the per-second table needs, gathered one frame at a time (`add_frame`, then `add` per face): sums per
    viewer and content second, and per viewer a histogram of p(neutral) with the sums of each bin (their resting
    face). Memory grows with the seconds and the viewers, never with the frames."""

    def __init__(self, labels: list[str]):
        self.labels = list(labels)
        self.frames_per_second: dict[int, int] = {}
        self.sums: dict[int, dict[int, np.ndarray]] = {}   # viewer -> second -> [frames, p..., valence, arousal]
        self.rest: dict[int, np.ndarray] = {}              # viewer -> (REST_BINS, 1 + K + 2), the same columns
        self.neutral = self.labels.index("neutral") if "neutral" in self.labels else None

    def add_frame(self, content_time: float) -> None:
        second = int(np.floor(content_time))
        self.frames_per_second[second] = self.frames_per_second.get(second, 0) + 1

    def add(self, viewer: int, content_time: float, probabilities: np.ndarray, va: np.ndarray) -> None:
        row = np.concatenate([[1.0], probabilities, va])
        per_second = self.sums.setdefault(viewer, {})
        second = int(np.floor(content_time))
        per_second[second] = per_second.get(second, 0.0) + row
        rest = self.rest.setdefault(viewer, np.zeros((REST_BINS, len(row))))
        neutral = probabilities[self.neutral] if self.neutral is not None else 0.0
        rest[min(int(neutral * REST_BINS), REST_BINS - 1)] += row

    @property
    def viewers(self) -> list[int]:
        return sorted(self.sums)

    def frames_of(self, viewer: int) -> int:
        return int(self.rest[viewer][:, 0].sum())


@dataclass
class VideoTimeline:
    path: Path
    offset: float
    fps: float
    seconds: SecondSums
    frames: int = 0              # frames read
    frames_with_face: int = 0
    last_time: float = 0.0       # the last frame's timestamp (s)
    note: str = ""

    @property
    def viewers(self) -> list[int]:
        return self.seconds.viewers


FRAME_COLUMNS = ["frame", "time", "content_time", "viewer", "face", "x", "y", "w", "h", "detector", "score",
                 "classified", "emotion"]


def frame_columns(labels: list[str]) -> list[str]:
    """The columns of `<stem>_frames.csv`."""
    return [*FRAME_COLUMNS, *labels, "valence", "arousal"]


def analyse_video(path: Path, recognizer, tracker: FaceTracker, offset: float = 0.0, every: int = 1,
                  progress: bool = True, write_row=None) -> VideoTimeline:
    """Stream the video, track and classify faces (`EmotionTracker`, looking every `every`-th frame). Each frame's
    rows (one per viewer, or one with `face` = 0) go to `write_row` as they come (a csv.DictWriter's writerow;
    None: not kept) and into the returned VideoTimeline's per-second sums: nothing grows with the frames."""
    from tqdm import tqdm

    info = video_info(path)
    labels = recognizer.labels
    timeline = VideoTimeline(Path(path), offset, info.fps or 25.0, SecondSums(labels))
    emotions = EmotionTracker(recognizer, tracker)
    frames = iter_video_frames(path)
    bar = tqdm(frames, total=info.frame_count or None, desc=Path(path).name, unit="frame", disable=not progress,
               file=sys.stderr, leave=False)
    for index, seconds, rgb in bar:
        faces = emotions.push(rgb, seconds, look=index % every == 0)
        content_time = seconds + offset
        timeline.seconds.add_frame(content_time)
        timeline.frames, timeline.last_time = timeline.frames + 1, seconds
        timeline.frames_with_face += bool(faces)
        base = {"frame": index, "time": round(seconds, 4), "content_time": round(content_time, 4)}
        if not faces and write_row is not None:
            write_row({**base, "viewer": "", "face": 0})
        for face in faces:
            p, v, box = face.probabilities, face.va, face.box
            timeline.seconds.add(face.viewer, content_time, p, v)
            if write_row is not None:
                write_row({**base, "viewer": face.viewer, "face": 1, "x": box.x, "y": box.y, "w": box.w, "h": box.h,
                           "detector": box.detector, "score": round(box.score, 3), "classified": int(face.classified),
                           "emotion": labels[int(np.argmax(p))],
                           **{label: round(float(q), 5) for label, q in zip(labels, p)},
                           "valence": round(float(v[0]), 4), "arousal": round(float(v[1]), 4)})
    bar.close()
    timeline.note = frames.note
    return timeline


def seconds_table(sums: SecondSums):
    """Per whole second (of content time) and viewer: face fraction, mean answers, reaction strength against
    the viewer's resting face. Seconds without a face keep a row with empty answers."""
    import pandas as pd

    labels = sums.labels
    columns = ["second", "viewer", "face_fraction", *labels, "valence", "arousal", "strength"]
    seconds = sorted(sums.frames_per_second)
    rows = []
    for viewer in sums.viewers:
        if sums.frames_of(viewer) < 2:   # a one-frame track is no viewer
            continue
        rest_p, rest_va = resting_face(sums.rest[viewer])
        for second in seconds:
            row = {"second": second, "viewer": viewer}
            total = sums.sums[viewer].get(second)
            if total is not None:
                mean = total[1:] / total[0]
                p, va = mean[:len(labels)], mean[len(labels):]
                row |= {"face_fraction": round(total[0] / sums.frames_per_second[second], 3),
                        **{k: round(float(v), 5) for k, v in zip(labels, p)},
                        "valence": round(float(va[0]), 4), "arousal": round(float(va[1]), 4),
                        "strength": round(reaction_strength(p, va, rest_p, rest_va), 4)}
            else:
                row["face_fraction"] = 0.0
            rows.append(row)
    if not rows:   # nobody at all: every second is a gap
        rows = [{"second": s, "viewer": "", "face_fraction": 0.0} for s in seconds]
    return pd.DataFrame(rows, columns=columns)


def resting_face(bins: np.ndarray, share: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A viewer's resting face from their p(neutral) histogram (`SecondSums.rest`): the mean probabilities and VA
    over their `share` most neutral-looking frames (the highest bins until they hold `share` of the frames; all
    frames when there are fewer than 5). Their own, so a face that rests a little sad or smiling is measured
    against itself; and not the median, which a long laugh or cry would move (half of a 20 s clip crying, half
    laughing)."""
    counts = bins[:, 0]
    if counts.sum() >= 5:
        from_top = np.cumsum(counts[::-1])
        keep = int(np.searchsorted(from_top, share * counts.sum())) + 1   # bins from the top
        bins = bins[len(bins) - keep:]
    total = bins.sum(axis=0)
    mean = total[1:] / max(total[0], 1e-9)
    p, va = mean[:-2], mean[-2:]
    return p / max(p.sum(), 1e-9), va


def reaction_strength(p: np.ndarray, va: np.ndarray, rest_p: np.ndarray, rest_va: np.ndarray) -> float:
    """0.5 * sum |p - p_rest| + 0.5 * |VA - VA_rest| (see the module docstring)."""
    return float(0.5 * np.abs(p - rest_p).sum() + 0.5 * np.hypot(*(va - rest_va)))


def combine(seconds_tables: list, labels: list[str]):
    """Per content second: viewers with a face, mean strength, valence, arousal and probabilities over them."""
    import pandas as pd

    table = pd.concat([t for t in seconds_tables if not t.empty], ignore_index=True) if seconds_tables else pd.DataFrame()
    if table.empty:
        return pd.DataFrame(columns=["second", "viewers", "strength", "valence", "arousal", "emotion"])
    present = table.dropna(subset=["strength"])
    seconds = sorted(table["second"].unique())
    grouped = present.groupby("second")
    mean = grouped[["strength", "valence", "arousal", *labels]].mean()
    count = grouped["strength"].count()   # one row per viewer and second in each video's table
    rows = []
    for second in seconds:
        if second in mean.index:
            p = mean.loc[second, labels].to_numpy(dtype=float)
            rows.append({"second": int(second), "viewers": int(count[second]),
                         "strength": round(float(mean.loc[second, "strength"]), 4),
                         "valence": round(float(mean.loc[second, "valence"]), 4),
                         "arousal": round(float(mean.loc[second, "arousal"]), 4), "emotion": labels[int(np.argmax(p))]})
        else:
            rows.append({"second": int(second), "viewers": 0})
    return pd.DataFrame(rows, columns=["second", "viewers", "strength", "valence", "arousal", "emotion"])


# ----------------------------------------------------------------------------------------- highlights
def find_highlights(seconds: np.ndarray, strength: np.ndarray, top: int = 5, spacing: float = 10.0,
                    min_strength: float = 0.3) -> list[dict]:
    """The strongest moments of a curve (NaN = no face: never a highlight): local maxima at least `min_strength`,
    taken strongest first, each at least `spacing` seconds from every one already taken, at most `top`. Each
    highlight spans the seconds around its peak that stay above half its strength."""
    seconds, strength = np.asarray(seconds, dtype=float), np.asarray(strength, dtype=float)
    valid = np.where(np.isfinite(strength), strength, -np.inf)
    order = np.argsort(-valid, kind="stable")
    taken: list[dict] = []
    for i in order:
        if valid[i] < min_strength or len(taken) >= top:
            break
        left, right = valid[i - 1] if i > 0 else -np.inf, valid[i + 1] if i + 1 < len(valid) else -np.inf
        if valid[i] < left or valid[i] < right:   # not a peak
            continue
        if any(abs(seconds[i] - h["peak"]) < spacing for h in taken):
            continue
        lo = hi = i
        while lo > 0 and valid[lo - 1] >= valid[i] / 2:
            lo -= 1
        while hi + 1 < len(valid) and valid[hi + 1] >= valid[i] / 2:
            hi += 1
        taken.append({"peak": float(seconds[i]), "start": float(seconds[lo]), "end": float(seconds[hi] + 1),
                      "strength": float(valid[i])})
    for rank, highlight in enumerate(taken, 1):
        highlight["rank"] = rank
    return taken


# ----------------------------------------------------------------------------------------- content cut
def edit_list(highlights: list[dict], content_seconds: float, before: float = 4.0, after: float = 4.0) -> list[dict]:
    """One clip per highlight, in content time and in the order of the content: [peak - before, peak + after]
    clipped to the content, overlapping clips merged."""
    clips = []
    for h in sorted(highlights, key=lambda h: h["peak"]):
        start, end = max(h["peak"] - before, 0.0), min(h["peak"] + 1 + after, content_seconds)
        if end <= start:
            continue
        if clips and start <= clips[-1]["end"]:
            clips[-1]["end"] = max(clips[-1]["end"], end)
            clips[-1]["highlights"] += f" {h['rank']}"
        else:
            clips.append({"start": round(start, 3), "end": round(end, 3), "highlights": str(h["rank"])})
    for n, clip in enumerate(clips, 1):
        clip["clip"] = f"clip_{n:02d}.mp4"
        clip["duration"] = round(clip["end"] - clip["start"], 3)
    return clips


def cut_clips(content: Path, clips: list[dict], folder: Path, trailer: Path | None = None) -> list[Path]:
    """Cut each clip from the content with ffmpeg (re-encoded, so cuts are frame-exact), and join them into
    `trailer` when given. Every file is written beside its target first and renamed when complete."""
    import subprocess

    import imageio_ffmpeg

    from core.io import atomic_path

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for clip in clips:
        with atomic_path(folder / clip["clip"]) as tmp:
            command = [ffmpeg, "-y", "-loglevel", "error", "-ss", f"{clip['start']:.3f}", "-i", str(content),
                       "-t", f"{clip['duration']:.3f}", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                       "-c:a", "aac", "-f", "mp4", str(tmp)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise InputError(content, f"ffmpeg could not cut {clip['start']:.2f}-{clip['end']:.2f} s: "
                                          f"{result.stderr.strip()[-300:]}")
        written.append(folder / clip["clip"])
    if trailer is not None and written:
        with atomic_path(folder / "concat.txt") as listing:
            listing.write_text("".join(f"file '{p.resolve()}'\n" for p in written))
            with atomic_path(trailer) as tmp:
                result = subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i",
                                         str(listing), "-c", "copy", "-f", "mp4", str(tmp)], capture_output=True, text=True)
                if result.returncode != 0:
                    raise InputError(trailer, f"ffmpeg could not join the clips: {result.stderr.strip()[-300:]}")
        (folder / "concat.txt").unlink(missing_ok=True)
        written.append(trailer)
    return written


# ----------------------------------------------------------------------------------------- plot
def plot_timeline(per_video: list[tuple[str, object]], combined, highlights: list[dict], labels: list[str]):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [2, 1, 1]})
    colours = plt.get_cmap("tab10")
    for name, seconds in per_video:
        for viewer, group in seconds.groupby("viewer") if not seconds.empty else []:
            if group["strength"].isna().all():
                continue
            x = group["second"].to_numpy() + 0.5
            for k, label in enumerate(labels):
                y = group[label].to_numpy(dtype=float)
                if np.nanmax(np.nan_to_num(y, nan=0)) >= 0.2:
                    axes[0].plot(x, y, color=colours(k % 10), label=f"{label}" if len(per_video) == 1 else
                                 f"{name} #{viewer} {label}")
            axes[1].plot(x, group["valence"], color="tab:green", alpha=0.8)
            axes[1].plot(x, group["arousal"], color="tab:red", alpha=0.8)
    axes[0].set_ylabel("probability")
    axes[0].set_ylim(0, 1)
    axes[0].legend(fontsize=7, ncol=5, loc="upper right")
    axes[1].set_ylabel("valence (green)\narousal (red)")
    axes[1].axhline(0, color="grey", lw=0.5)
    if not combined.empty and "strength" in combined:
        axes[2].plot(combined["second"] + 0.5, combined["strength"].astype(float), color="black")
    axes[2].set_ylabel("reaction strength")
    axes[2].set_xlabel("content time (s); gaps = no face")
    for h in highlights:
        for axis in axes:
            axis.axvspan(h["start"], h["end"], color="gold", alpha=0.3)
        axes[2].annotate(f"#{h['rank']}", (h["peak"] + 0.5, h["strength"]), fontsize=8)
    axes[0].set_title("emotion timeline" + (" (no face found)" if combined.empty or combined["viewers"].max() == 0 else ""))
    figure.tight_layout()
    return figure


# ----------------------------------------------------------------------------------------- command
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+", type=InputArgument("video", as_path=False),
                        help="reaction videos (one or more viewers of the same content)")
    parser.add_argument("-o", "--output", type=OutputFolder(), default="timeline", help="output folder (default %(default)s)")
    parser.add_argument("--offsets", type=float, nargs="+", default=None,
                        help="content time (s) at which each reaction video starts (default 0 for every video)")
    parser.add_argument("--weights", type=ModelArgument("emotion"), default=None,
                        help="emotion model (default: the released recognizer weights/emotion/emotion.onnx)")
    parser.add_argument("--every", type=int, default=2,
                        help="look for the faces and classify them every k-th frame; the frames between keep the last "
                             "box and answer (classified = 0) (default %(default)s)")
    parser.add_argument("--detect-every", type=float, default=1.0, help="seconds between whole-frame face searches")
    parser.add_argument("--min-face", type=int, default=0,
                        help="also search tiles for faces down to this side in pixels (slower; 0: whole-frame models only)")
    parser.add_argument("--top", type=int, default=5, help="highlights to keep")
    parser.add_argument("--spacing", type=float, default=10.0, help="minimum seconds between highlights")
    parser.add_argument("--min-strength", type=float, default=0.3, help="minimum reaction strength of a highlight")
    parser.add_argument("--content", type=Path, default=None,
                        help="the content the viewers watched: clips around each highlight + edit_list.csv")
    parser.add_argument("--before", type=float, default=4.0, help="seconds of content before each highlight's peak")
    parser.add_argument("--after", type=float, default=4.0, help="seconds of content after each highlight's peak")
    parser.add_argument("--trailer", action="store_true", help="with --content: also join the clips into trailer.mp4")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the emotion network")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    offsets = args.offsets if args.offsets is not None else [0.0] * len(args.videos)
    if len(offsets) != len(args.videos):
        raise ValueError(f"--offsets: {len(offsets)} values for {len(args.videos)} videos")
    if args.trailer and args.content is None:
        raise ValueError("--trailer needs --content (the video the trailer is cut from)")
    if args.every < 1:
        raise ValueError("--every must be at least 1")
    content_seconds = None
    if args.content is not None:
        content_seconds = video_info(args.content).duration_seconds   # InputError for a missing / unreadable file
        if content_seconds <= 0:
            raise InputError(args.content, "cannot tell the content's duration")
    # the videos that open at all, and their spans in content time (offsets must overlap)
    opened = []
    for video, offset in zip(args.videos, offsets):
        try:
            info = video_info(video)
        except InputError as error:
            opened.append((video, offset, error))
            continue
        opened.append((video, offset, info))
    usable = [(v, o, i) for v, o, i in opened if not isinstance(i, InputError)]
    if not usable:
        errors = [i for _, _, i in opened]
        raise errors[0] if len(errors) == 1 else InputError(errors[0].path, f"{errors[0].reason} (and {len(errors) - 1} "
                                                                          "more videos, none usable)")
    if len(usable) > 1:
        spans = [(o, o + i.duration_seconds) for _, o, i in usable]
        if max(s for s, _ in spans) >= min(e for _, e in spans):
            raise InputError(usable[0][0], "the --offsets put the videos on content spans that do not overlap: "
                             + ", ".join(f"{v} {s:.1f}-{e:.1f} s" for (v, _, _), (s, e) in zip(usable, spans)))
    if content_seconds is not None:
        end = max(o + i.duration_seconds for _, o, i in usable)
        if content_seconds + 0.5 < end:
            raise InputError(args.content, f"the content is {content_seconds:.1f} s long, shorter than the reactions "
                                           f"(they reach {end:.1f} s of content time)")
    for video, _, error in opened:
        if isinstance(error, InputError):
            skip(video, error.reason)

    from emotion.faces import FaceDetector
    from emotion.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer(args.weights or released("emotion", "recognizer"), detector="none",
                                   threads=args.threads)
    labels = list(recognizer.labels)
    folder = Path(args.output)
    created = not folder.exists()
    per_video, failed, names = [], [], []
    for video, offset, _ in usable:
        stem = Path(video).stem
        stem = stem if stem not in names else f"{stem}_{len(names)}"
        names.append(stem)
        detector = FaceDetector("mediapipe", min_face=args.min_face)
        recognizer.detector = detector
        try:
            # the per-frame rows go to the file as they come (renamed into place once the video is read)
            with atomic_open(folder / f"{stem}_frames.csv") as handle:
                writer = csv.DictWriter(handle, frame_columns(labels), restval="")
                writer.writeheader()
                timeline = analyse_video(Path(video), recognizer, FaceTracker(detector, args.detect_every), offset,
                                         args.every, args.progress, writer.writerow)
                if not timeline.viewers and timeline.note:
                    # a cut file with no face in the part that decodes: nothing in it to use
                    raise InputError(video, f"{timeline.note}; no face in the decoded part")
        except InputError as error:
            failed.append(error)
            continue
        finally:
            detector.close()
        per_video.append((stem, timeline, seconds_table(timeline.seconds)))
    if not per_video:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise failed[0] if len(failed) == 1 else InputError(failed[0].path, f"{failed[0].reason} (and {len(failed) - 1} "
                                                                            "more videos, none usable)")
    for error in failed:
        skip(error.path, error.reason)
    combined = combine([seconds for _, _, seconds in per_video], labels)
    strength = combined["strength"].to_numpy(dtype=float) if "strength" in combined else np.array([])
    highlights = find_highlights(combined["second"].to_numpy(), strength, args.top, args.spacing, args.min_strength)
    for h in highlights:
        row = combined[combined["second"] == int(h["peak"])].iloc[0]
        h |= {"emotion": row["emotion"], "viewers": int(row["viewers"]), "valence": row["valence"], "arousal": row["arousal"]}
    for stem, _, seconds in per_video:
        write_csv(folder / f"{stem}_seconds.csv", seconds)
    write_csv(folder / "combined_seconds.csv", combined)
    import pandas as pd

    # every task's timeline columns first (core.timeline.SEGMENT_COLUMNS): the combined curve's moment, its emotion
    # and strength
    rows = [{"input": "combined", "label": h.get("emotion", ""), "score": h["strength"], **h} for h in highlights]
    write_csv(folder / "highlights.csv", pd.DataFrame(rows, columns=[*SEGMENT_COLUMNS, "rank", "peak", "viewers", "valence",
                                                                     "arousal"]))
    save_figure(plot_timeline([(stem, seconds) for stem, _, seconds in per_video], combined, highlights, labels),
                folder / "timeline.png")
    summary = {"videos": [{"path": str(t.path), "offset": t.offset, "frames": t.frames,
                           "frames_with_face": t.frames_with_face, "viewers": t.viewers, "note": t.note}
                          for _, t, _ in per_video],
               "highlights": highlights, "strength": "0.5 * sum|p - p_rest| + 0.5 * |VA - VA_rest| per viewer and second"}
    if args.content is not None:
        clips = edit_list(highlights, content_seconds, args.before, args.after)
        write_csv(folder / "edit_list.csv", pd.DataFrame(clips, columns=["clip", "start", "end", "duration", "highlights"]))
        cut_clips(Path(args.content), clips, folder / "clips", folder / "trailer.mp4" if args.trailer else None)
        summary["clips"] = clips
    write_json(folder / "summary.json", summary)
    for _, timeline, _ in per_video:
        if not timeline.viewers:
            skip(timeline.path, f"no face in any of its {timeline.frames} frames (empty curves written)")
    print(f"wrote {folder}: {len(per_video)} video(s), {len(highlights)} highlight(s)"
          + "".join(f"\n  #{h['rank']} {h['start']:.0f}-{h['end']:.0f} s (peak {h['peak']:.0f} s) strength "
                    f"{h['strength']:.2f} {h['emotion']}" for h in highlights))
    recognizer.close()
    return 0


if __name__ == "__main__":
    run_main(main)
