"""Pictures of an extraction: raw vs smoothed skeleton on the video, a 3-D skeleton animation, and one
landmark's trajectory raw vs smoothed.

    python -m pose_smoothing.render OUT_DIR [--landmark RIGHT_WRIST] [--gif-frames 120]

Reads OUT_DIR/summary.json, raw_landmarks.json and landmarks.json (written by pose_smoothing.extract)
and the source video named in the summary (or --video), and writes, atomically, into OUT_DIR:
  side_by_side.mp4   every frame: left the raw skeleton (red), right the smoothed one (green)
  side_by_side.gif   the same, smaller, at most --gif-frames frames
  skeleton_3d.gif    the smoothed world skeleton (metres, Y up) turning in 3-D
  trajectory.png     x and y of one landmark over time, raw vs smoothed, spans where it was not seen shaded
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401
from core.cli import run_main  # noqa: E402
from core.io import AtomicVideoWriter, InputError, atomic_path, save_figure  # noqa: E402
from pose_smoothing.data import LANDMARK_INDEX, LandmarkSequence, open_frames, read_landmarks_json  # noqa: E402
from pose_smoothing.gaps import gap_runs  # noqa: E402
from pose_smoothing.skeleton import BONES, skeleton_points, with_dummy_vertices  # noqa: E402

RAW_COLOUR, SMOOTH_COLOUR = (230, 40, 40), (40, 200, 60)


def draw_skeleton(rgb: np.ndarray, landmarks: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Draw the tree (33 landmarks + the two dummies) from normalised image coordinates (33, 3)."""
    import cv2

    out = rgb.copy()
    height, width = out.shape[:2]
    points = with_dummy_vertices(landmarks)[:, :2] * np.array([width, height])
    thickness = max(1, int(round(min(width, height) / 250)))
    for parent, child in BONES:
        a, b = points[parent], points[child]
        if np.isfinite(a).all() and np.isfinite(b).all():
            cv2.line(out, tuple(int(v) for v in a), tuple(int(v) for v in b), colour, thickness, cv2.LINE_AA)
    for point in points[np.isfinite(points).all(axis=1)]:
        cv2.circle(out, tuple(int(v) for v in point), thickness + 1, colour, -1, cv2.LINE_AA)
    return out


