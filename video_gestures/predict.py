"""Predict gestures with a trained checkpoint → CSV.

    python -m video_gestures.predict --checkpoint runs/video_gestures/clips/best.ckpt clip.mp4 frames_dir/ -o predictions.csv
    python -m video_gestures.predict --checkpoint runs/video_gestures/points/best.ckpt history.csv -o predictions.csv
    python -m video_gestures.predict --checkpoint runs/video_gestures/clips/best.ckpt --live long.mp4 -o timeline.csv
    python -m video_gestures.predict --checkpoint runs/video_gestures/points/best.ckpt --camera 0 -o timeline.csv
    python -m video_gestures.predict --camera 0 -o timeline.csv       # the released fingertip-trajectory model
    python -m video_gestures.predict history.csv -o predictions.csv   # the same, ONNX in onnxruntime (no PyTorch)

Inputs: video files and folders of numbered frames (one clip each; every clip is sampled to the model's frame
count), or, for a point-history model, CSVs of 32 numbers per row (16 fingertip x, y; a leading label column is
ignored). A folder holding videos stands for each of them. `--live` runs a sliding window over each video and
writes one row per gesture occurrence (input, start, end, label, score: its highest smoothed probability,
windows, note; neighbouring windows with the same smoothed answer are one occurrence) and their timeline picture
beside it (same name, `.png`), and with `--windows FILE` one row per window with the raw and the smoothed
prediction. A window where MediaPipe saw a hand in fewer than 3 of 4 frames is `no_hand`, never a
gesture, and ends the occurrence before it. With the released fingertip model, hand motion that is none of its
gestures is `none` (its fifth class, or a smoothed probability under the model's gesture threshold), and `Stop`
(a fingertip held still) is an answer in the window rows but never a gesture occurrence. The front end (backbones, views, frames, or fingertip features) comes from the checkpoint.
A bad input is reported and skipped; the CSV is written atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import core  # noqa: F401  (offline environment first)
import numpy as np
import pandas as pd

from core.cli import InputArgument, ModelArgument, OutputFile, run_main, skip
from core.io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputError, iter_video_frames, save_figure, video_info, write_csv
from core.timeline import SEGMENT_COLUMNS, plot_segments
from core.weights import released
from video_gestures.data import NUMBERED_NAME, VideoItem, point_history_features, read_clip
from video_gestures.inference import load_model
from video_gestures.live import Occurrence, Occurrences, SlidingWindowRecognizer, camera_frames, frame_encoder_for


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", type=InputArgument("video"), help="video files, frame folders, or point-history CSVs")
    parser.add_argument("--checkpoint", type=ModelArgument("video_gestures"), help="best.ckpt from video_gestures.train, or its ONNX export "
                        "(default: the released fingertip-trajectory model, weights/video_gestures/points.onnx)")
    parser.add_argument("-o", "--output", type=OutputFile(), default="predictions.csv", help="CSV to write (default %(default)s)")
    parser.add_argument("--live", action="store_true",
                        help="sliding window over each video: --output gets one row per gesture (start, end, label, "
                             "confidence); windows with too few hand frames are no_hand, never a gesture")
    parser.add_argument("--windows", type=OutputFile(), help="with --live or --camera: also one row per window here")
    parser.add_argument("--camera", type=int, help="live from this camera index instead of files (Ctrl-C to stop)")
    parser.add_argument("--window", type=int, help="frames per window in live mode (default: the model's frame count)")
    parser.add_argument("--stride", type=int, default=4, help="frames between live predictions (default %(default)s)")
    parser.add_argument("--smoothing", type=float, default=0.6,
                        help="exponential moving average weight of the previous probabilities, 0-1 (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar over a video's frames (live mode)")
    return parser


def frame_folder_item(folder: Path) -> VideoItem:
    numbered = sorted((int(m["number"]), p) for p in folder.iterdir()
                      if p.suffix.lower() in IMAGE_EXTENSIONS and (m := NUMBERED_NAME.match(p.stem)))
    if not numbered:
        raise InputError(folder, "no numbered frames (e.g. 00001.jpg or v1_frame_1.jpg)")
    return VideoItem(folder.name, "", [p for _, p in numbered])


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """A folder holding video files stands for each of them (searched recursively); any other folder is one clip
    of numbered frames, a file is itself."""
    expanded = []
    for path in inputs:
        videos = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS) if path.is_dir() else []
        expanded += videos or [path]
    return expanded


def clip_rows(model, encoder, inputs: list[Path]) -> list[dict]:
    """A row per clip (or per CSV row); an input that cannot be read is reported with `core.cli.skip`."""
    rows = []
    for path in inputs:
        note = ""
        try:
            if not path.exists():
                raise InputError(path, "no such file or folder")
            if path.suffix.lower() == ".csv":
                table = np.loadtxt(path, delimiter=",", ndmin=2)
                table = table[:, -32:] if table.shape[1] >= 32 else None
                if table is None:
                    raise InputError(path, "expected 32 numbers per row (16 fingertip x, y)")
                sequences = point_history_features(table.reshape(len(table), 16, 2), model.input_config["point_features"])
                names = [f"{path}:{i + 1}" for i in range(len(table))]
            else:
                if path.is_dir():
                    clip = read_clip(frame_folder_item(path), encoder.num_frames)
                else:
                    frames = iter_video_frames(path)   # warns about a truncated file; its note goes in the row
                    clip = read_clip(VideoItem(path.stem, "", video=path), encoder.num_frames, frames)
                    note = frames.note
                sequences = encoder.to_sequence([encoder.encode(frame) for frame in clip])[None]
                names = [str(path)]
        except (InputError, ValueError) as error:
            skip(path, getattr(error, "reason", str(error)))
            continue
        probabilities, time_attention, _ = model.predict_with_attention(sequences)
        for name, p, attention in zip(names, probabilities, time_attention):
            rows.append({"input": name, "prediction": model.labels[int(p.argmax())], "confidence": float(p.max()),
                         "peak_attention_step": int(attention.argmax()), "note": note,
                         **{f"p_{label}": float(v) for label, v in zip(model.labels, p)}})
    return rows


GESTURE_COLUMNS = [*SEGMENT_COLUMNS, "windows", "note"]  # the score: the occurrence's highest smoothed probability


def _frame_count(path: Path | None) -> int | None:
    """The frame count a video file states (None for a camera, or when the file cannot say: it is then
    reported when read)."""
    try:
        return video_info(path).frame_count if path is not None else None
    except InputError:
        return None


def live_rows(recognizer_factory, sources, progress: bool = False) -> tuple[list[dict], list[dict]]:
    """(one row per gesture occurrence, one row per window) over each source; a source that stops with an
    error is reported with `skip`, and what it gave before is kept. `progress`: a bar over each video's frames
    on stderr (the gestures are printed above it as they end)."""
    from tqdm import tqdm

    gestures, windows = [], []
    for name, frames in sources:
        tracker, found = Occurrences(), []
        bar = tqdm(frames, total=_frame_count(getattr(frames, "path", None)) or None, desc=Path(name).name, unit="frame", disable=not progress,
                   file=sys.stderr, leave=False)

        def add(occurrence: Occurrence | None) -> None:
            if occurrence is not None:
                found.append({"input": name, "start": occurrence.start, "end": occurrence.end, "label": occurrence.label,
                              "score": occurrence.confidence, "windows": occurrence.windows})
                tqdm.write(f"{name} {occurrence.start:.2f}-{occurrence.end:.2f} s: {occurrence.label} "
                           f"({occurrence.confidence:.2f})", file=sys.stdout)

        try:
            for prediction in recognizer_factory().run(bar):
                windows.append({"input": name, **vars(prediction)})
                add(tracker.push(prediction))
        except InputError as error:
            skip(name, error.reason)
        except KeyboardInterrupt:
            print(f"stopped {name}: interrupted", file=sys.stderr)
        bar.close()
        add(tracker.finish())
        note = getattr(frames, "note", "")   # known once the source is read to its end
        gestures += [{**row, "note": note} for row in found]
    return gestures, windows


def gesture_panels(gestures: list[dict], windows: list[dict]) -> list:
    """One panel of the shared timeline plot per input: its gesture occurrences, and each window's smoothed
    best-class probability over them."""
    from core.timeline import Panel

    panels = []
    for name in dict.fromkeys(row["input"] for row in windows):
        mine = [row for row in windows if row["input"] == name]
        curve = ([row["seconds"] for row in mine], [np.nan_to_num(row["smoothed_confidence"]) for row in mine])
        panels.append(Panel(Path(name).name, [(g["start"], g["end"], g["label"]) for g in gestures if g["input"] == name],
                            curve=curve, duration=max(row["seconds"] for row in mine)))
    return panels


def main(argv: list[str] | None = None) -> pd.DataFrame:
    args = build_parser().parse_args(argv)
    if not args.inputs and args.camera is None:
        raise InputError("inputs", "give video files, frame folders or CSVs, or --camera N")
    model = load_model(args.checkpoint or released("video_gestures", "points"))
    inputs = expand_inputs(args.inputs)
    needs_frames = args.live or args.camera is not None or any(p.suffix.lower() != ".csv" for p in inputs)
    encoder = frame_encoder_for(model) if needs_frames else None
    if args.live or args.camera is not None:
        window = args.window or model.input_config.get("num_frames", 16)

        def recognizer() -> SlidingWindowRecognizer:
            return SlidingWindowRecognizer(model, encoder, window, args.stride, args.smoothing)

        sources = ([(f"camera{args.camera}", camera_frames(args.camera))] if args.camera is not None
                   else [(str(p), iter_video_frames(p)) for p in inputs])
        gestures, windows = live_rows(recognizer, sources, progress=not args.no_progress)
        if not windows:
            raise InputError(", ".join(map(str, args.inputs)) or f"camera {args.camera}", "no input gave a window")
        table = pd.DataFrame(windows)
        if args.windows is not None:
            write_csv(args.windows, table, index=False)
        write_csv(args.output, pd.DataFrame(gestures, columns=GESTURE_COLUMNS), index=False)
        picture = save_figure(plot_segments(gesture_panels(gestures, windows)), Path(args.output).with_suffix(".png"))
        print(f"{len(gestures)} gestures → {args.output} ({picture.name})"
              + (f", {len(table)} windows → {args.windows}" if args.windows else ""))
        return table
    table = pd.DataFrame(clip_rows(model, encoder, inputs))
    if table.empty:
        raise InputError(", ".join(map(str, args.inputs)), "no input gave a prediction")
    write_csv(args.output, table, index=False)
    print(f"{len(table)} rows → {args.output}")
    return table


if __name__ == "__main__":
    run_main(main)
