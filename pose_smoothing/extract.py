"""Video or image folder -> per-frame MediaPipe Pose landmarks -> gap filling, smoothing -> angles and BVH.

    python -m pose_smoothing.extract VIDEO -o OUT_DIR [--filter one-euro|kalman|fixed-lag|savgol|rts|neighbour-mean|none]

Writes into OUT_DIR (each file atomically, and only once the whole video was processed):
  raw_landmarks.json   MediaPipe's output, frames with no person as null (format: pose_smoothing.data)
  landmarks.json       the same after low-visibility masking, gap filling and smoothing, plus the
                       NECK_BASE and SPINE_BASE dummy vertices in every frame, as the original script had
  angles.csv           per frame: bone lengths, spherical angles, local quaternions (time_s first)
  skeleton.bvh         the animation (ZXY channels continuous over time, frame time from the video;
                       --up y|z, --root-motion on|off)
  summary.json         counts, detection rate, processing speed, jitter raw vs smoothed, settings

Following one person: see pose_smoothing.follow.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # `python pose_smoothing/extract.py`: the package is importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
from core.cli import InputArgument, OutputFolder, run_main  # noqa: E402
from core.io import InputError, check_decoded_length, write_json  # noqa: E402
from pose_smoothing.bvh import complete_frames, write_bvh  # noqa: E402
from pose_smoothing.data import NUM_LANDMARKS, LandmarkSequence, open_frames, write_landmarks_json  # noqa: E402
from pose_smoothing.filters import DEFAULT_LAG_FRAMES, smooth_sequence  # noqa: E402
from pose_smoothing.follow import PersonFollower  # noqa: E402
from pose_smoothing.gaps import FILL_METHODS, fill_gaps, reject_outliers  # noqa: E402
from pose_smoothing.simulate import jitter  # noqa: E402
from pose_smoothing.skeleton import NECK_BASE, SPINE_BASE, VERTEX_INDEX, skeleton_points, with_dummy_vertices  # noqa: E402
from pose_smoothing.writers import write_angles_csv  # noqa: E402

FILTER_CHOICES = ("one-euro", "kalman", "fixed-lag", "savgol", "rts", "neighbour-mean", "none")
OFFLINE_FILTERS = ("savgol", "rts")  # they see the whole recording, so outliers can be judged from both sides
DEFAULT_OUTLIER_THRESHOLD = 6.0


# ----------------------------------------------------------------------------------------- pipeline
def extract_landmarks(path: str | Path, folder_fps: float = 30.0, progress: bool = True,
                      follow: bool = True, max_frames: int | None = None) -> tuple[LandmarkSequence, dict]:
    """Run MediaPipe Pose over every frame; frames with no person are gaps. Returns the raw sequence and stats."""
    import cv2
    from tqdm import tqdm

    cv2.setNumThreads(2)
    source = open_frames(path, folder_fps)
    follower = PersonFollower(source.fps, detect_people=follow)
    images, worlds, visibilities, timestamps = [], [], [], []
    container_timestamps = []  # as decoded, before the fallback below, for the truncation check
    size = source.size
    started = time.perf_counter()
    pose_seconds = 0.0
    total = min(source.frame_count, max_frames) if max_frames else source.frame_count
    bar = tqdm(total=total or None, desc=f"pose {source.path.name}", unit="frame", disable=not progress)
    try:
        for index, timestamp, rgb in source.frames:
            if max_frames and index >= max_frames:
                break
            container_timestamps.append(timestamp)
            if timestamps and timestamp <= timestamps[-1]:  # broken container time: fall back to index / fps
                timestamp = timestamps[-1] + 1.0 / source.fps
            timestamps.append(timestamp)
            result = None
            if rgb is not None:
                size = (rgb.shape[1], rgb.shape[0])
                tick = time.perf_counter()
                result = follower(rgb)
                pose_seconds += time.perf_counter() - tick
            if result is None:
                images.append(np.full((NUM_LANDMARKS, 3), np.nan))
                worlds.append(np.full((NUM_LANDMARKS, 3), np.nan))
                visibilities.append(np.zeros(NUM_LANDMARKS))
            else:
                images.append(result.image)
                worlds.append(result.world)
                visibilities.append(result.visibility)
            bar.update(1)
            bar.set_postfix(fps=f"{(index + 1) / max(time.perf_counter() - started, 1e-9):.1f}", refresh=False)
    finally:
        bar.close()
        follower.close()
    if not timestamps:
        raise InputError(path, "no frame could be read")
    decoded_length = None
    if not source.path.is_dir() and not (max_frames and len(timestamps) >= max_frames):
        decoded_length = check_decoded_length(source.path, len(timestamps), max(container_timestamps)).as_dict()
    sequence = LandmarkSequence(image=np.array(images), world=np.array(worlds), visibility=np.array(visibilities),
                                timestamps=np.array(timestamps), fps=source.fps, image_size=size,
                                source=str(source.path))
    stats = {"frames": len(sequence), "pose_seconds": pose_seconds,
             "pose_fps": len(sequence) / pose_seconds if pose_seconds > 0 else 0.0,
             "decoded_length": decoded_length, **follower.stats}
    if not sequence.detected.any():
        raise InputError(path, f"no person detected in any of the {len(sequence)} frames")
    return sequence, stats


def clean_sequence(raw: LandmarkSequence, method: str, max_gap: int, visibility_threshold: float,
                   fill: str | None = None, lag_frames: int = DEFAULT_LAG_FRAMES,
                   outlier_threshold: float = DEFAULT_OUTLIER_THRESHOLD) -> LandmarkSequence:
    """Outlier rejection (offline filters only), gap filling, then smoothing. `method` 'neighbour-mean'
    is the original script: neighbour-mean filling and no smoothing; otherwise `fill` (default
    linear) then the named filter. The live filters get no outlier rejection, because it looks
    at later frames: their batch output stays what they give live."""
    if method == "neighbour-mean":
        fill, method = "neighbour-mean", "none"
    if method in OFFLINE_FILTERS and outlier_threshold > 0:
        raw, _ = reject_outliers(raw, outlier_threshold)
    filled = fill_gaps(raw, method=fill or "linear", max_gap=max_gap, visibility_threshold=visibility_threshold)
    return smooth_sequence(filled, method, lag_frames)


def animation_sequence(raw: LandmarkSequence, smoothed: LandmarkSequence, method: str, max_gap: int,
                       fill: str | None, lag_frames: int = DEFAULT_LAG_FRAMES,
                       outlier_threshold: float = DEFAULT_OUTLIER_THRESHOLD) -> tuple[LandmarkSequence, float]:
    """The sequence for angles and BVH, which need every joint: a landmark that is a gap only because
    MediaPipe rated it not visible (legs out of frame, a hidden arm) takes MediaPipe's own estimate,
    filled and smoothed the same way. Returns it and the fraction of landmark values so replaced."""
    holes = np.isnan(smoothed.world)
    if not holes.any():
        return smoothed, 0.0
    estimate = clean_sequence(raw, method, max_gap, visibility_threshold=0.0, fill=fill, lag_frames=lag_frames,
                              outlier_threshold=outlier_threshold)
    replaced = holes & np.isfinite(estimate.world)
    merged = smoothed.copy(image=np.where(np.isnan(smoothed.image), estimate.image, smoothed.image),
                           world=np.where(holes, estimate.world, smoothed.world))
    return merged, float(replaced[..., 0].mean())


def jitter_pair(raw: LandmarkSequence, smoothed: LandmarkSequence) -> tuple[float, float]:
    """Jitter of the raw and smoothed image x, y, on the landmarks finite in both."""
    raw_xy, smooth_xy = raw.image[..., :2], smoothed.image[..., :2]
    both = np.isfinite(raw_xy) & np.isfinite(smooth_xy)
    return jitter(np.where(both, raw_xy, np.nan)), jitter(np.where(both, smooth_xy, np.nan))


def write_outputs(out_dir: Path, raw: LandmarkSequence, smoothed: LandmarkSequence,
                  animation: LandmarkSequence, bvh_up: str = "y", root_motion: bool = True) -> dict[str, Path]:
    skeleton = skeleton_points(animation)
    complete_frames(skeleton, str(out_dir / "skeleton.bvh"))  # fails before anything is written
    dummies = with_dummy_vertices(smoothed.image)
    write_bvh(out_dir / "skeleton.bvh", skeleton, frame_time=1.0 / smoothed.fps, up=bvh_up, root_motion=root_motion)
    return {
        "raw_landmarks": write_landmarks_json(out_dir / "raw_landmarks.json", raw),
        "landmarks": write_landmarks_json(out_dir / "landmarks.json", smoothed,
                                          {NECK_BASE: dummies[:, VERTEX_INDEX[NECK_BASE]],
                                           SPINE_BASE: dummies[:, VERTEX_INDEX[SPINE_BASE]]}),
        "angles": write_angles_csv(out_dir / "angles.csv", skeleton, smoothed.timestamps),
        "bvh": out_dir / "skeleton.bvh",
    }


def run(video: str | Path, out_dir: str | Path, method: str = "one-euro", fill: str | None = None, max_gap: int = 10,
        visibility_threshold: float = 0.5, folder_fps: float = 30.0, progress: bool = True,
        follow: bool = True, max_frames: int | None = None, lag_frames: int = DEFAULT_LAG_FRAMES,
        outlier_threshold: float = DEFAULT_OUTLIER_THRESHOLD, bvh_up: str = "y", root_motion: bool = True) -> dict:
    """The whole command; returns the summary that is also written to OUT_DIR/summary.json."""
    if method not in FILTER_CHOICES:
        raise ValueError(f"unknown filter {method!r}; choose one of {', '.join(FILTER_CHOICES)}")
    started, started_cpu = time.perf_counter(), time.process_time()
    out_dir = Path(out_dir)
    raw, stats = extract_landmarks(video, folder_fps, progress, follow, max_frames)
    notes = []
    if stats["decoded_length"] and stats["decoded_length"]["truncated"]:
        length = stats["decoded_length"]
        notes.append(f"truncated video: decoded {length['decoded_frames']} frames ({length['decoded_seconds']:.2f} s) of "
                     f"the {length['header_frames']} ({length['header_seconds']:.2f} s) its container states; "
                     f"the outputs cover only the decoded part")
    if len(raw) == 1:
        notes.append("only one frame: nothing to fill or smooth, the pose is written as detected")
    smoothed = clean_sequence(raw, method, max_gap, visibility_threshold, fill, lag_frames, outlier_threshold)
    raw_jitter, smooth_jitter = jitter_pair(raw, smoothed)
    animation, estimated = animation_sequence(raw, smoothed, method, max_gap, fill, lag_frames, outlier_threshold)
    if estimated > 0:
        notes.append(f"{estimated:.1%} of the landmark values in angles.csv and skeleton.bvh are MediaPipe's estimates "
                     f"for landmarks it rated not visible (an animation needs every joint)")
    paths = write_outputs(out_dir, raw, smoothed, animation, bvh_up, root_motion)
    seconds = time.perf_counter() - started
    # CPU time of every thread of this process: on a shared machine it says what the command needs,
    # whatever else runs; with MediaPipe on several threads, wall time on an idle machine is lower
    cpu_seconds = time.process_time() - started_cpu
    summary = {
        "source": str(video), "frames": len(raw), "video_fps": raw.fps, "image_size": list(raw.image_size),
        "truncated": bool(stats["decoded_length"] and stats["decoded_length"]["truncated"]),
        "detected_frames": int(raw.detected.sum()), "detection_rate": raw.detection_rate,
        "frames_left_as_gaps_after_fill": int((~smoothed.detected).sum()),
        "filter": method, "fill": "neighbour-mean" if method == "neighbour-mean" else (fill or "linear"),
        "max_gap_frames": max_gap, "visibility_threshold": visibility_threshold,
        "lag_frames": lag_frames if method == "fixed-lag" else None,
        "outlier_threshold": outlier_threshold if method in OFFLINE_FILTERS else None,
        "seconds": seconds, "processing_fps": len(raw) / seconds,
        "cpu_seconds": cpu_seconds, "frames_per_cpu_second": len(raw) / cpu_seconds if cpu_seconds > 0 else None, **stats,
        "jitter_raw": raw_jitter, "jitter_smoothed": smooth_jitter,
        "jitter_reduction": 1.0 - smooth_jitter / raw_jitter if raw_jitter and np.isfinite(raw_jitter) and raw_jitter > 0 else None,
        "animation_landmarks_estimated": estimated, "bvh_up": bvh_up, "bvh_root_motion": root_motion,
        "notes": notes, "outputs": {k: str(v) for k, v in paths.items()},
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_smoothing.extract",
        description="Extract MediaPipe Pose landmarks from a video (mp4, avi, webm, ...; any fps) or an image folder, "
                    "fill gaps, smooth, and write landmarks JSON, an angle CSV and a BVH animation.")
    parser.add_argument("video", type=InputArgument("video", as_path=False), help="video file, or a folder of images taken as consecutive frames")
    parser.add_argument("-o", "--out-dir", type=OutputFolder(), required=True, help="folder for the outputs (created if needed)")
    parser.add_argument("--filter", default="one-euro", choices=FILTER_CHOICES,
                        help="smoothing: one-euro (MediaPipe's parameters, causal, live), kalman (constant velocity, "
                             "causal, live), fixed-lag (the Kalman filter plus an RTS pass over the last --lag-frames "
                             "frames: nearly live), savgol (offline, centred), rts (offline: the Kalman filter and "
                             "Rauch-Tung-Striebel smoother over the whole recording), neighbour-mean (the original "
                             "script: gaps get the mean of their neighbours, no smoothing), none (linear gap filling "
                             "only). Default: one-euro")
    parser.add_argument("--lag-frames", type=int, default=DEFAULT_LAG_FRAMES,
                        help=f"fixed-lag: how many later frames each estimate waits for (default {DEFAULT_LAG_FRAMES})")
    parser.add_argument("--outlier-threshold", type=float, default=DEFAULT_OUTLIER_THRESHOLD,
                        help="savgol and rts: a landmark further from the curve through its neighbours (2 and 3 frames "
                             "either side) than this many robust standard deviations is a gap, filled like the others; "
                             f"0 turns it off (default {DEFAULT_OUTLIER_THRESHOLD:g})")
    parser.add_argument("--fill", default=None, choices=FILL_METHODS,
                        help="gap filling before the filter (default linear; neighbour-mean when --filter neighbour-mean)")
    parser.add_argument("--max-gap", type=int, default=10,
                        help="longest gap, in frames, that is filled; longer ones stay gaps (default 10)")
    parser.add_argument("--visibility-threshold", type=float, default=0.5,
                        help="landmarks with a lower MediaPipe visibility are treated as gaps (default 0.5)")
    parser.add_argument("--fps", type=float, default=30.0,
                        help="frame rate for an image folder, or for a video whose container has none (default 30)")
    parser.add_argument("--no-follow", action="store_true",
                        help="skip the HOG people detector: whoever MediaPipe finds first becomes the target instead of "
                             "the largest / most central person (jumps to someone elsewhere are still refused)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: all)")
    parser.add_argument("--up", choices=("y", "z"), default="y",
                        help="skeleton.bvh's up axis: y (BVH's usual frame; Blender's importer turns it upright with its "
                             "defaults) or z (Blender's own frame, the person facing -y; import with Forward Y, Up Z). "
                             "Default y")
    parser.add_argument("--root-motion", choices=("on", "off"), default="on",
                        help="on: the root moves as the hips move in the video; off: it stays in place horizontally "
                             "(its height still moves), for an animation to loop or to move in the program. Default on")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lag_frames < 0:
        parser.error(f"--lag-frames must be 0 or more, got {args.lag_frames}")
    try:
        summary = run(args.video, args.out_dir, args.filter, args.fill, args.max_gap, args.visibility_threshold,
                      args.fps, progress=not args.quiet, follow=not args.no_follow, max_frames=args.max_frames,
                      lag_frames=args.lag_frames, outlier_threshold=args.outlier_threshold,
                      bvh_up=args.up, root_motion=args.root_motion == "on")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"{summary['frames']} frames, person detected in {summary['detection_rate']:.1%}; "
          f"{summary['processing_fps']:.1f} frames/s for the whole command (MediaPipe alone {summary['pose_fps']:.1f}); "
          f"jitter {summary['jitter_raw']:.5f} -> {summary['jitter_smoothed']:.5f} ({args.filter})")
    print(f"outputs in {args.out_dir}: " + ", ".join(Path(p).name for p in summary["outputs"].values()) + ", summary.json")
    return 0


if __name__ == "__main__":
    run_main(main)
