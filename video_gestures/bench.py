"""Benchmark → results/video_gestures.json and the README table.

    python -m video_gestures.bench          # what `make bench` runs

1. Point history (MediaPipe fingertip trajectories, 5,296 sequences, 4 classes, and 1,500 generated paths of a
   hand wandering at random as a fifth class, `none`): stratified 25% hold-out (seed 0), CNNBiLSTMWithAttention on
   position, velocity and offset channels → point_history_accuracy, on the recorded hold-out sequences alone (an
   answer `none` counts as wrong); point_history_none_test, the generated hold-out answered `none`; and
   point_history_gesture_threshold, the live path's threshold chosen on other generated paths (train.py).
2. Generated motion (8 classes, hand photos moved in time, 300 clips per class, 8 frames of 64 px): per-frame
   ImageNet MobileNetV2 embeddings (96 px) of the whole frame and its left and right halves (one channel each;
   `--views` takes top and bottom too), cached in HDF5; the sequence model (one projection per channel, clips centred in time,
   inputs standardised) on a stratified 25% hold-out grouped by clip → motion_accuracy; the same with every
   clip's frames shuffled in time → motion_shuffled_accuracy (chance is 1/2: the motion kind is visible in any
   frame, its direction only in the order); and, stricter, a hold-out of whole hand photos → motion_accuracy_unseen_hands.
3. Timing, 2 torch threads (and 1): embedding_fps, MobileNetV2 over 20 generated clips with all the views;
   ms_per_clip, the trained sequence model alone on one clip (batch 1), median of 50 runs.

4. False triggers of the released fingertip model (weights/video_gestures/points.onnx) through the live path
   (MediaPipe Hands -> sliding window of 16 frames, stride 4 -> occurrences): `false_triggers.no_hand_windows`,
   gesture windows on videos where no hand is visible (the shared walking video, generated black, noise and
   hand-free photo clips; target 0), and `false_triggers.per_minute`, gesture occurrences per minute on hand
   motion that is none of the gestures (the shared dancer video; generated random fingertip paths, seed 0, which
   no training or threshold choice sees; target <= 1).

`--timing-only` reruns just step 3 with the models of the last full run and updates the timing keys of
results/video_gestures.json (e.g. on a quiet machine); `--false-triggers-only` just step 4; `--point-history-only`
just step 1:

    python -m video_gestures.bench --timing-only
    python -m video_gestures.bench --false-triggers-only
    python -m video_gestures.bench --point-history-only
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import core  # noqa: F401  (offline environment first)
import numpy as np
import torch

from core.cli import run_main
from core.env import REPO_ROOT, SHARED_DATA
from core.io import InputError
from core.results import markdown_table, publish_table, read_results, write_results
from video_gestures import train
from video_gestures.data import VideoItem, random_fingertip_paths
from video_gestures.embeddings import build_cache, make_embedder, read_cache
from video_gestures.model import load_sequence_model
from video_gestures.motion import PAIRS, generate_motion_set, load_hand_crops

HANDS_CSV = SHARED_DATA / "gesture_detection" / "hands_dataset_subhih" / "labels.csv"
# Whole frame and its left and right halves, as in the original (top and bottom halves added nothing on the
# development set, EXPERIMENTS.md rows 16-17).
MOTION_VIEWS = ("whole", "left", "right")


def embed_motion_set(cache_path: Path, clips_per_class: int, num_frames: int, image_size: int, seed: int = 0,
                     hands_csv: Path = HANDS_CSV, canvas: int = 64, hand_fraction: tuple[float, float] = (0.55, 0.7),
                     views: tuple[str, ...] = MOTION_VIEWS, progress: bool = False, reuse: bool = False):
    """Generate the motion set and embed it into `cache_path`; returns (extraction stats, the set, the embedder).
    With `reuse`, a complete cache built with the same settings and clips is kept (a stale one is rebuilt)."""
    hands = load_hand_crops(hands_csv, limit=60, seed=seed)
    motion = generate_motion_set(hands, clips_per_class, num_frames, canvas, seed=seed, hand_fraction=hand_fraction)
    items = [VideoItem(f"clip{i:04d}", motion.labels[t]) for i, t in enumerate(motion.targets)]
    embedder = make_embedder("mobilenet_v2", image_size, views)
    if not reuse:
        cache_path.unlink(missing_ok=True)  # a fresh extraction, so its speed is measured too
    stats = build_cache(items, cache_path, embedder, motion.labels, num_frames,
                        clip_reader=lambda item, _: motion.clips[int(item.video_id[4:])], rebuild=True, progress=progress)
    return stats, motion, embedder


def embedding_fps(embedder, clips: np.ndarray, threads: int = 2) -> float:
    """Frames per second of `embedder` (all views) over `clips`, with `threads` torch threads, after one warm-up clip."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        embedder(clips[0])
        started = time.perf_counter()
        for clip in clips:
            embedder(clip)
        return len(clips) * clips.shape[1] / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)