def label(rgb: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = rgb.copy()
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def frames_or_blank(video: Path | None, count: int, size: tuple[int, int]):
    """The source frames, or black frames of the recorded size when the source is gone."""
    if video is not None and video.exists():
        for _, _, rgb in open_frames(video).frames:
            yield rgb if rgb is not None else np.zeros((size[1], size[0], 3), np.uint8)
    else:
        for _ in range(count):
            yield np.zeros((max(size[1], 64), max(size[0], 64), 3), np.uint8)


def render_side_by_side(raw: LandmarkSequence, smoothed: LandmarkSequence, video: Path | None, out_dir: Path,
                        gif_frames: int = 120, gif_width: int = 480) -> tuple[Path, Path]:
    from PIL import Image

    gif_step = max(1, int(np.ceil(len(raw) / gif_frames)))
    gif_images = []
    writer = None
    try:
        for t, rgb in enumerate(frames_or_blank(video, len(raw), raw.image_size)):
            if t >= len(raw):
                break
            pair = np.concatenate([label(draw_skeleton(rgb, raw.image[t], RAW_COLOUR), "raw"),
                                   label(draw_skeleton(rgb, smoothed.image[t], SMOOTH_COLOUR), "smoothed")], axis=1)
            if writer is None:
                writer = AtomicVideoWriter(out_dir / "side_by_side.mp4", raw.fps, (pair.shape[1], pair.shape[0]))
            writer.write(pair)
            if t % gif_step == 0:
                image = Image.fromarray(pair)
                gif_images.append(image.resize((gif_width, int(gif_width * pair.shape[0] / pair.shape[1]))))
    except BaseException:
        if writer is not None:
            writer.close(keep=False)
        raise
    if writer is None:
        raise InputError(video or "<video>", "no frame to draw")
    writer.close()
    with atomic_path(out_dir / "side_by_side.gif") as tmp:
        gif_images[0].save(tmp, format="GIF", save_all=True, append_images=gif_images[1:],
                           duration=int(1000 * gif_step / raw.fps), loop=0)
    return out_dir / "side_by_side.mp4", out_dir / "side_by_side.gif"


def render_3d(smoothed: LandmarkSequence, target: Path, max_frames: int = 80) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    points = skeleton_points(smoothed)  # landmarks rated not visible are gaps here: their bones are not drawn
    frames = np.flatnonzero(np.isfinite(points).all(axis=2).sum(axis=1) >= 2)
    if frames.size == 0:
        raise InputError(target, "no frame with a skeleton to animate")
    frames = frames[:: max(1, int(np.ceil(len(frames) / max_frames)))]
    finite = points[frames].reshape(-1, 3)
    finite = finite[np.isfinite(finite).all(axis=1)]
    low, high = finite.min(0), finite.max(0)
    centre, half = (low + high) / 2, (high - low).max() / 2 + 0.05
    figure = plt.figure(figsize=(4, 4))
    axes = figure.add_subplot(projection="3d")

    def draw(i: int):
        axes.cla()
        p = points[frames[i]]
        for parent, child in BONES:  # plot x, z (depth) on the floor axes and y up
            axes.plot(*[[p[parent, k], p[child, k]] for k in (0, 2, 1)], color="tab:green", lw=2)
        axes.set_xlim(centre[0] - half, centre[0] + half)
        axes.set_ylim(centre[2] - half, centre[2] + half)
        axes.set_zlim(centre[1] - half, centre[1] + half)
        axes.set_xlabel("x (m)")
        axes.set_ylabel("z (m)")
        axes.set_zlabel("y (m)")
        axes.view_init(elev=10, azim=-90 + 60 * i / len(frames))
        axes.set_title(f"t = {smoothed.timestamps[frames[i]]:.2f} s")
        return []

    animation = FuncAnimation(figure, draw, frames=len(frames))
    step_seconds = (smoothed.timestamps[frames[1]] - smoothed.timestamps[frames[0]]) if len(frames) > 1 else 0.1
    with atomic_path(target) as tmp:
        animation.save(tmp, writer=PillowWriter(fps=max(1.0, 1.0 / step_seconds)))
    plt.close(figure)
    return target


def gap_spans(timestamps: np.ndarray, visible: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of every run of frames where `visible` (T,) is False, each frame covering the
    half intervals to its neighbours, so a one-frame gap is a visible span and two spans never touch."""
    times = np.asarray(timestamps, dtype=np.float64)
    if times.size == 0:
        return []
    step = float(np.median(np.diff(times))) if times.size > 1 else 1.0
    edges = np.concatenate([[times[0] - step / 2], (times[:-1] + times[1:]) / 2, [times[-1] + step / 2]])
    return [(float(edges[start]), float(edges[end])) for start, end in gap_runs(visible)]


def plot_trajectory(raw: LandmarkSequence, smoothed: LandmarkSequence, landmark: str, target: Path,
                    visibility_threshold: float = 0.5) -> Path:
    """x and y of one landmark over time. Frames where MediaPipe did not see it (nobody detected, or
    visibility under the threshold) are shaded "not visible"; across them the smoothed line is dotted
    where the gap was filled between two seen frames, and absent where nothing was seen on one side
    (the fill only holds the last value there), so no line claims motion that was not seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = LANDMARK_INDEX[landmark]
    width, height = raw.image_size if raw.image_size[0] > 0 else (1, 1)
    visible = np.isfinite(raw.image[:, index, 0]) & (raw.visibility[:, index] >= visibility_threshold)
    seen = np.flatnonzero(visible)
    between_seen = np.zeros(len(raw), dtype=bool)
    if seen.size:
        between_seen[seen[0]:seen[-1] + 1] = True
    # the dotted part joins the solid line: one seen frame on each side of a filled gap
    filled = ~visible & between_seen
    filled_with_ends = filled | np.concatenate([filled[1:], [False]]) | np.concatenate([[False], filled[:-1]])
    figure, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for axis, (name, scale) in enumerate((("x", width), ("y", height))):
        for number, (start, end) in enumerate(gap_spans(raw.timestamps, visible)):
            axes[axis].axvspan(start, end, color="0.85", lw=0, label="not visible" if number == 0 else None)
        values = smoothed.image[:, index, axis] * scale
        axes[axis].plot(raw.timestamps, np.where(visible, raw.image[:, index, axis], np.nan) * scale, ".", ms=3,
                        color="tab:red", label="raw")
        axes[axis].plot(smoothed.timestamps, np.where(visible, values, np.nan), "-", lw=1.5, color="tab:green",
                        label=f"smoothed ({smoothed.meta.get('filter', '')})")
        if filled.any():
            axes[axis].plot(smoothed.timestamps, np.where(filled_with_ends, values, np.nan), ":", lw=1.5,
                            color="tab:green", label="filled across a gap")
        axes[axis].set_ylabel(f"{name} (px)" if raw.image_size[0] > 0 else name)
    axes[0].legend(loc="best")
    axes[0].set_title(f"{landmark}: raw vs smoothed")
    axes[1].set_xlabel("time (s)")
    return save_figure(figure, target)


def render(out_dir: str | Path, video: str | Path | None = None, landmark: str = "RIGHT_WRIST",
           gif_frames: int = 120) -> dict[str, Path]:
    out_dir = Path(out_dir)
    summary_path = out_dir / "summary.json"
    if not summary_path.is_file():
        raise InputError(out_dir, "no summary.json: run `python -m pose_smoothing.extract VIDEO -o OUT_DIR` first")
    summary = json.loads(summary_path.read_text())
    if landmark not in LANDMARK_INDEX:
        raise ValueError(f"unknown landmark {landmark!r}; one of {', '.join(LANDMARK_INDEX)}")
    raw = read_landmarks_json(out_dir / "raw_landmarks.json")
    smoothed = read_landmarks_json(out_dir / "landmarks.json")
    smoothed.meta["filter"] = summary.get("filter", "")
    source = Path(video) if video else Path(summary["source"]) if summary.get("source") else None
    mp4, gif = render_side_by_side(raw, smoothed, source, out_dir, gif_frames)
    return {"side_by_side_mp4": mp4, "side_by_side_gif": gif,
            "skeleton_3d": render_3d(smoothed, out_dir / "skeleton_3d.gif"),
            "trajectory": plot_trajectory(raw, smoothed, landmark, out_dir / "trajectory.png",
                                          summary.get("visibility_threshold", 0.5))}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pose_smoothing.render",
                                     description="Draw an extraction: raw vs smoothed skeleton video and GIF, a 3-D "
                                                 "skeleton animation and a landmark trajectory plot.")
    parser.add_argument("out_dir", help="a folder written by pose_smoothing.extract (pictures are added to it)")
    parser.add_argument("--video", default=None,
                        help="the source video or image folder, when it is no longer where summary.json says")
    parser.add_argument("--landmark", default="RIGHT_WRIST", help="landmark for the trajectory plot (default RIGHT_WRIST)")
    parser.add_argument("--gif-frames", type=int, default=120, help="at most this many frames in the GIF (default 120)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        outputs = render(args.out_dir, args.video, args.landmark, args.gif_frames)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in outputs.values()))
    return 0


if __name__ == "__main__":
    run_main(main)
