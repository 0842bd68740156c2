"""Test folder -> `submission.csv` in the Skillbox competition format (header `image_path,emotion`, one
row per test image, bare file names, natural order or the sample submission's order), written atomically.

    python -m emotion.predict --test-dir test_kaggle --output submission.csv
    python -m emotion.predict ... --sample-submission sample_submission.csv --probabilities probs.csv
    python -m emotion.predict --check submission.csv --test-dir test_kaggle     # validate a submission

Bad inputs never cost a row: an unreadable image gets the most frequent predicted class and the flag
`unreadable: <reason>`; non-image files are skipped (listed on stderr). An image without a face (MediaPipe's
short- and full-range models, tiles for small faces; `emotion.faces`) is answered as `--no-face` says: `whole`
classifies the whole picture (flag `no_face: whole picture`), `skip` gives it the most frequent class of the
rest (flag `no_face: skipped`); either way the row stays and the count is printed. The probabilities file
says per image: face found (box, detector, score) or not, and what was answered.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401

import numpy as np  # noqa: E402

from core.cli import InputArgument, ModelArgument, OutputFile, run_main, skip  # noqa: E402
from core.io import InputError, atomic_open  # noqa: E402
from core.onnx import BACKENDS  # noqa: E402
from core.weights import released  # noqa: E402
from emotion.data import CLASSES, SUBMISSION_HEADER, list_test_images, load_images, read_submission  # noqa: E402


def write_submission_csv(target: str | Path, names: list[str], labels: list[str]) -> Path:
    """The competition CSV: header image_path,emotion; one row per name, in the given order."""
    if len(names) != len(labels):
        raise ValueError(f"{len(names)} names but {len(labels)} labels")
    with atomic_open(target) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SUBMISSION_HEADER)
        writer.writerows(zip(names, labels))
    return Path(target)


def write_probabilities_csv(target: str | Path, names: list[str], probabilities: np.ndarray, va: np.ndarray,
                            flags: list[str], labels=CLASSES, boxes: list | None = None) -> Path:
    """Per image: answer, probabilities, VA, flag, and the face it came from (face 1: box, detector and score;
    face 0: no face, the flag says what was answered)."""
    boxes = boxes if boxes is not None else [None] * len(names)
    with atomic_open(target) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_path", "emotion", *labels, "valence", "arousal", "flag", "face", "x", "y", "w", "h",
                         "detector", "score"])
        for name, p, coords, flag, box in zip(names, probabilities, va, flags, boxes):
            face = [1, box.x, box.y, box.w, box.h, box.detector, f"{box.score:.3f}"] if box is not None else [0, "", "", "", "", "", ""]
            writer.writerow([name, labels[int(p.argmax())], *(f"{v:.5f}" for v in p), f"{coords[0]:.4f}", f"{coords[1]:.4f}",
                             flag, *face])
    return Path(target)


def check_submission(path: str | Path, test_dir: str | Path | None = None, sample: str | Path | None = None) -> list[str]:
    """Problems with a submission (empty list = valid): header, labels, duplicates, rows missing for test images."""
    try:
        submission = read_submission(path)
    except InputError as error:
        return [str(error)]
    problems = []
    expected: list[str] = []
    if sample is not None:
        expected = read_submission(sample, check_labels=False)["image_path"]
    elif test_dir is not None:
        expected, _ = list_test_images(test_dir)
    missing = sorted(set(expected) - set(submission["image_path"]))
    extra = sorted(set(submission["image_path"]) - set(expected)) if expected else []
    if missing:
        problems.append(f"{path}: {len(missing)} test images have no row, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{path}: {len(extra)} rows name no test image, e.g. {extra[:3]}")
    return problems


def predict_folder(recognizer, test_dir: str | Path, sample_submission: str | Path | None = None,
                   batch_size: int = 256, no_face: str = "whole") -> dict:
    """{'names', 'labels', 'probabilities', 'va', 'flags', 'boxes', 'skipped'} for every test image.
    `no_face`: whole (classify the whole picture) or skip (the most frequent answer of the rest), flagged."""
    test_dir = Path(test_dir)
    names, skipped = list_test_images(test_dir, sample_submission)
    detector = recognizer.detector if recognizer.detector.backend != "none" else None
    boxes: list = []

    def cropper(rgb):
        face, box = detector.crop_box(rgb)
        boxes.append(box)
        return face, box is not None

    faces, flags = load_images([test_dir / name for name in names], recognizer.input_size,
                               face_cropper=cropper if detector is not None else None,
                               on_error=lambda error: skip(error.path, f"{error.reason} (its row gets the most frequent "
                                                                       "answer, flagged unreadable)"))
    # load_images calls the cropper for readable images only: put the boxes back in the rows' order
    found = iter(boxes)
    boxes = [None if f.startswith("unreadable") or detector is None else next(found) for f in flags]
    flags = [f"no_face: {'whole picture' if no_face == 'whole' else 'skipped'}" if f == "no_face" else f for f in flags]
    readable = np.array([not f.startswith("unreadable") and f != "no_face: skipped" for f in flags])
    probabilities = np.zeros((len(names), len(recognizer.labels)), dtype=np.float32)
    va = np.zeros((len(names), 2), dtype=np.float32)
    for start in range(0, len(names), batch_size):
        index = np.nonzero(readable[start:start + batch_size])[0] + start
        if len(index):
            probabilities[index], va[index] = recognizer.predict_faces(faces[index])
    if readable.any() and not readable.all():
        # An unreadable image gets the most frequent prediction of the rest: the best guess without pixels.
        fallback = np.bincount(probabilities[readable].argmax(axis=1), minlength=len(recognizer.labels)).argmax()
        probabilities[~readable, fallback] = 1.0
    elif not readable.any():
        raise InputError(test_dir, f"none of the {len(names)} test images could be read (listed above)")
    labels = [recognizer.labels[i] for i in probabilities.argmax(axis=1)]
    return {"names": names, "labels": labels, "probabilities": probabilities, "va": va, "flags": flags, "boxes": boxes,
            "skipped": skipped}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=ModelArgument("emotion"),
                        help="EmotionModule checkpoint (.ckpt) or exported .onnx (default: the released recognizer, "
                             "weights/emotion/emotion.onnx, written by `make weights`)")
    parser.add_argument("--test-dir", type=InputArgument("image_folder"), help="folder of test images (test_kaggle/)")
    parser.add_argument("--sample-submission", type=Path, default=None,
                        help="sample_submission.csv: its rows fix the image names and order")
    parser.add_argument("--output", type=OutputFile(), default="submission.csv", help="submission CSV (default %(default)s)")
    parser.add_argument("--probabilities", type=OutputFile(), default=None,
                        help="also write per-class probabilities, valence, arousal and flags to this CSV")
    parser.add_argument("--detector", choices=("mediapipe", "haar", "none"), default="mediapipe",
                        help="face detector: mediapipe (short- and full-range models merged, tiles for small faces), "
                             "haar (OpenCV's cascade, each box verified by MediaPipe), none (already-cropped faces: "
                             "whole images are classified)")
    parser.add_argument("--no-face", choices=("whole", "skip"), default="whole",
                        help="an image without a face: classify the whole picture, or skip it (its row gets the most "
                             "frequent answer); flagged either way (default %(default)s)")
    parser.add_argument("--min-face", type=int, default=32,
                        help="smallest face side (px) searched for with tiles; 0: whole-picture passes only, faster "
                             "(default %(default)s)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="inference engine")
    parser.add_argument("--no-tta", dest="tta", action="store_false", help="no horizontal-flip test-time augmentation")
    parser.add_argument("--batch-size", type=int, default=256, help="faces per inference batch")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for inference")
    parser.add_argument("--check", type=Path, default=None,
                        help="only validate this submission CSV (against --test-dir or --sample-submission) and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check is not None:
        problems = check_submission(args.check, args.test_dir, args.sample_submission)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{args.check}: {'INVALID' if problems else 'valid'}")
        return 1 if problems else 0
    if args.test_dir is None:
        raise ValueError("--test-dir is required (or --check FILE)")
    from emotion.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer(args.weights or released("emotion", "recognizer"), detector=args.detector,
                                   backend=args.backend, threads=args.threads, tta=args.tta)
    # the largest face is the answer: tiles (about 1 s per 640x480 picture) only where the whole picture shows none
    recognizer.detector.min_face, recognizer.detector.tiles_if_none = args.min_face, True
    result = predict_folder(recognizer, args.test_dir, args.sample_submission, args.batch_size, args.no_face)
    for name in result["skipped"]:
        skip(args.test_dir / name, "not an image file (no row)")
    write_submission_csv(args.output, result["names"], result["labels"])
    if args.probabilities is not None:
        write_probabilities_csv(args.probabilities, result["names"], result["probabilities"], result["va"], result["flags"],
                                recognizer.labels, result["boxes"])
    no_face = [name for name, flag in zip(result["names"], result["flags"]) if flag.startswith("no_face")]
    if no_face:
        print(f"warning: {len(no_face)} of {len(result['names'])} images have no face (e.g. {', '.join(no_face[:3])}): "
              f"{'classified as whole pictures' if args.no_face == 'whole' else 'answered with the most frequent class'} "
              f"(--no-face {args.no_face}); {'flagged in ' + str(args.probabilities) if args.probabilities else 'pass --probabilities FILE for the list'}",
              file=sys.stderr)
    counts = {flag.split(":")[0]: sum(f.split(":")[0] == flag.split(":")[0] for f in result["flags"]) for flag in result["flags"] if flag}
    print(f"wrote {args.output} ({len(result['names'])} rows, backend {recognizer.backend}); flagged: {counts or 'none'}")
    recognizer.close()
    return 0


if __name__ == "__main__":
    run_main(main)
