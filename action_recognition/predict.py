"""Predict the action in videos or frame folders with a trained model, an ensemble or a fused pair.

    python -m action_recognition.predict clip.mp4 videos/ -o predictions.csv     # the released model
    python -m action_recognition.predict --checkpoint runs/action_recognition/tsn/best.ckpt clip.mp4 videos/ -o predictions.csv
    python -m action_recognition.predict --checkpoint best.ckpt frames_of_one_clip/ --top-k 5
    python -m action_recognition.predict --ensemble runs/action_recognition/ensemble/ensemble.json videos/
    python -m action_recognition.predict --fusion runs/action_recognition/keypoint/fusion.json videos/

    python -m action_recognition.predict long.mp4 --timeline timeline.csv --window 2 --hop 1   # what happens when

Inputs: video files (anything ffmpeg reads: mp4, avi, mov, mkv, webm, animated GIF), folders searched
recursively for videos (one clip per video), or folders of frame images (one clip per folder). Videos are
decoded in one streaming pass (PyAV) and `--num-frames` frames sampled evenly as they pass (default: as many
as the model was trained on), so memory does not grow with a video's length. Writes CSV
`path,label,probability`; with `--top-k K` also `label_2,probability_2 ... label_K,probability_K`. With the
released model a clip whose best probability is under the threshold calibrated by leaving classes out
(`action_recognition/unknown.json`, see unknown.py) is labelled `unknown` (`best_known` names the best class).
`--timeline FILE.csv` also slides a window over each video in the same pass and writes its segments
(`input,start,end,label,score,...`, timeline.py) and a picture of them (FILE.png). Unreadable inputs are
listed on stderr and left out (exit status 1); the CSV appears only when complete.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
import numpy as np  # noqa: E402

from action_recognition.data import (VIDEO_FILE_EXTENSIONS, Clip, LoadedClips, checked_video_frames,  # noqa: E402
                                     resize_frames)
from action_recognition.fusion import fuse  # noqa: E402
from action_recognition.released import ReleasedModel  # noqa: E402
from action_recognition.timeline import (ActionTimeline, merge_windows, segment_rows, timeline_panel,  # noqa: E402
                                         window_label)
from action_recognition.unknown import THRESHOLD_FILE, read_threshold  # noqa: E402
from core.cli import InputArgument, ModelArgument, OutputFile, run_main, skip  # noqa: E402
from core.io import IMAGE_EXTENSIONS, InputError, read_image, save_figure, write_csv  # noqa: E402
from core.models import ONNX, checked_model  # noqa: E402
from core.timeline import plot_segments  # noqa: E402
from core.weights import released  # noqa: E402


def gather_clips(inputs: list[str], num_frames: int, size: int | None, window: Sliding | None = None) -> LoadedClips:
    """Videos (files, or found in folders) and folders of frame images, as clips with no label. With `window`,
    each video's windows are scored in the same decoding pass (`loaded.timelines`)."""
    clips, frames, skipped, notes, timelines = [], [], [], {}, {}
    for item in map(Path, inputs):
        if item.is_file():
            videos, image_folders = ([item], {}) if item.suffix.lower() in VIDEO_FILE_EXTENSIONS else ([], None)
            if image_folders is None:
                skipped.append((str(item), "not a video file"))
                continue
        elif item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file())
            videos = [p for p in files if p.suffix.lower() in VIDEO_FILE_EXTENSIONS]
            image_folders = defaultdict(list)
            for p in files:
                if p.suffix.lower() in IMAGE_EXTENSIONS:
                    image_folders[p.parent].append(p)
            if not videos and not image_folders:
                skipped.append((str(item), "no videos or frame images inside"))
        else:
            skipped.append((str(item), "not found"))
            continue
        for video in videos:
            try:
                timeline = (ActionTimeline(window.score, num_frames, size, window.length, window.hop)
                            if window is not None else None)
                sampled, decoded = checked_video_frames(video, num_frames, size, timeline)
                frames.append(sampled)
                clips.append(Clip(str(video), ""))
                if timeline is not None:
                    timelines[str(video)] = (timeline.results, decoded.decoded_seconds)
                if decoded.truncated:
                    stated = f" of {decoded.header_frames}" if decoded.header_frames else ""
                    notes[str(video)] = (f"truncated: decoded {decoded.decoded_frames}{stated} frames "
                                         f"({decoded.decoded_seconds:.2f} of {decoded.header_seconds:.2f} s)")
            except InputError as error:
                skipped.append((str(video), error.reason))
            except Exception as error:  # noqa: BLE001  a decoder failure in one file must not lose the others' answers
                skipped.append((str(video), f"cannot decode ({type(error).__name__}: {error})"))
        for folder, images in sorted(image_folders.items()):
            try:
                stack = np.stack([read_image(p) for p in images])
                indices = np.linspace(0, len(stack) - 1, min(num_frames, len(stack))).round().astype(int)
                frames.append(resize_frames(stack[indices], size) if stack.shape[1] != stack.shape[2] else stack[indices])
                clips.append(Clip(str(folder), ""))
            except (InputError, ValueError) as error:
                skipped.append((str(folder), str(getattr(error, "reason", error))))
    if not clips:
        raise InputError(", ".join(inputs), "no readable clips" + (f" ({skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
    return LoadedClips(clips, frames, skipped, notes, timelines)


@dataclass
class Sliding:
    """`--timeline`: windows of `length` seconds every `hop` seconds, scored by `score(frames) -> (C,)`."""
    length: float
    hop: float
    score: Callable[[np.ndarray], np.ndarray] | None = None


def read_spec(path: Path, key: str) -> dict:
    """An ensemble.json (`key` "members") or fusion.json ("frame_members"), checked before any model loads."""
    if not Path(path).is_file():
        raise InputError(path, "not found (write it with action_recognition.ensemble or action_recognition.fusion)")
    try:
        spec = json.loads(Path(path).read_text())
        for member in spec[key]:
            str(member["checkpoint"]), float(member["weight"])  # each member names a checkpoint and a weight
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not an action_recognition {'fusion' if key == 'frame_members' else 'ensemble'} file "
                               f"({type(error).__name__}: {error})") from None
    return spec


def weighted_prediction(members: list[dict], inputs: list[str], num_frames: int | None = None,
                        tta_flip: bool = False, window: Sliding | None = None) -> tuple[list[str], LoadedClips, np.ndarray]:
    """(labels, clips, the members' probabilities averaged with their weights); clips are read as the
    first member was trained (frames per clip, frame size)."""
    from action_recognition.inference import load_model, predict_probabilities   # PyTorch and Lightning: only here

    models = [(load_model(m["checkpoint"]), float(m["weight"])) for m in members if float(m["weight"]) > 0]
    hp = models[0][0].hparams
    if window is not None:
        window.score = lambda frames: sum(w * predict_probabilities(model, LoadedClips([Clip("window", "")], [frames]),
                                                                    tta_flip, use_cache=False)[0] for model, w in models)
    loaded = gather_clips(inputs, num_frames or hp.num_frames, hp.frame_size, window)
    probabilities = sum(w * predict_probabilities(model, loaded, tta_flip, use_cache=False) for model, w in models)
    return models[0][0].labels, loaded, probabilities


def released_prediction(inputs: list[str], num_frames: int | None = None, tta_flip: bool = False,
                        path: Path | None = None, window: Sliding | None = None) -> tuple[list[str], LoadedClips, np.ndarray]:
    """`weighted_prediction` of an ONNX export (by default the released one) in onnxruntime, no PyTorch."""
    model = ReleasedModel.load(path or released("action_recognition", "frame"))
    if window is not None:
        window.score = lambda frames: model.probabilities(LoadedClips([Clip("window", "")], [frames]), tta_flip)[0]
    loaded = gather_clips(inputs, num_frames or model.num_frames, model.frame_size, window)
    return model.labels, loaded, model.probabilities(loaded, tta_flip)


def predict(inputs: list[str], checkpoint: Path | None = None, fusion: Path | None = None,
            num_frames: int | None = None, tta_flip: bool = False,
            ensemble: Path | None = None, window: Sliding | None = None) -> tuple[list[str], LoadedClips, np.ndarray]:
    """(labels, clips, probabilities (N, C)) for a single model (by default the released one), an ensemble
    JSON (ensemble.py) or a fusion JSON (fusion.py). With `window` (not with fusion), `loaded.timelines` holds
    each video's scored windows."""
    if fusion is not None:
        if window is not None:
            raise InputError(fusion, "--timeline runs a single model or an ensemble, not a fusion")
        from action_recognition.inference import load_model, probabilities_from_inputs
        from action_recognition.keypoints import cached_keypoints

        spec = read_spec(fusion, "frame_members")
        labels, loaded, p_frame = weighted_prediction(spec["frame_members"], inputs, num_frames, tta_flip)
        keypoints = cached_keypoints([c.source for c in loaded.clips], loaded.frames, cache_dir=None)
        p_keypoint = probabilities_from_inputs(load_model(spec["keypoint_checkpoint"]), keypoints.features)
        person = keypoints.detected.any(axis=1)
        return labels, loaded, fuse(p_frame, p_keypoint, float(spec["frame_weight"]), person)
    if ensemble is not None:
        return weighted_prediction(read_spec(ensemble, "members")["members"], inputs, num_frames, tta_flip, window)
    if checkpoint is None:
        return released_prediction(inputs, num_frames, tta_flip, window=window)
    if not Path(checkpoint).is_file():
        raise InputError(checkpoint, "checkpoint not found (train one with `python -m action_recognition.train`)")
    if checked_model(checkpoint, "action_recognition").format == ONNX:   # by its content, whatever its extension
        return released_prediction(inputs, num_frames, tta_flip, checkpoint, window)
    return weighted_prediction([{"checkpoint": checkpoint, "weight": 1.0}], inputs, num_frames, tta_flip, window)


def prediction_rows(labels: list[str], loaded: LoadedClips, probabilities: np.ndarray, top_k: int = 1,
                    threshold: float | None = None) -> list[dict]:
    """One row per clip; with an open-set `threshold`, a clip whose best probability is below it is labelled
    `unknown` (its `probability` stays the best known class's, named in `best_known`)."""
    rows = []
    for clip, probs in zip(loaded.clips, probabilities):
        order = np.argsort(-probs)[:max(1, min(top_k, len(labels)))]
        row = {"path": clip.source, "label": window_label(probs, labels, threshold),
               "probability": round(float(probs[order[0]]), 6)}
        if threshold is not None:
            row["best_known"] = labels[order[0]]
        for rank, k in enumerate(order[1:], start=2):
            row[f"label_{rank}"], row[f"probability_{rank}"] = labels[k], round(float(probs[k]), 6)
        row["note"] = loaded.notes.get(clip.source, "")
        rows.append(row)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=InputArgument("video", as_path=False), help="video files, folders of videos, or folders of frame images")
    parser.add_argument("--checkpoint", type=ModelArgument("action_recognition"), help="a best.ckpt from action_recognition.train (default: the released "
                        "model, run from its ONNX export weights/action_recognition/frame.onnx; pass "
                        "weights/action_recognition/frame.ckpt to run it in PyTorch)")
    parser.add_argument("--ensemble", type=Path, help="an ensemble.json from action_recognition.ensemble (instead of --checkpoint)")
    parser.add_argument("--fusion", type=Path, help="a fusion.json from action_recognition.fusion (instead of --checkpoint)")
    parser.add_argument("-o", "--output", type=OutputFile(), default="predictions.csv", help="CSV to write (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=1, help="also write the next K-1 labels and probabilities (e.g. 5)")
    parser.add_argument("--num-frames", type=int, help="frames per video (default: the model's training clips' length)")
    parser.add_argument("--tta-flip", action="store_true", help="average with the mirrored clip (frame-based models)")
    parser.add_argument("--unknown-threshold", type=probability, help="answer `unknown` when the best class's "
                        "probability is below this (default: for the released model, the threshold calibrated by "
                        f"leaving classes out of the training split, {THRESHOLD_FILE.name}; for other models none); "
                        "0 turns it off")
    parser.add_argument("--timeline", type=OutputFile(suffixes=(".csv",)), help="also slide a window over each video "
                        "and write its segments to this CSV (input,start,end,label,score,...; the clip answers "
                        "still go to --output) and a picture of them beside it (same name, .png)")
    parser.add_argument("--window", type=positive_seconds, default=2.0, help="--timeline window length in seconds "
                        "(default %(default)s)")
    parser.add_argument("--hop", type=positive_seconds, default=1.0, help="--timeline seconds between window starts "
                        "(default %(default)s)")
    return parser


def probability(value: str) -> float:
    try:
        p = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a probability: {value!r}") from None
    if not 0 <= p <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return p


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {value}")
    return seconds


def write_timelines(target: Path, labels: list[str], loaded: LoadedClips, top_k: int = 1,
                    threshold: float | None = None) -> tuple[Path, Path]:
    """The segments CSV at `target` and their picture beside it (`.png`), for every video that has windows."""
    rows, drawn = [], []
    for clip in loaded.clips:
        if clip.source not in loaded.timelines:
            continue
        results, end = loaded.timelines[clip.source]
        segments = merge_windows(results, labels, end, threshold)
        note = loaded.notes.get(clip.source, "") or ("" if results else "shorter than one window: no segment")
        rows += segment_rows(clip.source, segments, labels, top_k, note) or [{"input": clip.source, "note": note}]
        drawn.append(timeline_panel(clip.source, segments, results, end, threshold))
    write_csv(target, rows)
    return target, save_figure(plot_segments(drawn), Path(target).with_suffix(".png"))


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    window = Sliding(args.window, args.hop) if args.timeline else None
    labels, loaded, probabilities = predict(args.inputs, args.checkpoint, args.fusion, args.num_frames, args.tta_flip,
                                         args.ensemble, window)
    for path, reason in loaded.skipped:
        skip(path, reason)   # the status becomes 1; the CSV holds the others
    threshold = args.unknown_threshold
    if threshold is None and args.checkpoint is None and args.ensemble is None and args.fusion is None:
        threshold = read_threshold()   # calibrated for the released recipe (unknown.py); None if not calibrated
    threshold = threshold or None      # 0 turns it off
    write_csv(args.output, prediction_rows(labels, loaded, probabilities, args.top_k, threshold))
    print(f"wrote {len(loaded)} predictions to {args.output}" + (f" ({len(loaded.skipped)} skipped)" if loaded.skipped else ""))
    if args.timeline:
        csv_path, picture = write_timelines(args.timeline, labels, loaded, args.top_k, threshold)
        print(f"wrote the timelines of {len(loaded.timelines)} videos to {csv_path} and {picture}")
    return args.output


if __name__ == "__main__":
    run_main(main)
