"""`make demo` for emotion: a tiny competition-layout folder from generated faces and package photos ->
brief training -> submission.csv (checked) -> webcam demo on a generated video, written to a file.
Everything goes to runs/demo/emotion/; about a minute on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401

from core.cli import expected_skips, run_main  # noqa: E402
from core.env import REPO_ROOT  # noqa: E402
from core.results import SMOKE_TEST_NOTE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "demo" / "emotion", help="output folder (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs on the generated faces")
    args = parser.parse_args(argv)

    from emotion import predict, train, webcam_demo
    from emotion.synthetic import package_photos, write_competition_folder, write_face_video

    started = time.perf_counter()
    if args.out.exists():
        shutil.rmtree(args.out)
    photos = package_photos()
    data = write_competition_folder(args.out / "competition", per_class=12, n_test=18, size=128, extra_test_photos=photos)
    (data / "test_kaggle" / "README.txt").write_text("a non-image file: skipped, with a warning\n")
    (data / "test_kaggle" / f"{18 + len(photos)}.jpg").write_bytes(b"truncated, unreadable image")
    print(f"1/4 competition layout with generated faces and {len(photos)} package photos: {data}")

    metrics = train.main(["--data", "skillbox", "--data-root", str(data), "--detector", "mediapipe", "--architecture", "compact_cnn",
                          "--input-size", "40", "--max-epochs", str(args.epochs), "--batch-size", "16", "--learning-rate", "3e-3",
                          "--scheduler", "none", "--val-fraction", "0.25", "--augment", "light", "--log-every-n-steps", "1",
                          "--no-progress-bar", "--accelerator", "cpu", "--runs-root", str(args.out / "runs"), "--run-name", "tiny"])
    weights = metrics["best_checkpoint"]
    print(f"2/4 trained a compact CNN: validation accuracy {metrics['val_accuracy']:.2f} (chance 0.11): {weights}")

    submission = args.out / "submission.csv"
    with expected_skips():  # the broken image and the README are there on purpose
        predict.main(["--weights", weights, "--test-dir", str(data / "test_kaggle"), "--output", str(submission),
                      "--probabilities", str(args.out / "probabilities.csv")])
    problems = predict.check_submission(submission, test_dir=data / "test_kaggle")
    print(f"3/4 {submission}: {'valid' if not problems else problems}")

    video = write_face_video(args.out / "webcam_input.mp4", frames=45, photo=photos[0] if photos else None)
    webcam_demo.main(["--source", str(video), "--weights", weights, "--output", str(args.out / "webcam_annotated.mp4")])
    print(f"4/4 webcam demo on a generated video: {args.out / 'webcam_annotated.mp4'}")
    print(f"emotion demo done in {time.perf_counter() - started:.0f} s; outputs under {args.out}")
    print(SMOKE_TEST_NOTE.format(readme="emotion/README.md"))
    return 0 if not problems else 1


if __name__ == "__main__":
    run_main(main)