def train_cached(cache_path: Path, groups: np.ndarray, run_name: str, extra: list[str], shuffle: bool = False) -> dict:
    cache = read_cache(cache_path)
    args = train.build_parser().parse_args(["--source", "cache", "--cache", str(cache_path), "--run-name", run_name,
                                            "--no-progress-bar", *extra])
    x = train.shuffle_time(cache.embeddings, args.seed) if shuffle else cache.embeddings
    return train.train_sequences(x, cache.targets, cache.labels, groups.astype(str), args, {"source": "embeddings", **cache.config})


def direction_accuracy(result: dict) -> float:
    """Among hold-out clips whose motion kind (pair) was recognised, the share with the right direction."""
    confusion = np.asarray(result["report"].confusion)
    labels = result["report"].labels
    same_pair = np.array([[PAIRS[a] == PAIRS[b] for b in labels] for a in labels])
    return float(np.trace(confusion) / max(confusion[same_pair].sum(), 1))


def ms_per_clip(checkpoint: Path, shape: tuple[int, ...], repeats: int = 50, threads: int = 2) -> float:
    """Median milliseconds of the sequence model on one clip (batch 1) with `threads` torch threads."""
    model = load_sequence_model(str(checkpoint))
    clip = torch.randn(1, *shape)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    timings = []
    try:
        with torch.inference_mode():
            model(clip)
            for _ in range(repeats):
                started = time.perf_counter()
                model(clip)
                timings.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)
    return float(np.median(timings) * 1000)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=Path, default=train.DEFAULT_POINTS, help="point-history CSV (default %(default)s)")
    parser.add_argument("--hands-csv", type=Path, default=HANDS_CSV, help="hand photos with boxes for the motion set")
    parser.add_argument("--point-epochs", type=int, default=60,
                        help="epochs on the point-history set (with its generated none class; the release's recipe)")
    parser.add_argument("--motion-epochs", type=int, default=30, help="epochs on the motion embeddings")
    parser.add_argument("--clips-per-class", type=int, default=300, help="generated clips per motion class")
    parser.add_argument("--num-frames", type=int, default=8, help="frames per generated clip")
    parser.add_argument("--canvas", type=int, default=64, help="side of the generated frames in pixels")
    parser.add_argument("--image-size", type=int, default=96, help="MobileNetV2 input size for the embeddings")
    parser.add_argument("--views", default=",".join(MOTION_VIEWS),
                        help="frame views embedded for the motion set, one channel each (default %(default)s)")
    parser.add_argument("--timing-threads", type=int, default=2, help="torch threads for embedding_fps and ms_per_clip")
    parser.add_argument("--train-threads", type=int, default=1,
                        help="torch threads for extraction and training (1 is fastest on a shared 2-core machine)")
    parser.add_argument("--reuse-cache", action="store_true",
                        help="keep the motion embedding cache of an earlier run when it was built with the same settings "
                             "(skips the extraction; embedding_fps_cache_build is then not measured)")
    parser.add_argument("--point-history-only", action="store_true",
                        help="only retrain and score the point-history model (step 1) and update its keys")
    parser.add_argument("--false-triggers-only", action="store_true",
                        help="only rerun the false-trigger counts of the released model and update their keys")
    parser.add_argument("--timing-only", action="store_true",
                        help="only rerun the timing (embedding_fps, ms_per_clip) with the models of the last full run "
                             "and update results/video_gestures.json, e.g. on a quiet machine")
    return parser.parse_args(argv)


