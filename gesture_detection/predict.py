"""Predict gestures for an image, a folder of images or a video: a CSV `path,gesture,probability`
(or, with `--format mcs`, the MachinesCanSee answers.csv with a probability per class and frame_path),
and optionally annotated images (or an annotated video) with the boxes and labels drawn.

    python -m gesture_detection.predict photos/ --output runs/predictions.csv --annotate-dir runs/annotated  # released model
    python -m gesture_detection.predict photos/ --landmark-model runs/gesture_detection/lm_linto/landmark.joblib
    python -m gesture_detection.predict clip.mp4 --mode combined --landmark-model L.joblib \\
        --crop-model runs/gesture_detection/crop_linto/best.ckpt --yolo runs/gesture_detection/yolo_ft/yolo/weights/last.pt
    python -m gesture_detection.predict photos/ --mode fingers --finger-classes 0=fist 1=one 2=two 5=palm   # no model

A video gives one row per frame, its path written as `<video>#<frame index>`. An unreadable image or
video is reported, left out of the CSV and listed with the reason in `<output>_errors.csv`; the
outputs appear only when complete.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.cli import InputArgument, ModelArgument, OutputFile, OutputFolder, input_files, run_main, skip
from core.io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, AtomicVideoWriter, InputError, atomic_open, iter_video_frames, \
    video_info, write_image
from core.weights import released

from gesture_detection.data import FINGER_COUNT_CLASSES, load_image
from gesture_detection.pipeline import MODES, MCS_CLASSES, GesturePipeline, check_mcs_labels, draw, mcs_row


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=InputArgument("image"), help="images, folders of images (searched recursively) or videos")
    parser.add_argument("--mode", choices=MODES, default="landmark",
                        help="landmark, crop_cnn, combined (landmarks where MediaPipe finds a hand, else the crop CNN), "
                             "or fingers (extended fingers counted, no model; see --finger-classes)")
    parser.add_argument("--finger-classes", nargs="+", default=["hands_dataset"],
                        metavar="COUNT=NAME",
                        help="fingers mode: the class for each finger count, e.g. 0=yes 1=handup 2=vectory 5=hello, "
                             "or a real set's name (hands_dataset, linto); default: hands_dataset's 0-hand ... 5-hand")
    parser.add_argument("--landmark-model", type=ModelArgument("gesture_detection", ("joblib",)), default=None,
                        help="landmark.joblib from train.py --classifier landmark (default: the released LinTO model, "
                             "weights/gesture_detection/landmark_linto.joblib; landmark_hands_dataset.joblib beside it "
                             "counts fingers 0-5)")
    parser.add_argument("--crop-model", type=ModelArgument("gesture_detection"), default=None, help="best.ckpt from train.py --classifier crop")
    parser.add_argument("--yolo", type=ModelArgument("gesture_detection"), default=None, help="YOLO weights from train_detector.py (fallback detector)")
    parser.add_argument("--yolo-image-size", type=int, default=256, help="YOLO inference size (default %(default)s)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="below this probability of the answering hand's class the answer is no_gesture "
                             "(default: the landmark classifier's own, chosen on held-out recording sessions "
                             "when it was trained; 0.5 for the other paths and older models)")
    parser.add_argument("--keep", choices=("all", "top"), default="all", help="classify all hand boxes or only the top one")
    parser.add_argument("--crop-expand", type=float, default=1.3, help="box expansion before the CNN crop (default %(default)s)")
    parser.add_argument("--second-look", action="store_true",
                        help="combined mode: run MediaPipe again inside each enlarged YOLO crop before the crop CNN")
    parser.add_argument("--min-hand-confidence", type=float, default=0.5, help="MediaPipe detection confidence")
    parser.add_argument("--no-rescue", dest="rescue", action="store_false",
                        help="MediaPipe once only; by default, where it finds no hand it looks again at confidence "
                             "0.1, then on the image with a 25%% border, then on enlarged tiles (detect.RescuedHands)")
    parser.add_argument("--format", choices=("csv", "mcs"), default="csv",
                        help="csv: path,gesture,probability; mcs: no_gesture,stop,victory,mute,ok,like,dislike,frame_path")
    parser.add_argument("--output", type=OutputFile(), default="predictions.csv", help="CSV to write (default %(default)s)")
    parser.add_argument("--annotate-dir", type=OutputFolder(), default=None, help="write annotated images / videos here")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the crop CNN (default %(default)s)")
    return parser.parse_args(argv)


def finger_classes(spec: list[str]) -> dict[int, str]:
    """--finger-classes: a real set's name, or COUNT=NAME pairs."""
    if len(spec) == 1 and spec[0] in FINGER_COUNT_CLASSES:
        return FINGER_COUNT_CLASSES[spec[0]]
    classes = {}
    for item in spec:
        count, _, name = item.partition("=")
        if not count.isdigit() or not name:
            raise ValueError(f"--finger-classes: {item!r} is not COUNT=NAME (e.g. 0=yes) or a real set's name")
        classes[int(count)] = name
    return classes


