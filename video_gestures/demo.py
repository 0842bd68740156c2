"""End-to-end demo on generated dynamic gestures (hand photos moved in time), a few minutes on 2 CPU cores.

    python -m video_gestures.demo          # what `make demo` runs → runs/demo/video_gestures/

1. Generate swipe left/right clips from the package's hand photos (the gesture_detection set when present,
   else a generated hand-like blob) in the original layout: `frames/<class>/<clip>_frame_<n>.jpg`.
2. Train: MobileNetV2 embeddings (whole/left/right) cached in HDF5 → CNNBiLSTMWithAttention.
3. Predict: held-back clips written as MP4 files → predictions.csv; a long video of several gestures in a
   row → sliding-window timeline.csv.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import core  # noqa: F401  (offline environment first)
import numpy as np

from core.cli import run_main
from core.env import REPO_ROOT
from core.io import AtomicVideoWriter
from core.results import SMOKE_TEST_NOTE
from video_gestures import predict, train
from video_gestures.bench import HANDS_CSV
from video_gestures.motion import generate_motion_set, load_hand_crops, write_motion_folders

OUT = REPO_ROOT / "runs" / "demo" / "video_gestures"


def demo_hands(count: int = 12) -> list[np.ndarray]:
    if HANDS_CSV.is_file():
        return load_hand_crops(HANDS_CSV, limit=count)
    import cv2  # no shared data: a skin-coloured hand-like blob with fingers, enough for a motion demo

    hands = []
    for i in range(count):
        hand = np.zeros((40, 40, 3), np.uint8)
        hand[:] = (40 + 10 * i, 60, 90)
        cv2.ellipse(hand, (20, 26), (10, 12), 0, 0, 360, (225, 180, 150), -1)
        for k in range(4):
            cv2.line(hand, (12 + 5 * k, 20), (10 + 6 * k, 4 + 2 * (k % 2)), (225, 180, 150), 3)
        hands.append(hand)
    return hands


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default %(default)s)")
    parser.add_argument("--clips-per-class", type=int, default=16, help="generated clips per class")
    parser.add_argument("--max-epochs", type=int, default=8, help="training epochs (default %(default)s)")
    args = parser.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    motions = ("swipe_left", "swipe_right")
    hands = demo_hands()
    train_set = generate_motion_set(hands, args.clips_per_class, num_frames=8, size=64, seed=0, motions=motions)
    frames = write_motion_folders(train_set, args.out / "frames")
    print(f"generated {len(train_set.clips)} clips in {frames}")

    result = train.main(["--source", "clips", "--data", str(frames), "--cache", str(args.out / "embeddings.h5"),
                         "--num-frames", "8", "--image-size", "48", "--runs-root", str(args.out / "runs"),
                         "--run-name", "motion", "--max-epochs", str(args.max_epochs), "--batch-size", "8",
                         "--hidden", "32", "--centre-time", "--standardize", "--threads", "1", "--no-progress-bar"])

    fresh = generate_motion_set(hands, 2, num_frames=8, size=64, seed=1, motions=motions)
    videos = []
    for i, (clip, target) in enumerate(zip(fresh.clips, fresh.targets)):
        videos.append(args.out / "videos" / f"{i}_{fresh.labels[target]}.mp4")
        with AtomicVideoWriter(videos[-1], fps=8, size=(64, 64)) as writer:
            for frame in clip:
                writer.write(frame)
    predict.main(["--checkpoint", str(result["best_checkpoint"]), *map(str, videos), "-o", str(args.out / "predictions.csv")])
    with AtomicVideoWriter(args.out / "videos" / "long.mp4", fps=8, size=(64, 64)) as writer:
        for clip in fresh.clips:
            for frame in clip:
                writer.write(frame)
    predict.main(["--checkpoint", str(result["best_checkpoint"]), "--live", "--stride", "4",
                  str(args.out / "videos" / "long.mp4"), "-o", str(args.out / "timeline.csv")])
    print(f"demo outputs in {args.out}: frames/, embeddings.h5, runs/video_gestures/motion/ (attention.png, confusion.png), "
          "predictions.csv, timeline.csv")
    print(SMOKE_TEST_NOTE.format(readme="video_gestures/README.md"))
    return args.out


if __name__ == "__main__":
    run_main(main)