def measure_timing(results: dict, hands_csv: Path, threads: int) -> dict:
    """The timing keys: MobileNetV2 over 20 generated clips with the benchmark's views and sizes, and the trained
    sequence models on one clip, with `threads` and with 1 torch thread."""
    motion_checkpoint, points_checkpoint = (REPO_ROOT / results["checkpoints"][k] for k in ("motion", "point_history"))
    for checkpoint in (motion_checkpoint, points_checkpoint):
        if not checkpoint.is_file():
            raise InputError(checkpoint, "trained model not found; run `python -m video_gestures.bench` first")
    hands = load_hand_crops(hands_csv, limit=4, seed=0)
    clips = generate_motion_set(hands, clips_per_class=3, num_frames=results["motion_input_shape"][0],
                                size=results["motion_canvas"], seed=1).clips[:20]
    embedder = make_embedder("mobilenet_v2", results["embedding_image_size"], results["motion_views"])
    motion_shape, points_shape = tuple(results["motion_input_shape"]), tuple(results["point_history_input_shape"])
    return {"embedding_fps": embedding_fps(embedder, clips, threads),
            "embedding_fps_1_thread": embedding_fps(embedder, clips, 1),
            "ms_per_clip": ms_per_clip(motion_checkpoint, motion_shape, threads=threads),
            "ms_per_clip_1_thread": ms_per_clip(motion_checkpoint, motion_shape, threads=1),
            "ms_per_clip_point_history": ms_per_clip(points_checkpoint, points_shape, threads=threads),
            "timing_threads": threads, "timing_date": time.strftime("%Y-%m-%d %H:%M")}


