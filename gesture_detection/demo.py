"""`make demo` for gesture_detection: no real data needed, finishes in well under 3 minutes.

1. Generates hand landmarks for the six MachinesCanSee gestures (`synthetic.py`) and trains the
   landmark classifier on them (seconds).
2. Collects photos that ship inside installed packages (ultralytics' zidane.jpg and bus.jpg,
   scikit-image's astronaut), a grayscale and an RGBA copy, a 10-frame video, and two bad files
   (a tiny image and a corrupt JPEG) to show how bad input is reported.
3. Runs `predict.py` on them: predictions.csv, the MachinesCanSee answers.csv, annotated images and
   an annotated video, all under runs/demo/gesture_detection/.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

import core  # noqa: F401  (offline environment first)
from core.cli import expected_skips, run_main
from core.env import REPO_ROOT
from core.io import AtomicVideoWriter, write_image

from gesture_detection import predict
from gesture_detection.model import LandmarkClassifier
from gesture_detection.synthetic import GESTURES, ORIENTED_GESTURES, synthetic_detections

DEMO_DIR = REPO_ROOT / "runs" / "demo" / "gesture_detection"


def package_photos() -> dict[str, np.ndarray]:
    """Real photos of people that ship inside installed packages."""
    import ultralytics
    from skimage import data as skimage_data

    from gesture_detection.data import load_image

    assets = Path(ultralytics.__file__).parent / "assets"
    return {"zidane": load_image(assets / "zidane.jpg"), "bus": load_image(assets / "bus.jpg"),
            "astronaut": skimage_data.astronaut()}


def make_inputs(folder: Path) -> Path:
    from PIL import Image

    images = folder / "images"
    if images.exists():
        shutil.rmtree(images)
    photos = package_photos()
    for name, rgb in photos.items():
        write_image(images / f"{name}.jpg", rgb)
    Image.fromarray(photos["zidane"]).convert("L").save(images / "zidane_gray.png")
    Image.fromarray(photos["astronaut"]).convert("RGBA").save(images / "astronaut_rgba.png")
    Image.fromarray(photos["bus"][:10, :10]).save(images / "bad_tiny.png")
    (images / "bad_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    zidane = photos["zidane"]
    with AtomicVideoWriter(images / "zidane_pan.mp4", fps=5, size=(640, 360)) as video:
        for shift in range(0, 200, 20):  # a slow pan across the photo
            video.write(np.ascontiguousarray(zidane[:, shift:shift + 1000]))
    return images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEMO_DIR, help="output folder (default %(default)s)")
    parser.add_argument("--hands-per-gesture", type=int, default=150, help="generated training hands per gesture")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    hands, labels = synthetic_detections(args.hands_per_gesture, seed=0)
    validation, validation_labels = synthetic_detections(20, seed=2)
    classifier = LandmarkClassifier(list(GESTURES), oriented=bool(ORIENTED_GESTURES))
    classifier.fit(hands, labels, validation, validation_labels)
    model_path = classifier.save(args.out / "landmark.joblib")
    test, test_labels = synthetic_detections(30, seed=1)
    accuracy = np.mean(np.array(classifier.labels)[classifier.probabilities(classifier.hand_features(test)).argmax(axis=1)]
                       == np.array(test_labels))
    print(f"landmark classifier trained on {len(hands)} generated hands; accuracy on {len(test)} new ones: {accuracy:.3f}")

    images = make_inputs(args.out)
    common = [str(images), "--landmark-model", str(model_path), "--threshold", "0.4"]
    with expected_skips():  # the two bad files are there on purpose
        predict.main([*common, "--output", str(args.out / "predictions.csv"), "--annotate-dir", str(args.out / "annotated")])
        predict.main([*common, "--format", "mcs", "--output", str(args.out / "answers.csv")])
    print((args.out / "predictions.csv").read_text())
    print(f"demo outputs: {args.out} (predictions.csv, answers.csv, predictions_errors.csv, annotated/)")
    return 0


if __name__ == "__main__":
    run_main(main)
