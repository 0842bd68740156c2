"""Video or image folder -> per-frame MediaPipe Pose landmarks -> gap filling, smoothing -> angles and BVH.

    python -m pose_smoothing.extract VIDEO -o OUT_DIR [--filter one-euro|savgol|kalman|neighbour-mean|none]

Writes into OUT_DIR (each file atomically, and only once the whole video was processed):
  raw_landmarks.json   MediaPipe's output, frames with no person as null (format: pose_smoothing.data)
  landmarks.json       the same after low-visibility masking, gap filling and smoothing, plus the
                       NECK_BASE and SPINE_BASE dummy vertices in every frame, as the original script had
  angles.csv           per frame: bone lengths, spherical angles, local quaternions (time_s first)
  skeleton.bvh         the animation (ZXY channels, frame time from the video)
  summary.json         counts, detection rate, processing speed, jitter raw vs smoothed, settings

Following one person: MediaPipe's legacy Pose is a single-person tracker. It finds a person with
its detector, then follows the landmarks' region from frame to frame, and re-detects only when it
loses them; the re-detection may pick someone else. So: on the first detection an OpenCV HOG people
detector lists the people, and the target is the largest, with closeness to the centre as the tie
breaker; if that is not the person MediaPipe chose, Pose runs on a crop around the target. Every
later frame must stay near the target's last box; a jump to another place is refused and Pose is
re-run on a crop around the target; if that fails too, the frame is a gap. After one second
without the target, it is chosen again. Limits: HOG misses small, seated or partly hidden people,
and two people who overlap in the image can still be confused.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

if __package__ in (None, ""):  # `python pose_smoothing/extract.py`: the package is importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
from core.io import IMAGE_EXTENSIONS, InputError, iter_video_frames, list_files, read_image, video_info, write_json  # noqa: E402
from pose_smoothing.bvh import complete_frames, write_bvh  # noqa: E402
from pose_smoothing.data import NUM_LANDMARKS, LandmarkSequence, write_landmarks_json  # noqa: E402
from pose_smoothing.filters import FILTERS, smooth_sequence  # noqa: E402
from pose_smoothing.gaps import FILL_METHODS, fill_gaps  # noqa: E402
from pose_smoothing.simulate import jitter  # noqa: E402
from pose_smoothing.skeleton import NECK_BASE, ROOT, SPINE_BASE, VERTEX_INDEX, to_y_up, with_dummy_vertices  # noqa: E402
from pose_smoothing.writers import write_angles_csv  # noqa: E402

FILTER_CHOICES = ("one-euro", "savgol", "kalman", "neighbour-mean", "none")


# ----------------------------------------------------------------------------------------- frames
@dataclass
class FrameSource:
    path: Path
    fps: float
    size: tuple[int, int]
    frame_count: int
    frames: Iterator[tuple[int, float, np.ndarray | None]] = field(repr=False)


def open_frames(path: str | Path, folder_fps: float = 30.0) -> FrameSource:
    """A video file, or a folder of images (sorted by name, `folder_fps` frames per second).
    Undecodable images in a folder become gaps (None) with a warning."""
    path = Path(path)
    if path.is_dir():
        files = list_files(path, IMAGE_EXTENSIONS, recursive=False)
        first = next((read_image_or_none(f) for f in files[:1]), None)
        size = (first.shape[1], first.shape[0]) if first is not None else (0, 0)

        def folder_frames():
            for index, file in enumerate(files):
                yield index, index / folder_fps, read_image_or_none(file)

        return FrameSource(path, folder_fps, size, len(files), folder_frames())
    info = video_info(path)
    fps = info.fps if info.fps > 0 else folder_fps
    return FrameSource(path, fps, (info.width, info.height), info.frame_count, iter_video_frames(path))


def read_image_or_none(path: Path) -> np.ndarray | None:
    try:
        return read_image(path)
    except InputError as error:
        print(f"warning: {error}; kept as a gap", file=sys.stderr)
        return None


# ----------------------------------------------------------------------------------------- people
def landmark_box(image: np.ndarray, visibility: np.ndarray, threshold: float = 0.5) -> np.ndarray | None:
    """(x0, y0, x1, y1) normalised box of the visible landmarks."""
    keep = (visibility >= threshold) & np.isfinite(image[:, 0])
    if keep.sum() < 3:
        return None
    xy = image[keep, :2]
    return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()])


def choose_target(boxes: list[np.ndarray]) -> int:
    """Index of the person to follow: the largest box; boxes within 20% of the largest area are
    ranked by closeness of their centre to the image centre. Boxes are normalised (x0, y0, x1, y1)."""
    areas = np.array([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes])
    contenders = np.flatnonzero(areas >= 0.8 * areas.max())
    distance = [np.hypot((boxes[i][0] + boxes[i][2]) / 2 - 0.5, (boxes[i][1] + boxes[i][3]) / 2 - 0.5) for i in contenders]
    return int(contenders[int(np.argmin(distance))])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def grow_box(box: np.ndarray, factor: float) -> np.ndarray:
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * factor
    return np.concatenate([centre - half, centre + half])


def same_person(box: np.ndarray, target: np.ndarray) -> bool:
    """True when `box` is where the target could be one frame later (centre within half its size)."""
    size = max(target[2] - target[0], target[3] - target[1], 1e-6)
    shift = np.hypot((box[0] + box[2] - target[0] - target[2]) / 2, (box[1] + box[3] - target[1] - target[3]) / 2)
    return bool(shift < 0.5 * size)


class HogPeopleDetector:
    """OpenCV's HOG + linear SVM people detector (ships with OpenCV, no download)."""

    def __init__(self, width: int = 480, min_weight: float = 0.3):
        import cv2

        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.width, self.min_weight = width, min_weight

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        import cv2

        height, width = rgb.shape[:2]
        scale = min(1.0, self.width / width)
        gray = cv2.cvtColor(cv2.resize(rgb, None, fx=scale, fy=scale) if scale < 1 else rgb, cv2.COLOR_RGB2GRAY)
        boxes, weights = self.hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
        return [np.array([x / scale / width, y / scale / height, (x + w) / scale / width, (y + h) / scale / height])
                for (x, y, w, h), weight in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights))
                if weight >= self.min_weight]