def _repo_path(path) -> str:
    """`path` relative to the repository when it lies inside it (the results file stays portable)."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def point_history(args: argparse.Namespace) -> dict:
    """Step 1: train the point-history model (the release's recipe, with its generated `none` class) and return
    its keys, nested ones (checkpoints, train_seconds, epochs) as one-key dicts for `merge`."""
    points = train.main(["--threads", str(args.train_threads), "--points", str(args.points), "--run-name", "bench-points",
                         "--max-epochs", str(args.point_epochs), "--batch-size", "64", "--no-progress-bar"])
    return {"point_history_accuracy": points["test_accuracy"],
            "point_history_test_sequences": points["sequences"]["test"],
            "point_history_classes": points["labels"],
            "point_history_none_test": points.get("generated_test"),
            "point_history_gesture_threshold": points.get("gesture_threshold"),
            "point_history_input_shape": list(points["input_shape"]),
            "attention_point_history": points["attention"],
            "checkpoints": {"point_history": _repo_path(points["best_checkpoint"])},
            "train_seconds": {"point_history": points["train_seconds"]},
            "epochs": {"point_history": args.point_epochs}}


def merge(results: dict, update: dict) -> dict:
    """`results` with `update`'s keys; dicts are merged one level down."""
    return {**results, **{k: {**results.get(k, {}), **v} if isinstance(v, dict) and isinstance(results.get(k), dict) else v
                          for k, v in update.items()}}


def run_benchmark(args: argparse.Namespace, argv: list[str] | None) -> dict:
    """Train and score both sets; returns the results without the timing keys."""
    points = point_history(args)
    # The generator's settings are in the name: the cache itself only checks backbone, views, frames and clip ids.
    cache_path = (train.make_run_dir("video_gestures", "bench-motion-cache")
                  / f"motion_{args.clips_per_class}x{args.num_frames}_{args.canvas}px.h5")
    views = tuple(v for v in args.views.split(",") if v)
    extraction, motion_set, _ = embed_motion_set(cache_path, args.clips_per_class, args.num_frames, args.image_size,
                                                 hands_csv=args.hands_csv, canvas=args.canvas, views=views,
                                                 reuse=args.reuse_cache)
    clip_ids = np.array([f"clip{i:04d}" for i in range(len(motion_set.clips))])
    motion_args = ["--max-epochs", str(args.motion_epochs), "--batch-size", "32", "--hidden", "64", "--learning-rate", "3e-3",
                   "--centre-time", "--standardize", "--threads", str(args.train_threads)]
    motion = train_cached(cache_path, clip_ids, "bench-motion", motion_args)
    shuffled = train_cached(cache_path, clip_ids, "bench-motion-shuffled", motion_args, shuffle=True)
    # Stricter, beside the split: hold out whole hand photos (every clip of a held-out photo is unseen).
    unseen = train_cached(cache_path, motion_set.hands, "bench-motion-unseen-hands", motion_args)
    cache = read_cache(cache_path)
    return merge(points, {
        "motion_accuracy": motion["test_accuracy"],
        "motion_shuffled_accuracy": shuffled["test_accuracy"],
        "motion_shuffled_direction_accuracy": direction_accuracy(shuffled),
        "motion_direction_accuracy": direction_accuracy(motion),
        "motion_chance_shuffled": 0.5,
        "motion_test_clips": motion["sequences"]["test"],
        "motion_accuracy_unseen_hands": unseen["test_accuracy"],
        "motion_unseen_hands_test_clips": unseen["sequences"]["test"],
        "motion_hand_photos": int(len(set(motion_set.hands.tolist()))),
        "motion_train_clips": motion["sequences"]["train"],
        "motion_val_clips": motion["sequences"]["val"],
        "motion_classes": cache.labels,
        "motion_confusion": np.asarray(motion["report"].confusion).tolist(),
        "motion_shuffled_confusion": np.asarray(shuffled["report"].confusion).tolist(),
        "motion_views": list(views),
        "motion_canvas": args.canvas,
        "embedding_fps_cache_build": extraction["frames_per_second"] if extraction["new"] else None,  # None: cache reused
        "embedding_backbone": f"mobilenet_v2 (ImageNet), views {'/'.join(views)}",
        "embedding_image_size": args.image_size,
        "motion_input_shape": list(cache.embeddings.shape[1:]),
        "checkpoints": {"motion": _repo_path(motion["best_checkpoint"])},
        "train_seconds": {"motion": motion["train_seconds"]},
        "epochs": {"motion": args.motion_epochs},
        "attention_motion": motion["attention"],
        "train_threads": args.train_threads,
        "command": "python -m video_gestures.bench " + " ".join(sys.argv[1:] if argv is None else argv),
    })


NO_HAND_VIDEOS = (SHARED_DATA / "pose_smoothing" / "assemblyai_walking.mp4",)
HAND_MOTION_VIDEOS = (SHARED_DATA / "pose_smoothing" / "mgt_dancer.avi",)


def hand_free_clips(seconds: float = 4.0, fps: int = 30, size: tuple[int, int] = (640, 480)) -> dict[str, list]:
    """Generated clips with nothing a hand detector should find: black, noise, and two photos (a cup of coffee,
    a cat) drifting across the frame like a handheld camera."""
    import cv2
    import skimage

    count, (width, height) = int(seconds * fps), size
    rng = np.random.default_rng(0)
    clips = {"black": [np.zeros((height, width, 3), np.uint8)] * count,
             "noise": [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]}
    for name in ("coffee", "chelsea"):
        photo = cv2.resize(getattr(skimage.data, name)(), (width + count, height))
        clips[name] = [np.ascontiguousarray(photo[:, i:i + width]) for i in range(count)]
    return clips


def false_triggers(window_stride: int = 4) -> dict:
    """Step 4: the released fingertip model on inputs with nothing to recognise (see the module docstring)."""
    from core.io import iter_video_frames
    from core.weights import released
    from gesture_detection.detect import MediaPipeHands
    from video_gestures.inference import load_model
    from video_gestures.live import FingertipEncoder, SlidingWindowRecognizer, occurrences

    model = load_model(released("video_gestures", "points"), threads=1)
    config = model.input_config
    hands = MediaPipeHands(max_hands=1)

    def windows(frames) -> list:
        encoder = FingertipEncoder(config["point_features"], config["num_frames"], detector=hands)
        recognizer = SlidingWindowRecognizer(model, encoder, config["num_frames"], window_stride)
        return list(recognizer.run(frames))

    no_hand, per_minute = {}, {}
    sources = {path.stem: iter_video_frames(path) for path in NO_HAND_VIDEOS if path.is_file()}
    sources.update({f"generated_{name}": ((i, i / 30, rgb) for i, rgb in enumerate(clip))
                    for name, clip in hand_free_clips().items()})
    for name, frames in sources.items():
        found = windows(frames)
        no_hand[name] = {"windows": len(found), "gesture_windows": sum(w.is_gesture for w in found)}
    for path in HAND_MOTION_VIDEOS:
        if path.is_file():
            frames = iter_video_frames(path)
            found = windows(frames)
            minutes = (found[-1].seconds if found else 0.0) / 60
            per_minute[path.stem] = round(len(list(occurrences(found))) / minutes, 2) if minutes else 0.0
    paths = random_fingertip_paths()
    encoder = FingertipEncoder(config["point_features"], config["num_frames"], detector=hands)
    recognizer = SlidingWindowRecognizer(model, encoder, config["num_frames"], window_stride)
    found = [p for i, point in enumerate(paths) if (p := recognizer.push_encoding(point, i / 30)) is not None]
    per_minute["generated_random_paths"] = round(len(list(occurrences(found))) / (len(paths) / 30 / 60), 2)
    hands.close()
    return {"false_triggers": {
        "no_hand_windows": sum(v["gesture_windows"] for v in no_hand.values()),
        "no_hand_windows_total": sum(v["windows"] for v in no_hand.values()),
        "no_hand_sources": no_hand,
        "per_minute": max(per_minute.values()),
        "per_minute_by_source": per_minute,
        "window": config["num_frames"], "stride": window_stride, "model": "weights/video_gestures/points.onnx",
        "command": "python -m video_gestures.bench --false-triggers-only"}}


def results_table(results: dict) -> str:
    views = results["motion_views"]
    rows = [
        [f"point history, 25% hold-out ({results['point_history_test_sequences']} recorded sequences; "
         f"{len(results.get('point_history_classes', [])) or 4} answers)", "accuracy",
         f"{results['point_history_accuracy']:.4f}", "≥ 0.993"],
        [f"generated motion, 8 classes ({results['motion_test_clips']} hold-out clips)", "accuracy",
         f"{results['motion_accuracy']:.4f}", "≥ 0.98"],
        [f"same, hold-out by hand photo ({results['motion_unseen_hands_test_clips']} clips of unseen photos)", "accuracy",
         f"{results['motion_accuracy_unseen_hands']:.4f}", ""],
        ["same, frames shuffled in time (control)", "accuracy", f"{results['motion_shuffled_accuracy']:.4f}", "chance: 0.5"],
        ["same, shuffled: direction right when the motion kind is right", "accuracy",
         f"{results['motion_shuffled_direction_accuracy']:.4f}", "chance: 0.5"],
        [f"MobileNetV2 embeddings, {len(views)} views, {results['embedding_image_size']} px, "
         f"{results['timing_threads']} threads (1 thread)", "frames / s",
         f"{results['embedding_fps']:.1f} ({results['embedding_fps_1_thread']:.1f})", ""],
        [f"sequence model, one clip {tuple(results['motion_input_shape'])}, {results['timing_threads']} threads (1 thread)",
         "ms / clip", f"{results['ms_per_clip']:.2f} ({results['ms_per_clip_1_thread']:.2f})", ""],
    ]
    triggers = results.get("false_triggers")
    if triggers:
        rows += [
            [f"released fingertip model, no hand visible ({', '.join(triggers['no_hand_sources'])}; "
             f"{triggers['no_hand_windows_total']} windows)", "gesture windows", str(triggers["no_hand_windows"]), "0"],
            [f"same, hand motion that is no gesture ({', '.join(triggers['per_minute_by_source'])})",
             "gestures / minute", ", ".join(f"{v:.1f}" for v in triggers["per_minute_by_source"].values()), "≤ 1"],
        ]
    none, threshold = results.get("point_history_none_test"), results.get("point_history_gesture_threshold")
    if none and threshold:
        rows[1:1] = [
            [f"same, generated non-gesture paths of the hold-out ({none['sequences']}) answered none", "accuracy",
             f"{none['accuracy']:.4f}", ""],
            [f"same, live gesture threshold (chosen on {threshold['calibration_minutes']:g} min of other generated paths): "
             "recorded hold-out gestures right and over it", "share", f"{threshold['test_gestures_kept']:.4f} "
             f"(at {threshold['threshold']:.2f})", ""]]
    table = markdown_table(["benchmark", "metric", "value", "target"], rows)
    return table + (f"\n\n`{results['command'].strip()}`; views {'/'.join(views)}. Timings ({results['timing_date']}) on a "
                    "2-core machine shared with other jobs (pessimistic; with the cores oversubscribed, 2 torch threads "
                    "run far slower than 1); `python -m video_gestures.bench --timing-only` reruns just them.")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.train_threads)
    if args.false_triggers_only:
        results = {**read_results("video_gestures"), **false_triggers()}
    elif args.point_history_only:
        results = merge(read_results("video_gestures"), point_history(args))
    else:
        results = read_results("video_gestures") if args.timing_only else run_benchmark(args, argv)
        results.update(measure_timing(results, args.hands_csv, args.timing_threads))
        if not args.timing_only:
            results.update(false_triggers())
    write_results("video_gestures", results)
    table = results_table(results)
    publish_table("video_gestures", table)
    print(table)
    return results


if __name__ == "__main__":
    run_main(main)
