"""The whole chain on a generated video, offline, in well under a minute: `make demo`.

The video is a real photo of a person moved, rotated and scaled a little over time, with a few blank
frames in the middle (no person: gaps to fill). The photo is scikit-image's astronaut (upper body:
MediaPipe finds her in every non-blank frame and rates the legs not visible); without scikit-image,
the man on the left of ultralytics' bus.jpg (full body). Outputs: runs/demo/pose_smoothing/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401
from core.cli import OutputFolder, run_main  # noqa: E402
from core.env import REPO_ROOT  # noqa: E402
from core.io import AtomicVideoWriter, read_image  # noqa: E402

DEMO_DIR = REPO_ROOT / "runs" / "demo" / "pose_smoothing"


def person_photo() -> tuple[np.ndarray, str]:
    """An RGB photo with one person filling most of it, from a package (no download)."""
    try:
        from skimage import data as skimage_data

        return skimage_data.astronaut(), "scikit-image astronaut"
    except ImportError:
        import ultralytics

        photo = read_image(Path(ultralytics.__file__).parent / "assets" / "bus.jpg")
        # the man on the left of the bus photo, head to feet (found with MediaPipe on the full photo)
        return photo[360:960, 0:300], "ultralytics bus.jpg (left person)"


def make_demo_video(target: Path, frames: int = 75, fps: float = 25.0, size: int = 360,
                    blank: tuple[int, int] = (35, 39)) -> tuple[Path, str]:
    """A `frames`-long video: the photo drifting in a circle, swaying +-8 degrees and breathing in
    scale; frames blank[0]..blank[1]-1 are grey (nobody there)."""
    import cv2

    photo, name = person_photo()
    scale = size / max(photo.shape[:2]) * 0.9
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 90, np.uint8)
    y0, x0 = (size - photo.shape[0]) // 2, (size - photo.shape[1]) // 2
    canvas[y0:y0 + photo.shape[0], x0:x0 + photo.shape[1]] = photo
    with AtomicVideoWriter(target, fps, (size, size)) as writer:
        for i in range(frames):
            phase = 2 * np.pi * i / frames
            matrix = cv2.getRotationMatrix2D((size / 2, size / 2), 8 * np.sin(phase), 1 + 0.05 * np.sin(2 * phase))
            matrix[:, 2] += 0.04 * size * np.array([np.cos(phase), np.sin(phase)])
            frame = cv2.warpAffine(canvas, matrix, (size, size), borderValue=(90, 90, 90))
            if blank[0] <= i < blank[1]:
                frame = np.full_like(frame, 90)
            writer.write(frame)
    return target, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_smoothing.demo",
                                     description="Generate a short video with a person in it, then extract, smooth "
                                                 "and render it; outputs under runs/demo/pose_smoothing/.")
    parser.add_argument("--out-dir", type=OutputFolder(), default=str(DEMO_DIR), help=f"output folder (default {DEMO_DIR})")
    parser.add_argument("--filter", default="one-euro", help="filter for the extraction (default one-euro)")
    args = parser.parse_args(argv)
    from pose_smoothing.extract import run
    from pose_smoothing.render import render

    out_dir = Path(args.out_dir)
    video, photo = make_demo_video(out_dir / "demo.mp4")
    print(f"demo video: {video} (from the {photo} photo)")
    summary = run(video, out_dir / "extract", args.filter, progress=False)
    print(f"{summary['frames']} frames, person in {summary['detection_rate']:.0%} of them "
          f"(the grey frames are gaps), {summary['processing_fps']:.1f} frames/s; "
          f"jitter {summary['jitter_raw']:.5f} -> {summary['jitter_smoothed']:.5f} ({args.filter})")
    for note in summary["notes"]:
        print(f"note: {note}")
    if summary["detection_rate"] < 0.5:
        print("error: MediaPipe found the person in fewer than half of the frames", file=sys.stderr)
        return 1
    outputs = render(out_dir / "extract", video)
    print("outputs: " + ", ".join(str(p) for p in [*summary["outputs"].values(), *outputs.values()]))
    return 0


if __name__ == "__main__":
    run_main(main)
