"""One live loop for every task's live demo: frames from a camera, a video file or a folder of images go
through a list of stages (each task's live part) that all read the same decoded RGB frame; each stage
draws its answer, the loop draws the frame rate and a line per stage, and shows the result in a window or
writes it to a video, with one log row per frame (CSV or JSON).

    stages = [PoseStage(...), GestureStage(...)]          # anything with the `LiveStage` methods
    stats = run_live(stages, open_live_source("0"), show=True)

When the loop runs below `min_fps`, frames are marked `light`: the heavy stages then do their work every
other frame, body and hands on even frames and faces on odd ones, and reuse their last answer in between
(`LiveFrame.runs`). A stage marked `concurrent` (the body's, the slowest) runs in a worker thread beside the
others: MediaPipe releases the GIL while its graph runs, so on two cores the body and the hands are found at
the same time. Heavy imports (mediapipe, torch, onnxruntime) belong in the stages.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from core.cli import InputArgument, OutputFile, VIDEO_OUTPUT_SUFFIXES, skip
from core.io import IMAGE_EXTENSIONS, AtomicVideoWriter, InputError, check_decoded_length, list_files, open_capture, read_image, write_csv, \
    write_json

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
MIN_FPS = 25.0  # below it the loop goes light: the rate at which a video still looks smooth
FrameTuple = tuple[int, float, np.ndarray]  # index, seconds, RGB


@dataclass
class LiveFrame:
    index: int
    seconds: float      # source time: index / fps for a file or a folder, the wall clock for a camera
    rgb: np.ndarray     # shared by every stage: read it, never draw on it
    light: bool = False  # the loop is behind `min_fps`: heavy stages work only on their share of frames

    def runs(self, phase: int) -> bool:
        """Whether a heavy stage of `phase` (0: body and hands, 1: faces) does its work on this frame: always,
        and when the loop is light on every other frame (phase 0 on even frames, phase 1 on odd ones)."""
        return not self.light or self.index % 2 == phase


class LiveStage:
    """What the loop calls. `__call__` gives the frame's answer (any object, None for none); `draw` puts it
    on the canvas (a copy of the frame); `summary` is one line for the panel; `row` the log columns,
    named `<stage>_...`."""

    name = "stage"
    concurrent = False  # run in the worker thread, beside the other stages (it must share nothing with them)

    def __call__(self, frame: LiveFrame) -> Any:
        raise NotImplementedError

    def draw(self, canvas: np.ndarray, answer: Any) -> None:
        pass

    def summary(self, answer: Any) -> str:
        return ""

    def row(self, answer: Any) -> dict:
        return {}

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------------------- sources
@dataclass
class LiveSource:
    name: str
    fps: float            # of the source (the written video's rate); 0 when it does not say
    camera: bool
    frames: Iterator[FrameTuple] = field(repr=False)


def capture_frames(capture: Any, camera: bool = True, fps: float = 0.0,
                   path: str | Path | None = None) -> Iterator[FrameTuple]:
    """RGB frames of an opened cv2.VideoCapture until it ends; seconds from the wall clock for a camera,
    index / fps for a file. The capture is released at the end; a video `path` that decoded short of what its
    container states is warned about then (core.io.check_decoded_length)."""
    import cv2

    started, index, seconds = time.perf_counter(), 0, 0.0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            seconds = time.perf_counter() - started if camera else index / (fps or 30.0)
            yield index, seconds, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if path is not None and index:
        check_decoded_length(path, index, seconds)


def _folder_frames(files: Sequence[Path], fps: float) -> Iterator[FrameTuple]:
    index = 0
    for file in files:
        try:
            rgb = read_image(file)
        except InputError as error:
            skip(file, error.reason)  # the run goes on; the status becomes 1
            continue
        yield index, index / fps, rgb
        index += 1


def _resized(frames: Iterable[FrameTuple], size: tuple[int, int]) -> Iterator[FrameTuple]:
    import cv2

    for index, seconds, rgb in frames:
        yield index, seconds, rgb if (rgb.shape[1], rgb.shape[0]) == size else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def open_live_source(source: str | Path, size: tuple[int, int] | None = None, folder_fps: float = 30.0) -> LiveSource:
    """A camera index ('0'), a video file or a folder of images (sorted by name, `folder_fps` frames per
    second); frames resized to `size` (width, height) when given. An InputError when it cannot be opened."""
    import cv2

    source = str(source)
    if not source.isdigit() and Path(source).is_dir():
        files = list_files(source, IMAGE_EXTENSIONS, recursive=False)
        source_obj = LiveSource(source, folder_fps, False, _folder_frames(files, folder_fps))
    else:
        capture = open_capture(source)
        camera = source.isdigit()
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        source_obj = LiveSource(f"camera {source}" if camera else source, fps, camera,
                                capture_frames(capture, camera, fps, None if camera else source))
    if size is not None:
        source_obj.frames = _resized(source_obj.frames, size)
    return source_obj


def chained_sources(sources: Sequence[LiveSource]) -> LiveSource:
    """Several sources one after the other as one stream (the bench): indices and seconds keep counting."""
    def frames() -> Iterator[FrameTuple]:
        index, offset = 0, 0.0
        for source in sources:
            last = 0.0
            for _, seconds, rgb in source.frames:
                last = seconds
                yield index, offset + seconds, rgb
                index += 1
            offset += last + 1.0 / (source.fps or 30.0)

    fps = sources[0].fps if sources else 0.0
    return LiveSource(" + ".join(s.name for s in sources), fps, False, frames())


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 16 or int(height) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}")
    return int(width), int(height)


# ----------------------------------------------------------------------------------------- drawing
_placed_labels: list[tuple[int, int, int, int]] = []   # this frame's label rectangles (x0, y0, x1, y1)


def clear_labels() -> None:
    """A new frame: forget the labels put on the previous one."""
    _placed_labels.clear()


def put_label(canvas: np.ndarray, text: str, origin: tuple[int, int], colour, scale: float = 0.55,
              thickness: int = 2) -> tuple[int, int]:
    """cv2.putText at `origin` (the text's bottom-left), moved up (then down) by whole lines until it overlaps
    no label put earlier on this frame: labels of different tasks never cover each other (a hand at the face).
    `run_live` forgets the labels at each new frame; returns where the text went."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (width, height), base = cv2.getTextSize(text, font, scale, thickness)
    x, y = int(origin[0]), int(origin[1])
    line = height + base + 4
    for shift in [0, *(k * sign * line for k in range(1, 20) for sign in (-1, 1))]:
        top = y + shift
        box = (x, top - height - 2, x + width, top + base + 2)
        if box[1] >= 0 and all(box[2] <= o[0] or o[2] <= box[0] or box[3] <= o[1] or o[3] <= box[1] for o in _placed_labels):
            y = top
            break
    _placed_labels.append((x, y - height - 2, x + width, y + base + 2))
    cv2.putText(canvas, text, (x, y), font, scale, colour, thickness, cv2.LINE_AA)
    return x, y


def draw_panel(canvas: np.ndarray, lines: Sequence[str], fps: float | None) -> None:
    """The stages' lines top-left on a dark band, the frame rate top-right."""
    import cv2

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    lines = [line for line in lines if line]
    if lines:
        width = max(cv2.getTextSize(line, font, scale, 1)[0][0] for line in lines) + 12
        band = canvas[:18 * len(lines) + 8, :width]
        band[:] = (band * 0.45).astype(canvas.dtype)
        for i, line in enumerate(lines):
            cv2.putText(canvas, line, (6, 20 + 18 * i), font, scale, WHITE, 1, cv2.LINE_AA)
    if fps is not None:
        text = f"{fps:.1f} FPS"
        x = canvas.shape[1] - cv2.getTextSize(text, font, 0.6, 2)[0][0] - 8
        cv2.putText(canvas, text, (x, 22), font, 0.6, BLACK, 4, cv2.LINE_AA)
        cv2.putText(canvas, text, (x, 22), font, 0.6, WHITE, 2, cv2.LINE_AA)


# ----------------------------------------------------------------------------------------- the loop
@dataclass
class LiveStats:
    frames: int
    seconds: float                     # from the first frame's start to the last frame's end
    light_frames: int                  # frames run light (heavy stages on every other frame)
    stage_ms: dict[str, float]         # mean milliseconds per frame in each stage
    rows: list[dict] = field(repr=False)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_live(stages: Sequence[LiveStage], source: LiveSource, output: Path | None = None, log: Path | None = None,
             show: bool = False, max_frames: int = 0, min_fps: float = MIN_FPS, skip_work: bool = True,
             title: str = "live") -> LiveStats:
    """Every frame through every stage, drawn; written to `output` (mp4) and/or shown; one log row per frame
    (frame, time, fps, ms, light, then each stage's columns) written to `log` (.csv or .json) at the end.
    The outputs appear only when the run finished (atomic writers)."""
    import cv2

    from concurrent.futures import ThreadPoolExecutor

    def timed(stage: LiveStage, frame: LiveFrame) -> tuple[Any, float]:
        tick = time.perf_counter()
        answer = stage(frame)
        return answer, time.perf_counter() - tick

    writer, window, rows = None, False, []
    fps, light, light_frames = None, False, 0
    stage_seconds = {stage.name: 0.0 for stage in stages}
    worker = ThreadPoolExecutor(1, thread_name_prefix="live") if len(stages) > 1 and any(s.concurrent for s in stages) \
        else None
    started = last = time.perf_counter()
    try:
        for index, seconds, rgb in source.frames:
            if max_frames and len(rows) >= max_frames:
                break
            frame = LiveFrame(index, seconds, rgb, light)
            running = {stage.name: worker.submit(timed, stage, frame) for stage in stages if stage.concurrent} \
                if worker is not None else {}
            results = {stage.name: timed(stage, frame) for stage in stages if stage.name not in running}
            results |= {name: future.result() for name, future in running.items()}
            answers = [results[stage.name][0] for stage in stages]
            for stage in stages:
                stage_seconds[stage.name] += results[stage.name][1]
            canvas = rgb.copy()
            clear_labels()
            for stage, answer in zip(stages, answers):
                stage.draw(canvas, answer)
            now = time.perf_counter()
            elapsed, last = now - last, now  # decode, stages and drawing (and the previous frame's writing)
            # the mean of frame times, not of rates: a light frame's few milliseconds must not read as 300 fps
            frame_seconds = elapsed if fps is None else 0.9 / fps + 0.1 * elapsed
            fps = 1.0 / max(frame_seconds, 1e-6)
            draw_panel(canvas, [stage.summary(answer) for stage, answer in zip(stages, answers)], fps)
            row = {"frame": index, "time": round(seconds, 4), "fps": round(fps, 2), "ms": round(elapsed * 1000, 2),
                   "light": int(light)}
            for stage, answer in zip(stages, answers):
                row.update(stage.row(answer))
            rows.append(row)
            light_frames += light
            if skip_work and len(rows) >= 5:  # hysteresis: the light mode must gain half again before it ends
                light = fps < min_fps if not light else fps < 1.5 * min_fps
            if output is not None:
                if writer is None:
                    writer = AtomicVideoWriter(output, source.fps or 25.0, (rgb.shape[1], rgb.shape[0]))
                writer.write(canvas)
            if show:
                window = True
                try:
                    cv2.imshow(title, cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
                except cv2.error as error:
                    raise InputError("window", f"cannot show a window ({error.msg.strip() or 'no display'}); "
                                               "pass --output FILE to write a video instead") from error
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
    except BaseException:
        if writer is not None:
            writer.close(keep=False)
        raise
    finally:
        if worker is not None:
            worker.shutdown(wait=True)
        for stage in stages:
            stage.close()
        if window:
            cv2.destroyAllWindows()
    seconds = last - started
    if not rows:
        raise InputError(source.name, "no frame could be read")
    if writer is not None:
        writer.close()
    if log is not None:
        write_log(log, rows, source.name, [stage.name for stage in stages])
    return LiveStats(len(rows), seconds, light_frames, {k: v / len(rows) * 1000 for k, v in stage_seconds.items()}, rows)


def write_log(target: Path, rows: list[dict], source: str, stages: Sequence[str]) -> Path:
    """One row per frame: CSV, or JSON ({"source", "stages", "frames": [rows]}) for a .json target."""
    if Path(target).suffix.lower() == ".json":
        return write_json(target, {"source": source, "stages": list(stages), "frames": rows})
    return write_csv(target, rows)


# ----------------------------------------------------------------------------------------- command line
def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every live command shares: source, output, log, window, frame rate and threads."""
    group = parser.add_argument_group("source and output")
    group.add_argument("--source", default="0", type=InputArgument("video", as_path=False),
                       help="camera index (0, 1, ...), a video file, or a folder of images (default %(default)s)")
    group.add_argument("--output", type=OutputFile(VIDEO_OUTPUT_SUFFIXES), default=None,
                       help="write the annotated video here (mp4) instead of showing a window")
    group.add_argument("--log", type=OutputFile((".csv", ".json")), default=None,
                       help="per-frame log, .csv or .json (default with --output: beside it, <output>.csv)")
    group.add_argument("--show", action="store_true", help="show the window even when writing --output")
    group.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: until the end)")
    group.add_argument("--size", type=parse_size, default=None, help="resize every frame to WIDTHxHEIGHT, e.g. 640x480")
    group.add_argument("--folder-fps", type=float, default=30.0, help="frame rate of a folder of images (default %(default)s)")
    group.add_argument("--min-fps", type=float, default=MIN_FPS,
                       help="below this rate body, hands and faces are processed every other frame, reusing the last "
                            "answer in between (default %(default)s)")
    group.add_argument("--no-skip", dest="skip_work", action="store_false",
                       help="process hands and faces on every frame however slow (reproducible outputs)")
    group.add_argument("--threads", type=int, default=2, help="CPU threads for OpenCV, torch and onnxruntime (default %(default)s)")


def log_path(args: argparse.Namespace) -> Path | None:
    if args.log is not None:
        return args.log
    return args.output.with_suffix(".csv") if args.output is not None else None


def run_from_args(args: argparse.Namespace, build_stages: Callable[[LiveSource], list[LiveStage]],
                  title: str = "live") -> LiveStats:
    """Open `--source`, build the stages for it, run the loop as the options say and print a summary."""
    import cv2

    cv2.setNumThreads(args.threads)
    source = open_live_source(args.source, args.size, args.folder_fps)
    stages = build_stages(source)
    log = log_path(args)
    stats = run_live(stages, source, args.output, log, show=args.show or args.output is None,
                     max_frames=args.max_frames, min_fps=args.min_fps, skip_work=args.skip_work, title=title)
    stage_ms = ", ".join(f"{name} {ms:.1f} ms" for name, ms in stats.stage_ms.items())
    print(f"{stats.frames} frames, {stats.fps:.1f} FPS ({stage_ms}; {stats.light_frames} light frames)"
          + (f"; wrote {args.output}" if args.output else "") + (f" and {log}" if log else ""))
    return stats
