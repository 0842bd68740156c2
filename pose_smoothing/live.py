"""Live body skeleton: camera, video file or folder of frames -> MediaPipe Pose in tracking mode ->
low-visibility landmarks as gaps -> a streaming filter (`filters.PoseSmoother`) -> the smoothed skeleton
drawn on the frame; in a window, or written to `--output` with a per-frame log.

    python -m pose_smoothing.live --source 0                                  # webcam, window (q quits)
    python -m pose_smoothing.live --source dance.avi --output skeleton.mp4    # headless: video + skeleton.csv
    python -m pose_smoothing.live --source 0 --filter fixed-lag --lag-frames 2

Filters (see the README's "Which filter"): `kalman` (default, no delay), `one-euro` (MediaPipe's own), or
`fixed-lag`, which smooths nearly as well as offline but answers `--lag-frames` frames late: the skeleton
drawn on a frame is then the one of that many frames before. `PoseStage` is the stage the root
`webcam_demo.py` composes.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
from core.cli import run_main  # noqa: E402
from core.live import LiveFrame, LiveStage, add_live_arguments, run_from_args  # noqa: E402
from pose_smoothing.data import NUM_LANDMARKS  # noqa: E402
from pose_smoothing.filters import DEFAULT_LAG_FRAMES, STREAMING_FILTERS, PoseSmoother  # noqa: E402

SKELETON_COLOUR = (40, 200, 255)


@dataclass
class PoseAnswer:
    person: bool                 # MediaPipe found the person on this frame
    image: np.ndarray | None     # (33, 3) smoothed, normalised image coordinates (NaN: not visible); None while a
    world: np.ndarray | None     # lagged filter fills up. (33, 3) metres, hip-centred
    visible: int                 # landmarks visible on this frame


class PoseStage(LiveStage):
    """MediaPipe Pose (tracking mode, `follow.PersonFollower`) and a streaming smoother, every frame. A frame
    with nobody goes to the filter as NaN (it resets), so the filter's frames stay in step with the stream."""

    name = "pose"
    concurrent = True  # the slowest stage: in the worker thread, beside hands and faces
    phase = 0          # light frames: the body on even frames with the hands, the last skeleton on odd ones

    def __init__(self, fps: float, method: str = "kalman", lag_frames: int = DEFAULT_LAG_FRAMES,
                 visibility_threshold: float = 0.5, follow_people: bool = False):
        from pose_smoothing.follow import PersonFollower

        if method not in STREAMING_FILTERS:
            raise ValueError(f"unknown live filter {method!r}; choose one of {', '.join(STREAMING_FILTERS)}")
        self.fps = fps or 30.0
        self.follower = PersonFollower(self.fps, detect_people=follow_people)
        self.method, self.lag_frames, self.visibility_threshold = method, lag_frames, visibility_threshold
        self.smoother: PoseSmoother | None = None  # made on the first frame, when the image size is known
        self._last: PoseAnswer | None = None

    def __call__(self, frame: LiveFrame) -> PoseAnswer:
        if self._last is not None and not frame.runs(self.phase):
            return self._last
        self._last = self._track(frame)
        return self._last

    def _track(self, frame: LiveFrame) -> PoseAnswer:
        if self.smoother is None:
            height, width = frame.rgb.shape[:2]
            self.smoother = PoseSmoother(self.method, self.fps, (width, height), self.lag_frames)
        found = self.follower(frame.rgb)
        gap = np.full((NUM_LANDMARKS, 3), np.nan)
        if found is None:
            image, world, visible = gap, gap, 0
        else:
            seen = found.visibility >= self.visibility_threshold
            image, world, visible = (np.where(seen[:, None], found.image, np.nan),
                                     np.where(seen[:, None], found.world, np.nan), int(seen.sum()))
        smoothed = self.smoother(frame.seconds, image, world)
        image_out, world_out = smoothed if smoothed is not None else (None, None)
        return PoseAnswer(found is not None, image_out, world_out, visible)

    def draw(self, canvas: np.ndarray, answer: PoseAnswer) -> None:
        from pose_smoothing.render import draw_skeleton

        if answer.image is not None and np.isfinite(answer.image).any():
            canvas[:] = draw_skeleton(canvas, answer.image, SKELETON_COLOUR)

    def summary(self, answer: PoseAnswer) -> str:
        if not answer.person:
            return "pose: nobody"
        lag = f", {self.lag_frames} frames late" if self.method == "fixed-lag" else ""
        return f"pose: {answer.visible}/{NUM_LANDMARKS} landmarks ({self.method}{lag})"

    def row(self, answer: PoseAnswer) -> dict:
        return {"pose_person": int(answer.person), "pose_visible": answer.visible}

    def close(self) -> None:
        self.follower.close()


def add_pose_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pose (MediaPipe Pose + streaming smoother)")
    group.add_argument("--filter", choices=STREAMING_FILTERS, default="kalman",
                       help="kalman (default: no delay), one-euro (MediaPipe's), fixed-lag (--lag-frames late), savgol")
    group.add_argument("--lag-frames", type=int, default=DEFAULT_LAG_FRAMES,
                       help="fixed-lag: frames of delay (default %(default)s)")
    group.add_argument("--visibility-threshold", type=float, default=0.5,
                       help="landmarks MediaPipe rates less visible than this are gaps (default %(default)s)")
    group.add_argument("--follow-people", action="store_true",
                       help="pick the largest person with OpenCV's HOG people detector and refuse jumps to others "
                            "(follow.PersonFollower; slower on first sight)")


def pose_stage_from_args(args: argparse.Namespace, fps: float) -> PoseStage:
    return PoseStage(fps, args.filter, args.lag_frames, args.visibility_threshold, args.follow_people)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_live_arguments(parser)
    add_pose_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_from_args(args, lambda source: [pose_stage_from_args(args, source.fps)], title="pose")
    return 0


if __name__ == "__main__":
    run_main(main)
