"""Kinetics-format CSV -> downloaded, cut and re-encoded clips in a folder per class.

    python -m action_recognition.download kinetics700_train.csv -o data/dancing --pattern dancing --per-class 200
    python -m action_recognition.download list.csv -o clips/ --url-template "http://127.0.0.1:8000/{youtube_id}.mp4"

For each selected row (`label,youtube_id,time_start,time_end,split`), a pool of workers
1. downloads the video with yt-dlp (YouTube by default; `--url-template` points elsewhere, e.g. a
   local server), retrying transient errors (HTTP 5xx, timeouts, refused connections) with
   exponential back-off; permanent errors (unavailable, private, geo-blocked) are not retried;
2. cuts `[time_start, time_end]` with ffmpeg (the binary from imageio-ffmpeg, no root needed) and
   re-encodes to H.264 with a fixed short side and frame rate, into
   `OUT/<split>/<label>/<youtube_id>_<start>_<end>.mp4` (the layout data.read_video_folders reads);
3. deletes the full download unless `--keep-raw`.
A clip whose output exists is skipped (resume), and so is a clip that failed permanently before
(unavailable, private, geo-blocked, window outside video) unless `--retry-failed`. `OUT/manifest.csv`
lists every clip on disk and `OUT/failures.csv` every clip that is not, with its reason: unavailable,
private, geo-blocked, download failed (transient errors after all retries), cut failed, window outside video.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
from core.cli import OutputFolder, run_main  # noqa: E402
from core.io import InputError, atomic_path, video_info, write_csv  # noqa: E402
from action_recognition.data import KineticsEntry, read_kinetics_csv, select_classes  # noqa: E402

YOUTUBE_TEMPLATE = "https://www.youtube.com/watch?v={youtube_id}"
MANIFEST_COLUMNS = ["path", "label", "youtube_id", "time_start", "time_end", "split", "duration", "note"]
FAILURE_COLUMNS = ["label", "youtube_id", "time_start", "time_end", "split", "reason", "detail", "attempts"]

# Substrings of yt-dlp's messages -> our failure reason. Checked in order; the first match wins.
PERMANENT_ERRORS = (
    ("private", ("private video", "this video is private")),
    ("geo-blocked", ("available in your country", "geo restrict", "geo-restrict", "blocked it in your country")),
    ("unavailable", ("video unavailable", "http error 404", "http error 410", "http error 403", "has been removed",
                     "account associated with this video has been terminated", "no video formats", "unsupported url",
                     "is not a valid url", "does not exist", "sign in to confirm your age")),
)
PERMANENT_REASONS = ("unavailable", "private", "geo-blocked", "window outside video")
TRANSIENT_ERRORS = ("http error 5", "timed out", "timeout", "connection refused", "connection reset",
                    "temporary failure", "remote end closed", "incomplete read", "http error 429")


@dataclass
class DownloadOptions:
    out_dir: Path
    url_template: str = YOUTUBE_TEMPLATE
    workers: int = 4
    retries: int = 3
    backoff_seconds: float = 2.0
    short_side: int = 256
    fps: float = 25.0
    keep_raw: bool = False
    socket_timeout: float = 20.0
    retry_failed: bool = False


@dataclass
class Outcome:
    entry: KineticsEntry
    status: str                 # "done", "skipped" (already there) or "failed"
    path: Path | None = None
    reason: str = ""
    detail: str = ""
    attempts: int = 0
    duration: float = 0.0
    note: str = ""


class DownloadFailure(Exception):
    def __init__(self, reason: str, detail: str, attempts: int = 0):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.attempts = reason, detail, attempts


def classify_error(message: str) -> str | None:
    """Our reason for a permanent yt-dlp error, 'transient' for one worth retrying, None if unknown."""
    text = message.lower()
    for reason, needles in PERMANENT_ERRORS:
        if any(n in text for n in needles):
            return reason
    if any(n in text for n in TRANSIENT_ERRORS):
        return "transient"
    return None


class _QuietLogger:
    """yt-dlp prints errors to stderr even when quiet; we record them in failures.csv instead."""

    def debug(self, message: str) -> None: ...
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...


def output_path(entry: KineticsEntry, out_dir: Path) -> Path:
    return out_dir / (entry.split or "unsplit") / entry.label.replace("/", "_") / f"{entry.clip_name}.mp4"


def fetch(entry: KineticsEntry, options: DownloadOptions) -> tuple[Path, int]:
    """Download the whole video with retries and exponential back-off. Returns (file, attempts)."""
    import yt_dlp

    raw_dir = options.out_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    url = options.url_template.format(youtube_id=entry.youtube_id)
    params = {"outtmpl": str(raw_dir / f"{entry.clip_name}.%(ext)s"), "quiet": True, "no_warnings": True,
              "noprogress": True, "retries": 0, "fragment_retries": 0, "logger": _QuietLogger(),
              "socket_timeout": options.socket_timeout, "format": "best[ext=mp4]/best", "overwrites": True}
    last = ""
    for attempt in range(1, options.retries + 2):
        try:
            with yt_dlp.YoutubeDL(params) as downloader:
                info = downloader.extract_info(url, download=True)
                path = Path(downloader.prepare_filename(info))
            if not path.is_file() or path.stat().st_size == 0:
                raise DownloadFailure("download failed", f"{url}: no file written", attempt)
            return path, attempt
        except yt_dlp.utils.DownloadError as error:
            last = str(error).removeprefix("ERROR: ")
            kind = classify_error(last)
            if kind not in ("transient", None):
                raise DownloadFailure(kind, last, attempt) from None
        if attempt <= options.retries:
            time.sleep(options.backoff_seconds * 2 ** (attempt - 1))
    raise DownloadFailure("download failed", f"after {options.retries + 1} attempts: {last}", options.retries + 1)


def cut(source: Path, entry: KineticsEntry, target: Path, options: DownloadOptions) -> tuple[float, str]:
    """ffmpeg: [time_start, time_end] of `source`, short side `short_side`, `fps`, H.264, no audio.
    Returns (duration of the clip, note). The window is clipped to the video; none of it inside = failure."""
    import imageio_ffmpeg

    try:
        info = video_info(source)
    except InputError as error:
        raise DownloadFailure("cut failed", error.reason) from None
    length = info.duration_seconds
    note = ""
    if length and entry.time_start >= length:
        raise DownloadFailure("window outside video",
                              f"video is {length:.1f} s, window starts at {entry.time_start:.1f} s")
    end = entry.time_end
    if length and end > length + 0.05:
        note = f"window cut short: video ends at {length:.2f} s, window asked for {entry.time_end:.2f} s"
        end = length
    side = options.short_side
    scale = f"scale='if(gt(iw,ih),-2,{side})':'if(gt(iw,ih),{side},-2)'"
    with atomic_path(target) as tmp:
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error",
                   "-ss", f"{entry.time_start:.3f}", "-to", f"{end:.3f}", "-i", str(source),
                   "-vf", f"{scale},fps={options.fps}", "-an", "-c:v", "libx264", "-preset", "veryfast",
                   "-pix_fmt", "yuv420p", "-threads", "1", "-f", "mp4", str(tmp)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or tmp.stat().st_size == 0:
            raise DownloadFailure("cut failed", (result.stderr.strip().splitlines() or ["ffmpeg wrote nothing"])[-1])
        try:
            duration = video_info(tmp).duration_seconds
        except InputError as error:
            raise DownloadFailure("cut failed", f"ffmpeg output unreadable: {error.reason}") from None
        if duration <= 0:
            raise DownloadFailure("cut failed", "ffmpeg output has no frames")
    return duration, note


def _entry_key(row) -> tuple[str, float, float]:
    return (str(row["youtube_id"]), float(row["time_start"]), float(row["time_end"]))


def previous_failures(out_dir: Path) -> dict[tuple, dict]:
    """Permanent failures recorded by an earlier run, by (youtube_id, time_start, time_end)."""
    import pandas as pd

    path = out_dir / "failures.csv"
    if not path.is_file() or path.stat().st_size == 0:
        return {}
    rows = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
    return {_entry_key(r): r for r in rows if r.get("reason") in PERMANENT_REASONS}


def process(entry: KineticsEntry, options: DownloadOptions, known_failures: dict | None = None) -> Outcome:
    target = output_path(entry, options.out_dir)
    if target.is_file() and target.stat().st_size > 0:
        return Outcome(entry, "skipped", target)
    earlier = (known_failures or {}).get(_entry_key(asdict(entry)))
    if earlier is not None and not options.retry_failed:
        return Outcome(entry, "failed", reason=earlier["reason"], detail=f"(earlier run) {earlier['detail']}",
                       attempts=int(earlier.get("attempts") or 0))
    raw = None
    attempts = 0
    try:
        raw, attempts = fetch(entry, options)
        duration, note = cut(raw, entry, target, options)
        return Outcome(entry, "done", target, attempts=attempts, duration=duration, note=note)
    except DownloadFailure as failure:
        return Outcome(entry, "failed", reason=failure.reason, detail=failure.detail,
                       attempts=failure.attempts or attempts)
    finally:
        if raw is not None and not options.keep_raw:
            raw.unlink(missing_ok=True)


def download(entries: list[KineticsEntry], options: DownloadOptions, progress: bool = True) -> dict:
    """Run the pool; write manifest.csv (every clip on disk for these entries) and failures.csv (this run)."""
    from tqdm import tqdm

    options.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    known_failures = previous_failures(options.out_dir)
    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool, \
            tqdm(total=len(entries), desc="clips", unit="clip", disable=not progress) as bar:
        futures = [pool.submit(process, entry, options, known_failures) for entry in entries]
        for future in as_completed(futures):
            outcome = future.result()
            with lock:
                outcomes.append(outcome)
                bar.update(1)
                if outcome.status == "failed" and not outcome.detail.startswith("(earlier run)"):
                    bar.write(f"failed {outcome.entry.youtube_id} ({outcome.entry.label}): {outcome.reason}: {outcome.detail}")
    seconds = time.perf_counter() - started
    order = {id(e): i for i, e in enumerate(entries)}
    outcomes.sort(key=lambda o: order[id(o.entry)])
    manifest = _manifest_rows(outcomes, options.out_dir)
    failures = [{**_entry_dict(o.entry), "reason": o.reason, "detail": o.detail, "attempts": o.attempts}
                for o in outcomes if o.status == "failed"]
    import pandas as pd

    write_csv(options.out_dir / "manifest.csv", pd.DataFrame(manifest, columns=MANIFEST_COLUMNS))
    write_csv(options.out_dir / "failures.csv", pd.DataFrame(failures, columns=FAILURE_COLUMNS))
    done = sum(o.status == "done" for o in outcomes)
    return {"selected": len(entries), "downloaded": done, "skipped_existing": sum(o.status == "skipped" for o in outcomes),
            "failed": len(failures), "seconds": seconds, "clips_per_minute": 60.0 * done / seconds if seconds else 0.0,
            "failure_reasons": {r: sum(f["reason"] == r for f in failures) for r in sorted({f["reason"] for f in failures})},
            "manifest": options.out_dir / "manifest.csv", "failures": options.out_dir / "failures.csv"}


def _entry_dict(entry: KineticsEntry) -> dict:
    return {k: v for k, v in asdict(entry).items()}


def _manifest_rows(outcomes: list[Outcome], out_dir: Path) -> list[dict]:
    """Clips on disk: new ones with their duration and note, resumed ones from the previous manifest."""
    import pandas as pd

    previous = {}
    old = out_dir / "manifest.csv"
    if old.is_file() and old.stat().st_size:
        for row in pd.read_csv(old, dtype=str, keep_default_na=False).to_dict("records"):
            previous[row.get("path", "")] = row
    rows = []
    for outcome in outcomes:
        if outcome.status == "failed":
            continue
        relative = str(outcome.path.relative_to(out_dir))
        if outcome.status == "skipped" and relative in previous:
            rows.append(previous[relative])
            continue
        duration = outcome.duration or _duration_or_zero(outcome.path)
        rows.append({"path": relative, **_entry_dict(outcome.entry), "duration": round(duration, 3), "note": outcome.note})
    return rows


def _duration_or_zero(path: Path) -> float:
    try:
        return video_info(path).duration_seconds
    except InputError:
        return 0.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, help="Kinetics-format CSV: label,youtube_id,time_start,time_end,split")
    parser.add_argument("-o", "--out-dir", type=OutputFolder(), required=True, help="output root (clips, manifest.csv, failures.csv)")
    parser.add_argument("--pattern", default="", help="regular expression on class names, case-insensitive ('' = all)")
    parser.add_argument("--per-class", type=int, help="at most this many clips per class (default: all)")
    parser.add_argument("--splits", default="", help="comma-separated splits to keep (default: all)")
    parser.add_argument("--sample-seed", type=int, help="pick the per-class clips at random with this seed (default: first rows)")
    parser.add_argument("--url-template", default=YOUTUBE_TEMPLATE,
                        help="video URL with {youtube_id} (default %(default)s; a local server for tests)")
    parser.add_argument("--workers", type=int, default=4, help="parallel downloads (default %(default)s)")
    parser.add_argument("--retries", type=int, default=3, help="retries of transient errors per clip (default %(default)s)")
    parser.add_argument("--backoff", type=float, default=2.0, help="first back-off in seconds, doubled each retry")
    parser.add_argument("--short-side", type=int, default=256, help="re-encoded short side in pixels (default %(default)s)")
    parser.add_argument("--fps", type=float, default=25.0, help="re-encoded frame rate (default %(default)s)")
    parser.add_argument("--socket-timeout", type=float, default=20.0, help="seconds before a stalled connection is retried")
    parser.add_argument("--retry-failed", action="store_true",
                        help="try again the clips an earlier run recorded as unavailable/private/geo-blocked")
    parser.add_argument("--keep-raw", action="store_true", help="keep the full downloads in OUT/raw/")
    parser.add_argument("--no-progress-bar", dest="progress", action="store_false", help="quiet logs")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    entries = select_classes(read_kinetics_csv(args.csv), args.pattern, args.per_class,
                             [s for s in args.splits.split(",") if s] or None, args.sample_seed)
    options = DownloadOptions(args.out_dir, args.url_template, args.workers, args.retries, args.backoff,
                              args.short_side, args.fps, args.keep_raw, args.socket_timeout, args.retry_failed)
    labels = sorted({e.label for e in entries})
    print(f"{len(entries)} clips of {len(labels)} classes: {', '.join(labels[:8])}{' ...' if len(labels) > 8 else ''}")
    summary = download(entries, options, args.progress)
    print(f"downloaded {summary['downloaded']}, already there {summary['skipped_existing']}, failed {summary['failed']} "
          f"{summary['failure_reasons'] or ''}; {summary['clips_per_minute']:.1f} clips/min; "
          f"manifest {summary['manifest']}, failures {summary['failures']}")
    return summary


if __name__ == "__main__":
    run_main(main)