@dataclass
class PoseResult:
    image: np.ndarray       # (33, 3)
    world: np.ndarray       # (33, 3)
    visibility: np.ndarray  # (33,)

    @property
    def box(self) -> np.ndarray | None:
        return landmark_box(self.image, self.visibility)


class PersonFollower:
    """MediaPipe Pose (model_complexity=1, the model that ships in the wheel) that follows one person."""

    def __init__(self, fps: float, detect_people: bool = True, people_detector=None):
        """`people_detector`: rgb -> list of normalised (x0, y0, x1, y1) boxes; default OpenCV's HOG."""
        import mediapipe as mp

        self._pose_cls = mp.solutions.pose.Pose
        self.tracker = self._pose_cls(static_image_mode=False, model_complexity=1, smooth_landmarks=False)
        self.crop_pose = None
        self.people = (people_detector or HogPeopleDetector()) if detect_people else None
        self.target: np.ndarray | None = None
        self.crop_mode = False
        self.missed, self.max_missed = 0, max(1, int(round(fps)))
        self.stats = {"frames_on_crop": 0, "jumps_refused": 0, "target_choices": 0}

    def close(self) -> None:
        self.tracker.close()
        if self.crop_pose is not None:
            self.crop_pose.close()

    @staticmethod
    def _result(landmarks, world_landmarks) -> PoseResult:
        image = np.array([[p.x, p.y, p.z] for p in landmarks.landmark])
        visibility = np.array([p.visibility for p in landmarks.landmark])
        world = np.array([[p.x, p.y, p.z] for p in world_landmarks.landmark])
        return PoseResult(image, world, visibility)

    def _on_crop(self, rgb: np.ndarray, box: np.ndarray) -> PoseResult | None:
        """Pose on a square crop around `box` grown 1.5x, mapped back to full-image coordinates."""
        if self.crop_pose is None:
            self.crop_pose = self._pose_cls(static_image_mode=True, model_complexity=1)
        height, width = rgb.shape[:2]
        cx, cy = (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height
        half = 0.75 * max((box[2] - box[0]) * width, (box[3] - box[1]) * height)
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(width, cx + half)), int(min(height, cy + half))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        found = self.crop_pose.process(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        if found.pose_landmarks is None:
            return None
        result = self._result(found.pose_landmarks, found.pose_world_landmarks)
        crop_width = x1 - x0
        result.image[:, 0] = (x0 + result.image[:, 0] * crop_width) / width
        result.image[:, 1] = (y0 + result.image[:, 1] * (y1 - y0)) / height
        result.image[:, 2] = result.image[:, 2] * crop_width / width
        self.stats["frames_on_crop"] += 1
        return result

    def _choose(self, rgb: np.ndarray, found: PoseResult | None) -> PoseResult | None:
        """First sight (or after losing the target): pick the largest / most central person.

        People are compared by their HOG boxes (loose, with a margin); MediaPipe's person is the HOG box
        that overlaps its landmarks most, or its landmark box grown by a HOG-like margin if HOG missed it."""
        boxes = self.people(rgb) if self.people is not None else []
        own = found.box if found is not None else None
        own_index = None
        if own is not None:
            overlaps = [box_iou(b, own) for b in boxes]
            if overlaps and max(overlaps) >= 0.3:
                own_index = int(np.argmax(overlaps))
            else:
                boxes.append(grow_box(own, 1.25))
                own_index = len(boxes) - 1
        if not boxes:
            return None
        self.stats["target_choices"] += 1
        chosen = choose_target(boxes)
        if chosen == own_index:
            self.crop_mode = False
            return found
        self.crop_mode = True
        return self._on_crop(rgb, boxes[chosen])

    def __call__(self, rgb: np.ndarray) -> PoseResult | None:
        processed = self.tracker.process(rgb)
        found = (self._result(processed.pose_landmarks, processed.pose_world_landmarks)
                 if processed.pose_landmarks is not None else None)
        if self.target is None:
            result = self._choose(rgb, found)
        elif not self.crop_mode and found is not None and found.box is not None and same_person(found.box, self.target):
            result = found
        else:
            if found is not None and found.box is not None and not self.crop_mode:
                self.stats["jumps_refused"] += 1
            result = self._on_crop(rgb, self.target)
            if result is not None and (result.box is None or not same_person(result.box, self.target)):
                result = None
            if found is not None and found.box is not None and same_person(found.box, self.target):
                result, self.crop_mode = found, False  # the tracker is back on the target
        if result is not None and result.box is not None:
            self.target, self.missed = result.box, 0
            return result
        self.missed += 1
        if self.missed > self.max_missed:
            self.target, self.crop_mode = None, False
        return None


# ----------------------------------------------------------------------------------------- pipeline
def extract_landmarks(path: str | Path, folder_fps: float = 30.0, progress: bool = True,
                      follow: bool = True) -> tuple[LandmarkSequence, dict]:
    """Run MediaPipe Pose over every frame; frames with no person are gaps. Returns the raw sequence and stats."""
    import cv2
    from tqdm import tqdm

    cv2.setNumThreads(2)
    source = open_frames(path, folder_fps)
    follower = PersonFollower(source.fps, detect_people=follow)
    images, worlds, visibilities, timestamps = [], [], [], []
    size = source.size
    started = time.perf_counter()
    pose_seconds = 0.0
    bar = tqdm(total=source.frame_count or None, desc=f"pose {source.path.name}", unit="frame", disable=not progress)
    try:
        for index, timestamp, rgb in source.frames:
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
    sequence = LandmarkSequence(image=np.array(images), world=np.array(worlds), visibility=np.array(visibilities),
                                timestamps=np.array(timestamps), fps=source.fps, image_size=size,
                                source=str(source.path))
    stats = {"frames": len(sequence), "pose_seconds": pose_seconds,
             "pose_fps": len(sequence) / pose_seconds if pose_seconds > 0 else 0.0, **follower.stats}
    if not sequence.detected.any():
        raise InputError(path, f"no person detected in any of the {len(sequence)} frames")
    return sequence, stats


def clean_sequence(raw: LandmarkSequence, method: str, max_gap: int, visibility_threshold: float,
                   fill: str | None = None) -> LandmarkSequence:
    """Gap filling then smoothing. `method` 'neighbour-mean' is the original script: neighbour-mean
    filling and no smoothing; otherwise `fill` (default linear) then the named filter."""
    if method == "neighbour-mean":
        fill, method = "neighbour-mean", "none"
    filled = fill_gaps(raw, method=fill or "linear", max_gap=max_gap, visibility_threshold=visibility_threshold)
    return smooth_sequence(filled, method)


def animation_sequence(raw: LandmarkSequence, smoothed: LandmarkSequence, method: str, max_gap: int,
                       fill: str | None) -> tuple[LandmarkSequence, float]:
    """The sequence for angles and BVH, which need every joint: a landmark that is a gap only because
    MediaPipe rated it not visible (legs out of frame, a hidden arm) takes MediaPipe's own estimate,
    filled and smoothed the same way. Returns it and the fraction of landmark values so replaced."""
    holes = np.isnan(smoothed.world)
    if not holes.any():
        return smoothed, 0.0
    estimate = clean_sequence(raw, method, max_gap, visibility_threshold=0.0, fill=fill)
    replaced = holes & np.isfinite(estimate.world)
    merged = smoothed.copy(image=np.where(np.isnan(smoothed.image), estimate.image, smoothed.image),
                           world=np.where(holes, estimate.world, smoothed.world))
    return merged, float(replaced[..., 0].mean())


def jitter_pair(raw: LandmarkSequence, smoothed: LandmarkSequence) -> tuple[float, float]:
    """Jitter of the raw and smoothed image x, y, on the landmarks finite in both."""
    raw_xy, smooth_xy = raw.image[..., :2], smoothed.image[..., :2]
    both = np.isfinite(raw_xy) & np.isfinite(smooth_xy)
    return jitter(np.where(both, raw_xy, np.nan)), jitter(np.where(both, smooth_xy, np.nan))


def skeleton_points(sequence: LandmarkSequence) -> np.ndarray:
    """Y-up world skeleton (T, 35, 3) in metres, with the hip centre moved as it moves in the image:
    MediaPipe's world landmarks are hip-centred, so the root translation is estimated from the image
    (pixels times metres per pixel, from the median torso length in both), with no depth motion."""
    points = with_dummy_vertices(to_y_up(sequence.world))
    width, height = sequence.image_size
    if width <= 0:
        return points
    image = with_dummy_vertices(sequence.image)[..., :2] * np.array([width, height])
    root_px = image[:, ROOT]
    torso_px = np.linalg.norm(image[:, VERTEX_INDEX[NECK_BASE]] - image[:, VERTEX_INDEX[SPINE_BASE]], axis=-1)
    torso_m = np.linalg.norm(points[:, VERTEX_INDEX[NECK_BASE]] - points[:, ROOT], axis=-1)
    ratio = torso_m / torso_px
    if not np.isfinite(ratio).any() or not np.isfinite(root_px).all(axis=1).any():
        return points
    metres_per_px = float(np.nanmedian(ratio))
    start = root_px[np.flatnonzero(np.isfinite(root_px).all(axis=1))[0]]
    shift = (root_px - start) * metres_per_px * np.array([1.0, -1.0])
    return points + np.concatenate([shift, np.zeros((len(points), 1))], axis=1)[:, None, :]


def write_outputs(out_dir: Path, raw: LandmarkSequence, smoothed: LandmarkSequence,
                  animation: LandmarkSequence) -> dict[str, Path]:
    skeleton = skeleton_points(animation)
    complete_frames(skeleton, str(out_dir / "skeleton.bvh"))  # fails before anything is written
    dummies = with_dummy_vertices(smoothed.image)
    write_bvh(out_dir / "skeleton.bvh", skeleton, frame_time=1.0 / smoothed.fps)
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
        follow: bool = True) -> dict:
    """The whole command; returns the summary that is also written to OUT_DIR/summary.json."""
    if method not in FILTER_CHOICES:
        raise ValueError(f"unknown filter {method!r}; choose one of {', '.join(FILTER_CHOICES)}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    raw, stats = extract_landmarks(video, folder_fps, progress, follow)
    notes = []
    if len(raw) == 1:
        notes.append("only one frame: nothing to fill or smooth, the pose is written as detected")
    smoothed = clean_sequence(raw, method, max_gap, visibility_threshold, fill)
    raw_jitter, smooth_jitter = jitter_pair(raw, smoothed)
    animation, estimated = animation_sequence(raw, smoothed, method, max_gap, fill)
    if estimated > 0:
        notes.append(f"{estimated:.1%} of the landmark values in angles.csv and skeleton.bvh are MediaPipe's estimates "
                     f"for landmarks it rated not visible (an animation needs every joint)")
    paths = write_outputs(out_dir, raw, smoothed, animation)
    seconds = time.perf_counter() - started
    summary = {
        "source": str(video), "frames": len(raw), "video_fps": raw.fps, "image_size": list(raw.image_size),
        "detected_frames": int(raw.detected.sum()), "detection_rate": raw.detection_rate,
        "frames_left_as_gaps_after_fill": int((~smoothed.detected).sum()),
        "filter": method, "fill": "neighbour-mean" if method == "neighbour-mean" else (fill or "linear"),
        "max_gap_frames": max_gap, "visibility_threshold": visibility_threshold,
        "seconds": seconds, "processing_fps": len(raw) / seconds, **stats,
        "jitter_raw": raw_jitter, "jitter_smoothed": smooth_jitter,
        "jitter_reduction": 1.0 - smooth_jitter / raw_jitter if raw_jitter and np.isfinite(raw_jitter) and raw_jitter > 0 else None,
        "animation_landmarks_estimated": estimated, "notes": notes, "outputs": {k: str(v) for k, v in paths.items()},
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_smoothing.extract",
        description="Extract MediaPipe Pose landmarks from a video (mp4, avi, webm, ...; any fps) or an image folder, "
                    "fill gaps, smooth, and write landmarks JSON, an angle CSV and a BVH animation.")
    parser.add_argument("video", help="video file, or a folder of images taken as consecutive frames")
    parser.add_argument("-o", "--out-dir", required=True, help="folder for the outputs (created if needed)")
    parser.add_argument("--filter", default="one-euro", choices=FILTER_CHOICES,
                        help="smoothing: one-euro (MediaPipe's parameters, causal), savgol (offline, centred), kalman "
                             "(constant velocity, causal), neighbour-mean (the original script: gaps get the mean of "
                             "their neighbours, no smoothing), none (linear gap filling only). Default: one-euro")
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
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run(args.video, args.out_dir, args.filter, args.fill, args.max_gap, args.visibility_threshold,
                      args.fps, progress=not args.quiet, follow=not args.no_follow)
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
    sys.exit(main())
