"""One live demo of everything on one stream: the smoothed body skeleton, each hand's gesture with its
probability, each face's emotion with valence-arousal, the dynamic-gesture timeline and the current action
(or `unknown`), with the frame rate on screen; in a window, or written to `--output` with one log row per frame.

    python webcam_demo.py                                           # camera 0, every task, window (q quits)
    python webcam_demo.py --source clip.mp4 --output out.mp4        # headless: out.mp4 + out.csv (per frame)
    python webcam_demo.py --source frames/ --tasks pose,gestures --log frames.json
    python -m webcam_demo --bench                                   # frames/s on the shared real videos -> results/live.json

All stages read the same decoded RGB frame; the gesture and dynamic-gesture stages share one MediaPipe
Hands run per frame (tracking mode); the body runs in a worker thread beside them. Below `--min-fps` body,
hands and faces are processed every other frame (body and hands on even frames, faces on odd ones) and
their last answers reused. The action stage pushes every frame to the sliding window of `action_recognition.predict
--timeline` (action_recognition/live.py), so its answer changes once per `--action-hop` seconds and agrees with
the file's timeline. Models default to the released weights (`make weights`; core.weights):
gesture_detection/landmark_linto, emotion/recognizer, video_gestures/points, action_recognition/frame;
`--gesture-model`, `--emotion-weights`, `--dynamic-model` and `--action-model` override them.
Each task keeps its own live command: `python -m pose_smoothing.live`, `python -m gesture_detection.live`,
`python -m emotion.webcam_demo`, `python -m video_gestures.predict --live / --camera`.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime
from itertools import islice
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import core  # noqa: E402,F401  (offline environment first)
from action_recognition.predict import positive_seconds, probability  # noqa: E402
from core.cli import ModelArgument, OutputFile, run_main  # noqa: E402
from core.env import SHARED_DATA  # noqa: E402
from core.live import (LiveSource, LiveStage, add_live_arguments, chained_sources, open_live_source,  # noqa: E402
                       run_from_args, run_live)
from core.results import RESULTS_DIR  # noqa: E402
from gesture_detection.live import add_gesture_arguments, add_hands_arguments  # noqa: E402
from pose_smoothing.live import add_pose_arguments  # noqa: E402

TASKS = ("pose", "gestures", "emotion", "dynamic", "action")
BENCH_TARGETS = {"all": 15.0, "each": 25.0}  # frames per second, from the issue
BENCH_SIZE = (640, 480)


def parse_tasks(text: str) -> list[str]:
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise argparse.ArgumentTypeError(f"unknown task {', '.join(unknown) or '(none)'}; choose from {','.join(TASKS)}")
    return [t for t in TASKS if t in tasks]  # the drawing order: skeleton under hands under faces


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=parse_tasks, default=list(TASKS),
                        help=f"comma-separated subset of {','.join(TASKS)} (default: all)")
    add_live_arguments(parser)
    add_pose_arguments(parser)
    add_hands_arguments(parser)
    add_gesture_arguments(parser)
    emotion = parser.add_argument_group("emotion (EmotionRecognizer)")
    emotion.add_argument("--emotion-weights", type=ModelArgument("emotion"), default=None,
                         help="emotion checkpoint or .onnx (default: the released emotion/recognizer)")
    emotion.add_argument("--face-detector", choices=("mediapipe", "haar"), default="mediapipe", help="face detector")
    emotion.add_argument("--max-faces", type=int, default=4, help="faces classified per frame, largest first (default %(default)s)")
    dynamic = parser.add_argument_group("dynamic gestures (point-history model, sliding window)")
    dynamic.add_argument("--dynamic-model", type=ModelArgument("video_gestures"), default=None,
                         help="best.ckpt from `video_gestures.train --source points`, or its ONNX export "
                              "(default: the released video_gestures/points.onnx)")
    dynamic.add_argument("--window", type=int, default=None, help="frames per window (default: the model's frame count)")
    dynamic.add_argument("--stride", type=int, default=4, help="frames between window predictions (default %(default)s)")
    dynamic.add_argument("--smoothing", type=float, default=0.6,
                         help="moving-average weight of the previous window's probabilities, 0-1 (default %(default)s)")
    action = parser.add_argument_group("action (action_recognition's sliding window, as predict --timeline)")
    action.add_argument("--action-model", type=ModelArgument("action_recognition"), default=None,
                        help="an action_recognition .onnx export or best.ckpt (default: the released action_recognition/frame.onnx)")
    action.add_argument("--action-window", type=positive_seconds, default=2.0,
                        help="seconds of video per action window (default %(default)s)")
    action.add_argument("--action-hop", type=positive_seconds, default=1.0,
                        help="seconds between action windows: how often the answer changes (default %(default)s)")
    action.add_argument("--action-unknown-threshold", type=probability, default=None,
                        help="answer `unknown` below this best-class probability (default: for the released model, "
                             "the threshold calibrated by action_recognition.unknown; for others none); 0 turns it off")
    bench = parser.add_argument_group("bench")
    bench.add_argument("--bench", action="store_true",
                       help="frames/s with all tasks and with each alone on the shared real videos at 640x480 "
                            "-> --bench-output (no window)")
    bench.add_argument("--bench-frames", type=int, default=30, help="at most this many frames of each video (default %(default)s)")
    bench.add_argument("--bench-output", type=OutputFile(), default=RESULTS_DIR / "live.json", help="default %(default)s")
    return parser


def build_stages(args: argparse.Namespace, tasks: list[str], source: LiveSource) -> list[LiveStage]:
    """The stages of `tasks`, each from its task package (imported here: mediapipe, torch and onnxruntime
    load only for the tasks asked for); one `LiveHands` for the gesture and dynamic stages."""
    from core.weights import released

    stages: list[LiveStage] = []
    hands = None
    try:
        if "gestures" in tasks or "dynamic" in tasks:
            from gesture_detection.live import hands_from_args

            hands = hands_from_args(args)
        if "pose" in tasks:
            from pose_smoothing.live import pose_stage_from_args

            stages.append(pose_stage_from_args(args, source.fps))
        if "gestures" in tasks:
            from gesture_detection.live import gesture_stage_from_args

            stages.append(gesture_stage_from_args(args, hands))
        if "emotion" in tasks:
            from emotion.webcam_demo import EmotionStage

            stages.append(EmotionStage(args.emotion_weights or released("emotion", "recognizer"), args.face_detector,
                                       args.threads, args.max_faces))
        if "dynamic" in tasks:
            from video_gestures.live import DynamicGestureStage

            stages.append(DynamicGestureStage(args.dynamic_model or released("video_gestures", "points"), hands,
                                              args.window, args.stride, args.smoothing, args.threads))
        if "action" in tasks:
            from action_recognition.live import ActionStage

            threshold = args.action_unknown_threshold
            if threshold is None and args.action_model is None:
                from action_recognition.unknown import read_threshold

                threshold = read_threshold()   # calibrated for the released model, as predict uses it
            stages.append(ActionStage(args.action_model or released("action_recognition", "frame"), threshold,
                                      args.action_window, args.action_hop, args.threads))
    except BaseException:
        for stage in stages:
            stage.close()
        if hands is not None:
            hands.close()
        raise
    return stages


# ----------------------------------------------------------------------------------------- bench
def bench_videos() -> list[Path]:
    from core.io import InputError

    pose = sorted(p for p in (SHARED_DATA / "pose_smoothing").glob("*") if p.suffix.lower() in (".mp4", ".avi"))
    gestures = sorted((SHARED_DATA / "video_gestures" / "zsgl_demo_videos").glob("*.mp4"))
    if not pose and not gestures:
        raise InputError(SHARED_DATA, "no bench videos (pose_smoothing/*.mp4|avi, video_gestures/zsgl_demo_videos/*.mp4); "
                                      "set SHARED_DATA_DIR or put shared/ beside the repository")
    return pose + gestures


def bench_source(videos: list[Path], frames_per_video: int) -> LiveSource:
    sources = [open_live_source(video, BENCH_SIZE) for video in videos]
    if frames_per_video > 0:
        for source in sources:
            source.frames = islice(source.frames, frames_per_video)
    return chained_sources(sources)


def bench(args: argparse.Namespace, argv: list[str]) -> dict:
    """Every configuration (all tasks, then each alone) over the same frames, models loaded before the clock."""
    import cv2

    cv2.setNumThreads(args.threads)
    videos = bench_videos()
    configs = {"all": list(TASKS), **{task: [task] for task in TASKS}}
    results = {"fps": {}, "light_fraction": {}, "stage_ms": {}, "load_average_1min": {}, "frames": None}
    for name, tasks in configs.items():
        source = bench_source(videos, args.bench_frames)
        stages = build_stages(args, tasks, source)
        before = os.getloadavg()[0]
        stats = run_live(stages, source, min_fps=args.min_fps, skip_work=args.skip_work)
        results["fps"][name] = round(stats.fps, 2)
        results["light_fraction"][name] = round(stats.light_frames / stats.frames, 3)
        results["stage_ms"][name] = {k: round(v, 2) for k, v in stats.stage_ms.items()}
        results["load_average_1min"][name] = {"before": round(before, 2), "after": round(os.getloadavg()[0], 2)}
        results["frames"] = stats.frames
        print(f"{name}: {stats.fps:.1f} frames/s over {stats.frames} frames ({stats.light_frames} light; "
              f"load average {before:.2f} -> {os.getloadavg()[0]:.2f})", flush=True)
    results.update({
        "targets": BENCH_TARGETS, "frame_size": f"{BENCH_SIZE[0]}x{BENCH_SIZE[1]}", "frames_per_video": args.bench_frames,
        "videos": [str(v.relative_to(SHARED_DATA)) if v.is_relative_to(SHARED_DATA) else str(v) for v in videos],
        "threads": args.threads, "skip_work": args.skip_work, "min_fps": args.min_fps,
        "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "date": datetime.now().isoformat(timespec="minutes"),
        "command": "python -m webcam_demo " + " ".join(argv),
        "note": "fps: frames / wall seconds of the whole loop (decode, resize, every stage, drawing); models and "
                "MediaPipe graphs built before the clock; light_fraction: frames where hands and faces ran every "
                "other frame (below --min-fps); stage_ms: per frame, the shared hands counted in the first stage that asks",
    })
    import json

    from core.io import write_json

    # results/live.json also holds core.startup's figures: keep them
    previous = json.loads(args.bench_output.read_text()) if args.bench_output.is_file() else {}
    write_json(args.bench_output, {**{k: previous[k] for k in ("startup_seconds", "startup") if k in previous}, **results})
    print(f"wrote {args.bench_output}")
    if args.bench_output == RESULTS_DIR / "live.json":
        from core.results import publish_live_table

        publish_live_table()
    return results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.bench:
        started = time.perf_counter()
        bench(args, argv)
        print(f"bench took {time.perf_counter() - started:.0f} s")
        return 0
    run_from_args(args, lambda source: build_stages(args, args.tasks, source), title="webcam_demo")
    return 0


if __name__ == "__main__":
    run_main(main)
