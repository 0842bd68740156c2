"""Train a gesture classifier: on MediaPipe hand landmarks (`--classifier landmark`, seconds) or on
hand crops (`--classifier crop`, a CNN with core.training). Records go to runs/gesture_detection/<run>/.

    python -m gesture_detection.train --classifier landmark --dataset hands_dataset --run-name lm_hands
    python -m gesture_detection.train --classifier crop --dataset linto --max-epochs 8 --run-name crop_linto
    python -m gesture_detection.train --classifier crop --data my_set/ --format folders --backbone tf_efficientnetv2_b0

Training images are the format's train split (all images when it has none) minus a random
validation share; a test split, when present, is left for `bench.py`. Unreadable or tiny images are
skipped with a warning; a class with no training example is an error.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.cli import OutputFolder, run_main
from core.metrics import classification_report
from core.training import (add_trainer_arguments, config_dict, fit, make_run_dir, predict_probabilities,
                           seed_everything, trainer_options_from_args, write_run_records)

from gesture_detection.data import (FORMATS, NO_GESTURE, SHARED_ROOT, SHARED_SETS, CropDataset, check_class_counts,
                                    class_names_of, crop_items, load_annotations, readable, recording_session,
                                    shared_set_csv, split_annotations)
from gesture_detection.landmarks import (BoxStyle, cached_hand_detections, fit_box_scale, fit_box_style,
                                         labelled_hands, match_to_boxes)
from gesture_detection.crop_model import CropClassifier
from gesture_detection.features import AUGMENTATIONS
from gesture_detection.model import LandmarkClassifier

TASK = "gesture_detection"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", choices=("landmark", "crop"), default="landmark",
                        help="landmark: logistic regression/MLP/kNN on MediaPipe landmark features; crop: CNN on hand crops (default %(default)s)")
    source = parser.add_argument_group("data (a real set, or --data with --format)")
    source.add_argument("--dataset", choices=sorted(SHARED_SETS), default=None, help="a real set under --shared-root")
    source.add_argument("--shared-root", type=Path, default=SHARED_ROOT, help="folder of the real sets")
    source.add_argument("--data", type=Path, default=None,
                        help="box CSV file, YOLO images folder, HaGRID annotations folder or class-folder root")
    source.add_argument("--format", choices=FORMATS, default="csv", help="format of --data (default %(default)s)")
    source.add_argument("--classes", nargs="*", default=None, help="class names for YOLO ids (in id order) or HaGRID files to use")
    source.add_argument("--images", type=Path, default=None, help="HaGRID images folder (<class>/<id>.jpg)")
    source.add_argument("--val-fraction", type=float, default=0.1, help="share of training images held out for validation")
    landmark = parser.add_argument_group("landmark classifier")
    landmark.add_argument("--landmark-kind", choices=LandmarkClassifier.KINDS, default="logistic",
                          help="logistic regression, a small mlp or a distance-weighted knn (default %(default)s)")
    landmark.add_argument("--oriented", action="store_true",
                          help="keep where the hand points in the image as features: for classes that differ by it "
                               "(thumb up / down, pointing left / right)")
    landmark.add_argument("--asymmetric-classes", nargs="*", default=[],
                          help="classes a mirror would change (pointing left or right): never mirrored in training")
    landmark.add_argument("--logistic-c", type=float, default=0.1,
                          help="inverse regularisation strength of the logistic regression (default %(default)s)")
    landmark.add_argument("--augmented-copies", type=int, default=8,
                          help="changed copies of each training hand (3-D turns, stretch, noise; default %(default)s)")
    landmark.add_argument("--augmentation", choices=sorted(AUGMENTATIONS), default="strong",
                          help="how hard the copies are changed (features.AUGMENTATIONS; default %(default)s)")
    landmark.add_argument("--idle-hands", type=float, default=1.0,
                          help="train a no_gesture class on generated idle hands (relaxed, holding something: "
                               "features.idle_hands), this many times the mean number of hands per gesture, and on "
                               "detected hands off every annotated box; 0: no such class (default %(default)s)")
    landmark.add_argument("--calibration-folds", type=int, default=5,
                          help="fit the temperature and the no_gesture threshold on hands of recording sessions "
                               "the model was not fitted on, in this many folds of sessions (read from the file "
                               "names, data.recording_session; 0, or no sessions known: on the validation hands)")
    landmark.add_argument("--neighbours", type=int, default=2, help="k of the kNN (default %(default)s)")
    landmark.add_argument("--prior-scale", type=float, default=8.0,
                          help="kNN familiarity: a hand this many typical neighbour distances from the training "
                               "hands scores 1/2 when ranking hands (default %(default)s, chosen by 5-fold CV on train)")
    landmark.add_argument("--min-hand-confidence", type=float, default=0.5, help="MediaPipe detection confidence")
    crop = parser.add_argument_group("crop classifier")
    crop.add_argument("--backbone", default="mobilenet_v2",
                      help="mobilenet_v2 (ImageNet, fine-tuned) or a timm model trained from scratch, e.g. tf_efficientnetv2_b0")
    crop.add_argument("--no-pretrained", dest="pretrained", action="store_false", help="mobilenet_v2 from scratch")
    crop.add_argument("--freeze-blocks", type=int, default=0,
                      help="keep the first N feature blocks of mobilenet_v2 frozen (of 19; 0 = fine-tune all)")
    crop.add_argument("--image-size", type=int, default=128, help="crop size in px (default %(default)s)")
    crop.add_argument("--batch-size", type=int, default=32, help="batch size (default %(default)s)")
    crop.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate (default %(default)s)")
    crop.add_argument("--workers", type=int, default=0, help="data-loader processes (default %(default)s)")
    parser.add_argument("--run-name", default=None, help="run folder under runs/gesture_detection/ (default: start time)")
    parser.add_argument("--runs-root", type=OutputFolder(), default=None,
                        help="runs folder: the run goes to <runs-root>/gesture_detection/<run-name> (default: runs/)")
    add_trainer_arguments(parser, max_epochs=8, accelerator="cpu", devices="1")
    args = parser.parse_args(argv)
    if (args.dataset is None) == (args.data is None):
        parser.error("give exactly one of --dataset or --data")
    return args


def load_training_data(args: argparse.Namespace):
    source = shared_set_csv(args.dataset, args.shared_root) if args.dataset else args.data
    fmt = "csv" if args.dataset else args.format
    annotations = load_annotations(source, fmt, args.classes, args.images)
    train, val, _ = split_annotations(annotations, args.val_fraction, args.seed)
    train, val = readable(train), readable(val)
    class_names = class_names_of(train)
    check_class_counts(train, class_names, str(source))
    return source, train, val, class_names


def session_hands(annotations, detections, class_names, idle: bool = False) -> tuple[list, list[str], list[str | None]]:
    """`landmarks.labelled_hands` with each hand's recording session (`data.recording_session`); with `idle`,
    also the detected hands off every annotated box of an image with boxes, as no_gesture (the annotators
    boxed the hands that show a gesture: in LinTO a hand resting on the head or the chin)."""
    hands, targets, sessions = [], [], []
    for annotation, found in zip(annotations, detections):
        matched, classes = labelled_hands([annotation], [found], class_names)
        if idle and annotation.boxes:
            paired = {id(d) for d, _, _ in match_to_boxes(found or [], annotation)}
            off_box = [d for d in found or [] if id(d) not in paired]
            matched, classes = matched + off_box, classes + [NO_GESTURE] * len(off_box)
        hands += matched
        targets += classes
        sessions += [recording_session(annotation.path)] * len(matched)
    return hands, targets, sessions


def main(argv=None) -> dict:
    args = parse_args(argv)
    run_dir = make_run_dir(TASK, args.run_name, args.runs_root)
    source, train, val, class_names = load_training_data(args)
    print(f"{source}: {len(train)} training and {len(val)} validation images, classes {class_names}")
    from gesture_detection.detect import MediaPipeHands

    # no boxes to fit them on (class folders): the usual landmark-box to hand-box ratio
    box_scale, box_style = 1.25, BoxStyle()
    if args.classifier == "landmark" or any(a.boxes for a in train):
        detector = MediaPipeHands(min_confidence=args.min_hand_confidence)
        train_hands, _ = cached_hand_detections([a.path for a in train], detector, progress=True)
        val_hands, _ = cached_hand_detections([a.path for a in val], detector)
        box_scale, box_style = fit_box_scale(train_hands, train), fit_box_style(train_hands, train)
    metrics: dict = {"classes": class_names, "mediapipe_box_scale": box_scale, "box_style": asdict(box_style),
                     "train_images": len(train), "val_images": len(val)}

    if args.classifier == "landmark":
        classifier = LandmarkClassifier(class_names, args.landmark_kind, args.seed, args.neighbours, box_style,
                                        args.prior_scale, args.oriented, args.asymmetric_classes,
                                        args.augmented_copies, args.logistic_c, args.augmentation, args.idle_hands)
        idle = NO_GESTURE in classifier.labels
        hands_train, y_train, sessions = session_hands(train, train_hands, classifier.labels, idle)
        hands_val, y_val, _ = session_hands(val, val_hands, classifier.labels, idle)
        known = args.calibration_folds >= 2 and len(set(sessions) - {None}) >= 2
        # photos whose name gives no session (HandsDataset's `Hand_*.jpg`) are held out together, as one
        sessions = [session or "(no session in the file name)" for session in sessions]
        if not known:
            print("calibration on the validation hands, which share recording sessions with the training hands: "
                  "expect over-confident probabilities on new people")
        classifier.fit(hands_train, y_train, hands_val, y_val, sessions if known else None, args.calibration_folds)
        metrics.update(train_hands=len(y_train), val_hands=len(y_val), train_sessions=len(set(sessions)) if known else None,
                       temperature=classifier.calibration.temperature, threshold=classifier.threshold,
                       calibration_fit=classifier.calibration_fit)
        report = None
        if len(y_val):
            predicted = [classifier.labels[i] for i in classifier.probabilities(classifier.hand_features(hands_val)).argmax(axis=1)]
            report = classification_report(y_val, predicted, classifier.labels)
            metrics.update(val_hand_accuracy=report.accuracy, val_hand_macro_f1=report.macro_f1)
        model_path = classifier.save(run_dir / "landmark.joblib")
        write_run_records(run_dir, config_dict(args), metrics, report)
    else:
        import torch

        seed_everything(args.seed)  # before the weights are drawn: the same command gives the same model
        module = CropClassifier(class_names, args.backbone, args.image_size, args.pretrained, box_scale,
                                args.freeze_blocks, learning_rate=args.learning_rate)
        loader = lambda items, train_mode: torch.utils.data.DataLoader(  # noqa: E731
            CropDataset(items, args.image_size, train=train_mode, seed=args.seed), batch_size=args.batch_size,
            shuffle=train_mode, num_workers=args.workers)
        val_items = crop_items(val, class_names)
        result = fit(module, loader(crop_items(train, class_names), True), loader(val_items, False),
                     trainer_options_from_args(args), run_dir)
        best = CropClassifier.load(result.best_checkpoint)
        probabilities = predict_probabilities(best, loader(val_items, False))
        report = classification_report([class_names[i.target] for i in val_items],
                                        [class_names[i] for i in probabilities.argmax(axis=1)], class_names)
        metrics.update(val_crop_accuracy=report.accuracy, val_crop_macro_f1=report.macro_f1,
                       train_seconds=result.train_seconds, best_checkpoint=str(result.best_checkpoint))
        model_path = result.best_checkpoint
        write_run_records(run_dir, config_dict(args), metrics, report)
    print({k: v for k, v in metrics.items() if k != "classes"})
    print(f"model: {model_path}\nrecords: {run_dir}")
    return metrics


if __name__ == "__main__":
    run_main(main)