def build_pipeline(args: argparse.Namespace) -> GesturePipeline:
    from gesture_detection.detect import MediaPipeHands, RescuedHands, YoloHands
    from gesture_detection.model import FingerCounter, LandmarkClassifier

    if args.mode == "fingers":
        landmark = FingerCounter(finger_classes(args.finger_classes))
    elif args.mode in ("landmark", "combined"):
        landmark = LandmarkClassifier.load(args.landmark_model or released("gesture_detection", "landmark_linto"))
    else:
        landmark = LandmarkClassifier.load(args.landmark_model) if args.landmark_model else None
    crop_model = None
    if args.crop_model:  # only this path needs PyTorch (and Lightning); the landmark paths start in seconds
        import torch

        from gesture_detection.crop_model import CropClassifier

        torch.set_num_threads(args.threads)
        crop_model = CropClassifier.load(args.crop_model)
    yolo = YoloHands(args.yolo, image_size=args.yolo_image_size) if args.yolo else None
    hands = MediaPipeHands(min_confidence=args.min_hand_confidence)
    return GesturePipeline(args.mode, landmark, crop_model, RescuedHands(hands) if args.rescue else hands,
                           yolo, args.threshold, args.keep, args.crop_expand, args.second_look)


def iter_predictions(pipeline: GesturePipeline, files: list[Path], annotate_dir: Path | None):
    """(path label, prediction or None, error message) per image or video frame."""
    for path in files:
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            writer = None
            if annotate_dir is not None:
                info = video_info(path)
                writer = AtomicVideoWriter(annotate_dir / f"{path.stem}_annotated.mp4", info.fps or 25.0, (info.width, info.height))
            try:
                for index, _, rgb in iter_video_frames(path):
                    prediction = pipeline.predict(rgb)
                    if writer is not None:
                        writer.write(draw(rgb, prediction))
                    yield f"{path}#{index}", prediction, ""
            except InputError as error:
                if writer is not None:
                    writer.close(keep=False)
                    writer = None
                skip(path, error.reason)
                yield str(path), None, error.reason
            if writer is not None:
                writer.close()
            continue
        try:
            rgb = load_image(path)
        except InputError as error:
            skip(path, error.reason)
            yield str(path), None, error.reason
            continue
        prediction = pipeline.predict(rgb)
        if annotate_dir is not None:
            write_image(annotate_dir / f"{path.stem}_annotated.jpg", draw(rgb, prediction))
        yield str(path), prediction, ""


def write_predictions(rows, output: Path, fmt: str) -> tuple[int, list[tuple[str, str]]]:
    """Write the CSV atomically; returns the number of rows and the (path, reason) of skipped inputs.
    When every input failed nothing is written and the error names the first one."""
    predictions, errors = [], []
    for path, prediction, error in rows:
        if prediction is None:
            errors.append((path, error))
        else:
            predictions.append((path, prediction))
    if not predictions:
        raise InputError(errors[0][0] if errors else output, "no input could be read" + (f" ({errors[0][1]})" if errors else ""))
    with atomic_open(output) as handle:
        writer = csv.writer(handle)
        writer.writerow([*MCS_CLASSES, "frame_path"] if fmt == "mcs" else ["path", "gesture", "probability"])
        for path, prediction in predictions:
            if fmt == "mcs":
                row = mcs_row(prediction, path)
                writer.writerow([f"{row[name]:.6f}" for name in MCS_CLASSES] + [path])
            else:
                writer.writerow([path, prediction.gesture, f"{prediction.probability:.6f}"])
    if errors:
        with atomic_open(output.with_name(f"{output.stem}_errors.csv")) as handle:
            csv.writer(handle).writerows([("path", "reason"), *errors])
    return len(predictions), errors


def main(argv=None) -> int:
    args = parse_args(argv)
    pipeline = build_pipeline(args)
    if args.format == "mcs":
        check_mcs_labels(pipeline.labels)
    files = input_files(args.inputs, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    count, errors = write_predictions(iter_predictions(pipeline, files, args.annotate_dir), args.output, args.format)
    print(f"{count} predictions -> {args.output}" + (f"; annotated images in {args.annotate_dir}" if args.annotate_dir else ""))
    if errors:
        print(f"{len(errors)} inputs skipped, listed in {args.output.with_name(args.output.stem + '_errors.csv')}")
    return 0


if __name__ == "__main__":
    run_main(main)
