"""Real-data benchmark behind `make bench`: results/gesture_detection.json and the README table.

On the test split of each real set (HandsDataset, LinTO), for each path (landmark: the default, the
calibrated logistic regression; landmark_knn; crop_cnn; combined; fingers, where every class of the
set is a finger count): accuracy, macro-F1 and expected calibration error per image end to end (an
image with no hand found is an error), and milliseconds per image (decode + detectors + classifier,
2 CPU threads, every test image run for real without any cache, with the time per stage); for each
detector (MediaPipe, MediaPipe with its rescues, YOLO) mAP@0.5 and hand-box recall at IoU 0.5, and
the recall of the default path's detector chain (`hand_recall`).

Across sets (`cross_dataset.<direction>.<path>`): the models trained on one set's train split answer
for every image (all splits) of the other set whose gestures are finger counts the first set also
has (LinTO's yes / handup / vectory / hello = 0 / 1 / 2 / 5 fingers, `data.FINGER_COUNT_CLASSES`);
an answer is translated through its finger count, and one with no count in the other set is wrong.

On the train split only (`selection`): what the choices made there give: MediaPipe's rescue on the
images it misses, the kNN's familiarity ranking (5-fold cross-validation by image), the `fingers`
thresholds (the finger count of the train hands), and each classifier's validation accuracy and
temperature. No test image, and no image of the other set, chose anything.

`--timing-only` reruns just the timing with the trained models and rewrites the milliseconds (and
stage times) in the existing results/gesture_detection.json, e.g. on a quiet machine:

    python -m gesture_detection.bench --timing-only

An image counts as correct when the answer is one of the gestures it shows (34 HandsDataset images
show two hands with different finger counts; the original answers one gesture per image).
Models come from runs/gesture_detection/ (`lm_<set>`, `lm_knn_<set>`, `crop_<set>`, `yolo_ft`); missing
classifiers are trained first (`--train-missing`, on by default); a missing YOLO detector is reported
as absent and the combined path then falls back to the whole image. MediaPipe's detections are cached
in .cache/gesture_detection/, so a rerun with the models in place takes minutes, and `--no-timing`
keeps the milliseconds of the existing results file instead of timing again.
"""
from __future__ import annotations

import argparse
import platform
from dataclasses import asdict
import time
from pathlib import Path

import numpy as np

import core  # noqa: F401  (offline environment first)
from core.cli import ModelArgument, run_main
from core.metrics import classification_report
from core.results import markdown_table, publish_table, read_results, write_results
from core.training import RUNS_DIR

from gesture_detection.data import (FINGER_COUNT_CLASSES, FINGER_STATES, NO_GESTURE, SHARED_ROOT, SHARED_SETS, load_image,
                                    read_box_csv, shared_set_csv)
from gesture_detection.detect import (MediaPipeHands, RescuedHands, YoloHands, detection_scores, expand_box,
                                      score_detector)
from gesture_detection.landmarks import (cached_hand_detections, fit_box_scale, fit_box_style, labelled_hands,
                                         match_to_boxes)
from gesture_detection.crop_model import CropClassifier
from gesture_detection.model import FingerCounter, LandmarkClassifier, NearestHands, expected_calibration_error
from gesture_detection.pipeline import GesturePipeline, decide

TASK = "gesture_detection"
# the 5 epochs of `yolo` (stopped) continued for 4 more (`yolo_ft`, see README)
DEFAULT_YOLO = RUNS_DIR / TASK / "yolo_ft" / "yolo" / "weights" / "last.pt"
STAGES = ("decode", "mediapipe", "landmark", "yolo", "crop_cnn")
# path name -> pipeline mode; `landmark` (calibrated logistic regression) is the default path
PATHS = {"landmark": "landmark", "landmark_knn": "landmark", "crop_cnn": "crop_cnn", "combined": "combined",
         "fingers": "fingers"}
DEFAULT_PATH = "landmark"
CROSS_DIRECTIONS = (("hands_dataset", "linto"), ("linto", "hands_dataset"))
PARTS = ("cross_dataset", "fingers", "two_hands", "teach", "false_triggers")  # sections `--only` can recompute


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(SHARED_SETS), choices=list(SHARED_SETS), help="real sets to score")
    parser.add_argument("--shared-root", type=Path, default=SHARED_ROOT, help="folder of the real sets")
    parser.add_argument("--models", type=Path, default=RUNS_DIR / TASK,
                        help="folder with lm_<set>/landmark.joblib and crop_<set>/best.ckpt (default %(default)s)")
    parser.add_argument("--yolo", type=ModelArgument("gesture_detection"), default=DEFAULT_YOLO, help="YOLO weights from train_detector.py")
    parser.add_argument("--yolo-image-size", type=int, default=256, help="YOLO inference size")
    parser.add_argument("--yolo-confidence", type=float, default=0.25, help="YOLO boxes kept for the pipeline and recall")
    parser.add_argument("--threshold", type=float, default=None,
                        help="no_gesture below this probability (default: each classifier's own, chosen on held-out "
                             "sessions of its training split; 0.5 for the crop CNN and the fingers mode)")
    parser.add_argument("--timing-images", type=int, default=0,
                        help="test images timed end to end per set and path (default: all)")
    parser.add_argument("--timing-only", action="store_true",
                        help="only time the paths with the trained models and update the existing results file")
    parser.add_argument("--no-timing", dest="timing", action="store_false",
                        help="keep the milliseconds of the existing results file instead of timing again")
    parser.add_argument("--no-rescue", dest="rescue", action="store_false",
                        help="MediaPipe alone, without the low-confidence rescues where it finds no hand")
    parser.add_argument("--crop-epochs", type=int, default=4, help="epochs when a crop classifier must be trained first")
    parser.add_argument("--no-train-missing", dest="train_missing", action="store_false",
                        help="fail instead of training a missing classifier")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=None,
                        help="compute only these sections and update them in the existing results file "
                             "(fingers and teach need no trained model)")
    return parser.parse_args(argv)


def load_models(name: str, args: argparse.Namespace) -> dict:
    """The trained models of one set, {"landmark", "landmark_knn", "crop_cnn"}, trained first where missing."""
    from gesture_detection import train

    common = ["--dataset", name, "--shared-root", str(args.shared_root), "--runs-root", str(args.models.parent)]
    paths = {"landmark": args.models / f"lm_{name}" / "landmark.joblib",
             "landmark_knn": args.models / f"lm_knn_{name}" / "landmark.joblib",
             "crop_cnn": args.models / f"crop_{name}" / "best.ckpt"}
    recipes = {"landmark": ["--classifier", "landmark", "--run-name", f"lm_{name}"],
               "landmark_knn": ["--classifier", "landmark", "--landmark-kind", "knn", "--run-name", f"lm_knn_{name}"],
               "crop_cnn": ["--classifier", "crop", "--run-name", f"crop_{name}", "--max-epochs", str(args.crop_epochs),
                            "--image-size", "112", "--freeze-blocks", "14", "--no-progress-bar"]}
    for path_name, path in paths.items():
        if not path.is_file() and args.train_missing:
            train.main([*recipes[path_name], *common])
    return {"landmark": LandmarkClassifier.load(paths["landmark"]),
            "landmark_knn": LandmarkClassifier.load(paths["landmark_knn"]),
            "crop_cnn": CropClassifier.load(paths["crop_cnn"])}


def build_pipelines(name: str, models: dict, hands, threshold: float, yolo=None) -> dict[str, GesturePipeline]:
    """{path: pipeline} for one set's models; `fingers` counts with the set's own finger classes."""
    landmark, crop_model = models["landmark"], models["crop_cnn"]
    classifiers = {"landmark": landmark, "landmark_knn": models["landmark_knn"], "crop_cnn": None,
                   "combined": landmark, "fingers": FingerCounter(FINGER_COUNT_CLASSES[name], landmark.box_style)}
    return {path: GesturePipeline(mode, classifiers[path], crop_model if mode in ("crop_cnn", "combined") else None,
                                  hands, yolo=yolo, threshold=threshold)
            for path, mode in PATHS.items()}


def all_counts(name: str, labels) -> bool:
    return set(labels) - {NO_GESTURE} <= set(FINGER_COUNT_CLASSES[name].values())


def run_path(pipeline: GesturePipeline, annotations, mediapipe_found, yolo_found, yolo_confidence: float):
    """Answers, their probabilities and the answering box's source for every image, from cached detections."""
    answers, probabilities, sources = [], [], []
    for i, a in enumerate(annotations):
        needs_image = pipeline.mode in ("crop_cnn", "combined")
        rgb = load_image(a.path) if needs_image else np.zeros((a.height, a.width, 3), dtype=np.uint8)
        kept_yolo = [d for d in yolo_found[i] if d.score >= yolo_confidence] if yolo_found is not None else None
        prediction = pipeline.predict(rgb, mediapipe_found[i], kept_yolo)
        answers.append(prediction.gesture)
        probabilities.append(prediction.probability)
        sources.append(prediction.boxes[0].source if prediction.boxes else "none")
    return answers, probabilities, sources


def score_answers(answers: list[str], annotations, labels: list[str]) -> dict:
    truth = [answer if answer in a.gestures else a.label for answer, a in zip(answers, annotations)]
    report = classification_report(truth, answers, [label for label in labels if label != NO_GESTURE] + [NO_GESTURE])
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "n_images": report.n_samples,
            "no_gesture_answers": int(sum(a == NO_GESTURE for a in answers))}


def bench_set(name: str, args: argparse.Namespace, hands, yolo: YoloHands | None, models: dict) -> dict:
    test = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split == "test"]
    landmark = models["landmark"]
    labels = landmark.labels
    print(f"{name}: {len(test)} test images, classes {labels}", flush=True)
    primary = hands.primary if isinstance(hands, RescuedHands) else hands
    primary_found = [found or [] for found in cached_hand_detections([a.path for a in test], primary)[0]]
    mediapipe_found = [found or [] for found in cached_hand_detections([a.path for a in test], hands)[0]]
    result: dict = {"n_test_images": len(test), "classes": labels,
                    "mediapipe_hand_found": float(np.mean([bool(f) for f in primary_found])),
                    "mediapipe_rescued_hand_found": float(np.mean([bool(f) for f in mediapipe_found]))}

    # detectors: MediaPipe's landmark box in the annotation style (fitted on the train split)
    def scaled(detections):
        return [[d.with_box(landmark.box_style.apply(d.box, a.width, a.height, d.landmarks)) for d in found]
                for found, a in zip(detections, test)]

    result["detectors"] = {"mediapipe": {**score_detector(scaled(primary_found), test, confidence=0.0),
                                         "box_style": asdict(landmark.box_style)}}
    if isinstance(hands, RescuedHands):
        result["detectors"]["mediapipe_rescued"] = score_detector(scaled(mediapipe_found), test, confidence=0.0)
    yolo_found = None
    if yolo is not None:
        yolo_found = [yolo(load_image(a.path)) for a in test]
        result["detectors"]["yolo"] = score_detector(yolo_found, test, confidence=args.yolo_confidence)
    # the default (landmark) path's detector chain is MediaPipe with its rescues: a hand it misses is lost
    chain = "mediapipe_rescued" if isinstance(hands, RescuedHands) else "mediapipe"
    # and, free of the annotation's box style: the share of true boxes holding the centre of a found hand
    found_inside = [any(_holds_centre(truth, d.box) for d in found) for found, a in zip(mediapipe_found, test)
                    for truth in a.boxes]
    result["hand_recall"] = {"chain": chain, "recall_iou50": result["detectors"][chain]["recall_iou50"],
                             "n_boxes": result["detectors"][chain]["n_boxes"], "hand_found_in_box": float(np.mean(found_inside))}

    result["calibration"] = {}
    result["thresholds"] = {}
    for path, pipeline in build_pipelines(name, models, hands, args.threshold).items():
        if path == "fingers" and not all_counts(name, labels):
            continue  # the fingers mode answers only the classes that are finger counts
        result["thresholds"][path] = pipeline.threshold
        answers, probabilities, sources = run_path(pipeline, test, mediapipe_found, yolo_found, args.yolo_confidence)
        correct = [answer in a.gestures for answer, a in zip(answers, test)]
        result[path] = score_answers(answers, test, labels)
        result[path]["answered_from"] = {source: sources.count(source) for source in sorted(set(sources))}
        result[path]["errors"] = [a.path.name for ok, a in zip(correct, test) if not ok]
        result["calibration"][path] = expected_calibration_error(probabilities, correct)
        print(f"  {path}: { {k: v for k, v in result[path].items() if k != 'errors'} }, "
              f"ECE {result['calibration'][path]:.4f}", flush=True)
    result["calibration"]["ece"] = result["calibration"][DEFAULT_PATH]
    result["selection"] = selection_on_train(name, args, hands, models)
    print(f"  selection (train split): {result['selection']}", flush=True)
    return result


def _holds_centre(truth, box: np.ndarray) -> bool:
    """Whether the true box (data.HandBox) holds the centre of `box`."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(truth.xmin <= cx <= truth.xmax and truth.ymin <= cy <= truth.ymax)


def cross_dataset(source: str, target: str, args: argparse.Namespace, hands, yolo: YoloHands | None,
                  models: dict) -> dict:
    """The `source` set's models on every `target` image (all splits) whose gestures are finger counts
    of both sets; each answer goes through its finger count into the target's class names."""
    target_counts = {label: count for count, label in FINGER_COUNT_CLASSES[target].items()}
    source_counts = {label: count for count, label in FINGER_COUNT_CLASSES[source].items()}
    shared = {label for label, count in target_counts.items() if count in source_counts.values()}
    # LinTO names only 0, 1, 2 and 5 fingers: the shared counts are those in both directions
    images = [a for a in read_box_csv(shared_set_csv(target, args.shared_root))
              if a.gestures and set(a.gestures) <= shared]
    found = [f or [] for f in cached_hand_detections([a.path for a in images], hands)[0]]
    yolo_found = [yolo(load_image(a.path)) for a in images] if yolo is not None else None
    out: dict = {"n_images": len(images), "classes": sorted(shared, key=target_counts.get)}
    for path, pipeline in build_pipelines(source, models, hands, args.threshold).items():
        answers, probabilities, _ = run_path(pipeline, images, found, yolo_found, args.yolo_confidence)
        translated = [answer if answer == NO_GESTURE else
                      FINGER_COUNT_CLASSES[target].get(source_counts.get(answer, -1), f"{answer} (no count here)")
                      for answer in answers]
        out[path] = score_answers(translated, images, out["classes"])
        # how far the printed probability is from being right that often, on people the model never saw
        out[path]["ece"] = expected_calibration_error(probabilities, [t in a.gestures for t, a in zip(translated, images)])
        # where the misses go: per true class (the image's label), the wrong answers and how often
        misses: dict = {}
        for answer, a in zip(translated, images):
            if answer not in a.gestures:
                misses.setdefault(a.label, {})[answer] = misses.get(a.label, {}).get(answer, 0) + 1
        out[path]["misses"] = misses
        print(f"  {source} -> {target}, {path}: {out[path]}", flush=True)
    out["ece"] = out[DEFAULT_PATH]["ece"]
    return out


def count_images(name: str, args: argparse.Namespace) -> list:
    """Every image (all splits) of a set whose gestures are all finger counts (`data.FINGER_COUNT_CLASSES`)."""
    named = set(FINGER_COUNT_CLASSES[name].values())
    return [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.gestures and a.gestures <= named]


def finger_state_hands(name: str, args: argparse.Namespace, hands, splits=("train", "test")) -> tuple[list, list[str]]:
    """The hands of a set's images (in `splits`) whose class says what each finger shows (`data.FINGER_STATES`)."""
    images = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split in splits]
    found = [f or [] for f in cached_hand_detections([a.path for a in images], hands)[0]]
    return labelled_hands(images, found, list(FINGER_STATES[name]))


def fingers_across(target: str, source: str, args: argparse.Namespace, hands) -> dict:
    """`--mode fingers` on every count image of `target` with a `FingerCounter` fitted (thresholds and
    temperature, `FingerCounter.fit`) on the hands of `source` only (every image whose class says what
    the fingers show, `data.FINGER_STATES`): nothing fitted on `target`.
    Also the counter with its built-in defaults (fitted on the train splits of both sets, so not unseen)."""
    fitted = FingerCounter(FINGER_COUNT_CLASSES[target])
    fit_hands, fit_labels = finger_state_hands(source, args, hands)
    fitted.fit(fit_hands, *zip(*[FINGER_STATES[source][label] for label in fit_labels]))
    images = count_images(target, args)
    found = [f or [] for f in cached_hand_detections([a.path for a in images], hands)[0]]
    labels = list(FINGER_COUNT_CLASSES[target].values())
    out: dict = {"fitted_on": source, "n_fit_hands": len(fit_hands), "thresholds": fitted.thresholds.tolist(),
                 "temperature": fitted.calibration.temperature}
    for variant, counter in (("fitted_on_other_set", fitted), ("defaults", FingerCounter(FINGER_COUNT_CLASSES[target]))):
        answers, probabilities, _ = run_path(GesturePipeline("fingers", counter, hands=hands, threshold=args.threshold),
                                             images, found, None, args.yolo_confidence)
        correct = [answer in a.gestures for answer, a in zip(answers, images)]
        scores = score_answers(answers, images, labels)
        scores["ece"] = expected_calibration_error(probabilities, correct)
        misses: dict = {}
        for answer, a, ok in zip(answers, images, correct):
            if not ok:
                misses.setdefault(a.label, {})[answer] = misses.get(a.label, {}).get(answer, 0) + 1
        scores["misses"] = misses
        if variant == "fitted_on_other_set":
            out.update(scores)
        else:
            out["defaults"] = scores
    print(f"  fingers on {target} (fitted on {source}): { {k: v for k, v in out.items() if k != 'misses'} }", flush=True)
    return out


def two_hands(name: str, args: argparse.Namespace, hands, models: dict) -> dict:
    """The default path on the test images of a set where two hands are annotated or found: whether the
    answer is a gesture the image shows (the idle or second hand must not answer for the other)."""
    test = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split == "test"]
    found = [f or [] for f in cached_hand_detections([a.path for a in test], hands)[0]]
    chosen = [i for i, (a, f) in enumerate(zip(test, found)) if len(a.boxes) >= 2 or len(f) >= 2]
    images, detections = [test[i] for i in chosen], [found[i] for i in chosen]
    pipeline = build_pipelines(name, models, hands, args.threshold)[DEFAULT_PATH]
    answers, _, _ = run_path(pipeline, images, detections, None, args.yolo_confidence)
    correct = [answer in a.gestures for answer, a in zip(answers, images)]
    out = {"n_images": len(images), "accuracy": float(np.mean(correct)) if images else None,
           "n_two_boxes": int(sum(len(a.boxes) >= 2 for a in images)),
           "n_two_found": int(sum(len(f) >= 2 for f in detections)),
           "errors": [f"{a.path.name}: {answer}" for ok, answer, a in zip(correct, answers, images) if not ok]}
    print(f"  two hands, {name}: {out}", flush=True)
    return out


def time_pipeline(pipeline: GesturePipeline, annotations) -> dict:
    """Milliseconds per image, decode included, detectors run for real (no cache), and per stage."""
    pipeline.predict(load_image(annotations[0].path))  # warm-up: first-call initialisation is not per-image cost
    stages: dict[str, float] = {"decode": 0.0}
    started = time.perf_counter()
    for a in annotations:
        decode_started = time.perf_counter()
        rgb = load_image(a.path)
        stages["decode"] += (time.perf_counter() - decode_started) * 1000
        for stage, milliseconds in pipeline.predict(rgb).stage_milliseconds.items():
            stages[stage] = stages.get(stage, 0.0) + milliseconds
    total = (time.perf_counter() - started) / len(annotations) * 1000
    return {"ms_per_image": total, "stage_ms": {k: v / len(annotations) for k, v in stages.items()}}


def time_set(name: str, args: argparse.Namespace, hands, yolo: YoloHands | None, models: dict) -> dict:
    """{path: {"ms_per_image", "stage_ms"}} on the test split, every detector run for real."""
    test = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split == "test"]
    timed = test[:args.timing_images] if args.timing_images else test
    confident = _confident(yolo, args.yolo_confidence) if yolo is not None else None
    out = {}
    for path, pipeline in build_pipelines(name, models, hands, args.threshold, confident).items():
        if path == "fingers" and not all_counts(name, models["landmark"].labels):
            continue
        out[path] = time_pipeline(pipeline, timed)
        print(f"  {name} {path}: {out[path]['ms_per_image']:.1f} ms/image, stages "
              f"{ {k: round(v, 1) for k, v in out[path]['stage_ms'].items()} }", flush=True)
    return out


def selection_on_train(name: str, args: argparse.Namespace, hands, models: dict) -> dict:
    """What the choices made on the train split (test split untouched) give there:
    - rescue: of the train images where MediaPipe finds no hand, how many its rescues find a hand in
      (over a true box) and how many of those the landmark classifier gets right (the classifier
      never saw these images: it trains on the hands MediaPipe found);
    - ranking: per-image accuracy of the kNN, 5-fold cross-validated by image, with the plain
      max over hands and with the familiarity ranking, for a few prior scales;
    - fingers: the `fingers` mode's finger count on the train hands of the count classes (its
      thresholds were picked on these);
    - box style: recall of the train boxes with the fitted per-axis style and the single scale;
    - session_cv (HandsDataset): the candidate classifiers cross-validated by recording session;
    - classifiers: validation accuracy and temperature of each trained landmark classifier."""
    import json

    train = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split != "test"]
    primary_detector = hands.primary if isinstance(hands, RescuedHands) else hands
    primary = [found or [] for found in cached_hand_detections([a.path for a in train], primary_detector)[0]]
    landmark = models["landmark"]
    out: dict = {"n_train_images": len(train)}
    if isinstance(hands, RescuedHands):
        missed = [i for i, found in enumerate(primary) if not found]
        rescued, _ = cached_hand_detections([train[i].path for i in missed], hands)
        over_box = [(i, [d for d, _, _ in match_to_boxes(found or [], train[i])]) for i, found in zip(missed, rescued)]
        over_box = [(i, found) for i, found in over_box if found]
        right = sum(decide(landmark.probabilities(landmark.hand_features(found)), landmark.labels, 0.0)[0] in train[i].gestures
                    for i, found in over_box)
        out["rescue"] = {"primary_misses": len(missed), "rescued_any": int(sum(bool(f) for f in rescued)),
                         "rescued_over_true_box": len(over_box), "rescued_right": int(right)}
    out["ranking_cv"] = ranking_cross_validation(train, primary, models["landmark_knn"],
                                                 0.5 if args.threshold is None else args.threshold)
    counter = FingerCounter(FINGER_COUNT_CLASSES[name])
    counted, targets = labelled_hands(train, primary, counter.labels)
    answers = np.array(counter.labels)[counter.probabilities(counter.hand_features(counted)).argmax(axis=1)]
    out["fingers_train_hand_accuracy"] = float(np.mean(answers == np.array(targets)))
    out["box_style_train_recall"] = box_style_cross_validation(train, primary)
    if name == "hands_dataset":  # LinTO's file names carry no session
        out["session_cv"] = session_cross_validation(train, primary, [label for label in landmark.labels if label != NO_GESTURE])
    out["classifiers"] = {}
    for path, run in (("landmark", f"lm_{name}"), ("landmark_knn", f"lm_knn_{name}")):
        metrics_file = args.models / run / "metrics.json"
        if metrics_file.is_file():
            metrics = json.loads(metrics_file.read_text())
            out["classifiers"][path] = {key: metrics.get(key) for key in ("val_hand_accuracy", "temperature", "val_hands")}
    return out


def box_style_cross_validation(train, detections, folds: int = 5) -> dict:
    """Recall at IoU 0.5 of the train boxes, 5-fold cross-validated by image, with the hand's box drawn
    by the single scale factor of earlier versions, by the per-axis style and by the landmark-geometry
    edges (`landmarks.BoxStyle`), each fitted on the other folds' boxes."""
    fold = np.random.default_rng(0).integers(0, folds, len(train))
    drawn: dict[str, list] = {"single_scale": [None] * len(train), "per_axis": [None] * len(train),
                              "landmark_edges": [None] * len(train)}
    for k in range(folds):
        fit_rows = np.where(fold != k)[0]
        found, annotations = [detections[i] for i in fit_rows], [train[i] for i in fit_rows]
        scale, style = fit_box_scale(found, annotations), fit_box_style(found, annotations)
        for i in np.where(fold == k)[0]:
            w, h = train[i].width, train[i].height
            drawn["single_scale"][i] = [d.with_box(expand_box(d.box, scale, w, h)) for d in detections[i]]
            drawn["per_axis"][i] = [d.with_box(style.apply(d.box, w, h)) for d in detections[i]]
            drawn["landmark_edges"][i] = [d.with_box(style.apply(d.box, w, h, d.landmarks)) for d in detections[i]]
    truths = [[b.as_array() for b in a.boxes] for a in train]
    return {name: detection_scores(boxes, truths).recall_iou50 for name, boxes in drawn.items()}


def session_cross_validation(train, detections, labels, folds: int = 5) -> dict:
    """Per-hand accuracy of candidate landmark classifiers, cross-validated by recording session (a
    HandsDataset file name's prefix before `_pic`, 5 folds of sessions): a hand is always judged by a
    model that saw no photo of its session, the nearest the train split comes to a new user. Each
    candidate is trained on four folds and judged on the fifth (`four_fifths`), and trained on one fold
    and judged on the other four (`one_fifth`: few sessions, as when a set holds one person in one
    room). The default classifier (logistic regression, C = 0.1, strong augmentation) was chosen here."""
    from sklearn.model_selection import GroupKFold

    hands, targets, sessions = [], [], []
    for a, found in zip(train, detections):
        matched, classes = labelled_hands([a], [found], labels)
        hands += matched
        targets += classes
        sessions += [a.path.name.split("_pic")[0]] * len(matched)
    candidates = {"logistic_c1": dict(kind="logistic", logistic_c=1.0), "logistic_c0.1": dict(kind="logistic", logistic_c=0.1),
                  "logistic_c0.1_mild": dict(kind="logistic", logistic_c=0.1, augmentation="mild"),
                  "mlp": dict(kind="mlp"), "knn": dict(kind="knn")}
    out: dict = {"n_hands": len(hands), "n_sessions": len(set(sessions))}

    def right_answers(options: dict, fit_rows, judged) -> int:
        model = LandmarkClassifier(labels, **options).fit([hands[i] for i in fit_rows], [targets[i] for i in fit_rows])
        predicted = model.probabilities(model.hand_features([hands[i] for i in judged])).argmax(axis=1)
        return int(sum(labels[p] == targets[i] for p, i in zip(predicted, judged)))

    for candidate, options in candidates.items():
        four_fifths = one_fifth = judged_one_fifth = 0
        for rest, fold in GroupKFold(folds).split(targets, targets, sessions):
            four_fifths += right_answers(options, rest, fold)
            one_fifth += right_answers(options, fold, rest)
            judged_one_fifth += len(rest)
        out[candidate] = {"four_fifths": four_fifths / len(hands), "one_fifth": one_fifth / judged_one_fifth}
    return out


def ranking_cross_validation(train, detections, knn: LandmarkClassifier, threshold: float,
                             prior_scales=(2.0, 8.0, 32.0), folds: int = 5) -> dict:
    """Per-image accuracy of the landmark kNN, cross-validated by image over the train split, with
    the plain max over hands and with the familiarity ranking at each prior scale."""
    labels = knn.labels
    fold = np.random.default_rng(0).integers(0, folds, len(train))
    hand_rows = [[(knn.hand_features([d])[0], labels.index(label)) for d, label, _ in match_to_boxes(found, a)]
                 for found, a in zip(detections, train)]
    correct = {"plain": 0, **{f"prior_scale_{s:g}": 0 for s in prior_scales}}
    for k in range(folds):
        rows = [row for i in np.where(fold != k)[0] for row in hand_rows[i]]
        fold_knn = NearestHands(knn.model.neighbours).fit(np.stack([r[0] for r in rows]), np.array([r[1] for r in rows]))
        for i in np.where(fold == k)[0]:
            if not detections[i]:
                continue
            features = knn.hand_features(detections[i])
            probabilities = np.zeros((len(features), len(labels)), dtype=np.float32)
            probabilities[:, :fold_knn.n_classes] = fold_knn.predict_proba(features)
            correct["plain"] += decide(probabilities, labels, threshold)[0] in train[i].gestures
            for scale in prior_scales:
                fold_knn.prior_scale = scale
                answer = decide(probabilities, labels, threshold, fold_knn.familiarity(features))[0]
                correct[f"prior_scale_{scale:g}"] += answer in train[i].gestures
    n = int(sum(bool(found) for found in detections))
    return {"n_images_with_hand": n, **{key: value / n for key, value in correct.items()},
            "chosen_prior_scale": knn.model.prior_scale}


class _confident:
    """The YOLO detector keeping only boxes at or above the pipeline's confidence."""

    def __init__(self, yolo: YoloHands, confidence: float):
        self.yolo, self.confidence = yolo, confidence

    def __call__(self, rgb):
        return [d for d in self.yolo(rgb) if d.score >= self.confidence]


def _cell(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


TEACH_K = (5, 10, 20)
TEACH_DRAWS = 5


def session_halves(images) -> tuple[list[int], list[int]]:
    """Image indices of two parts of a set with no recording session in both (`data.recording_session`;
    photos whose name says none together as one): LinTO's two days; HandsDataset's 16 sessions dealt,
    the largest first, to the part with fewer images."""
    from gesture_detection.data import recording_session

    sessions = [recording_session(a.path) or "(no session)" for a in images]
    sizes = {s: sessions.count(s) for s in set(sessions)}
    parts: tuple[set, set] = (set(), set())
    totals = [0, 0]
    for session in sorted(sizes, key=lambda s: (-sizes[s], s)):
        smaller = int(totals[1] < totals[0])
        parts[smaller].add(session)
        totals[smaller] += sizes[session]
    return ([i for i, s in enumerate(sessions) if s in parts[0]], [i for i, s in enumerate(sessions) if s in parts[1]])


def teach_benchmark(name: str, args: argparse.Namespace, hands, ks=TEACH_K, draws: int = TEACH_DRAWS) -> dict:
    """`gesture_detection.teach` as a user would run it, on one set: k photos per gesture drawn from one part
    of the set (`session_halves`; photos that show that gesture only), taught with the command's own code
    (largest hand per photo, `teach.teach`), then the default path on every photo of the other part, whose
    recording sessions it never saw (a photo is right when the answer is one of the gestures it shows;
    no hand found, or no_gesture, is wrong). Both directions, `draws` random draws each."""
    from gesture_detection.data import recording_session
    from gesture_detection.teach import largest_hand, teach

    images = read_box_csv(shared_set_csv(name, args.shared_root))
    found = [f or [] for f in cached_hand_detections([a.path for a in images], hands)[0]]
    halves = session_halves(images)
    labels = sorted({a.label for a in images})
    out: dict = {"n_images": len(images), "classes": labels,
                 "parts": [{"images": len(h), "sessions": sorted({recording_session(images[i].path) or "(no session)"
                                                                  for i in h})} for h in halves]}
    for k in ks:
        runs = []
        for direction, (teach_part, test_part) in enumerate((halves, halves[::-1])):
            for draw in range(draws):
                rng = np.random.default_rng(1000 * k + 10 * draw + direction)
                chosen = []
                for label in labels:
                    pool = [i for i in teach_part if images[i].gestures == {label}]
                    chosen += [int(i) for i in rng.choice(pool, size=min(k, len(pool)), replace=False)]
                examples = [(images[i], largest_hand(found[i])) for i in chosen]
                with_hand = [(a, h) for a, h in examples if h is not None]
                sessions = [recording_session(a.path) for a, _ in with_hand]
                by_session = len(set(sessions) - {None}) >= 2   # as teach.photo_examples groups them
                groups = [(s or "(no session)") if by_session else str(a.path) for (a, _), s in zip(with_hand, sessions)]
                taught = teach([h for _, h in with_hand], [a.label for a, _ in with_hand], groups)
                pipeline = GesturePipeline("landmark", taught.classifier, threshold=args.threshold)
                predictions = [pipeline.predict(np.zeros((images[i].height, images[i].width, 3), dtype=np.uint8), found[i])
                               for i in test_part]
                answers = [p.gesture for p in predictions]
                correct = [ans in images[i].gestures for ans, i in zip(answers, test_part)]
                runs.append({"taught_on_part": direction + 1, "accuracy": float(np.mean(correct)),
                             "ece": expected_calibration_error([p.probability for p in predictions], correct),
                             "no_gesture": float(np.mean([ans == NO_GESTURE for ans in answers])),
                             "photos": len(examples), "photos_without_hand": len(examples) - len(with_hand),
                             "cv_accuracy": taught.cv_accuracy, "warned_pairs": len(taught.confusions),
                             "fit_seconds": taught.seconds, "threshold": taught.classifier.threshold,
                             "temperature": taught.classifier.calibration.temperature})
        out[f"k{k}"] = {"accuracy": float(np.mean([r["accuracy"] for r in runs])),
                        "min_accuracy": float(np.min([r["accuracy"] for r in runs])),
                        # taught on part 1, tested on part 2; and the other way
                        "by_direction": [float(np.mean([r["accuracy"] for r in runs if r["taught_on_part"] == d]))
                                         for d in (1, 2)],
                        **{key: float(np.mean([r[key] for r in runs]))
                           for key in ("ece", "no_gesture", "photos_without_hand", "cv_accuracy", "warned_pairs", "fit_seconds")},
                        "runs": runs}
        print(f"  teach {name} k={k}: accuracy {out[f'k{k}']['accuracy']:.3f} (min {out[f'k{k}']['min_accuracy']:.3f}), "
              f"fit {out[f'k{k}']['fit_seconds']:.1f} s", flush=True)
    return out


def teach_command_seconds(args: argparse.Namespace, per_gesture: int = 10) -> dict:
    """Wall-clock seconds of the whole `python -m gesture_detection.teach photos/` command (start-up, MediaPipe on
    every photo with its rescues, the classifier and its folds, the file), on `per_gesture` LinTO photos of each
    of its 10 gestures (one recording day), in a fresh process."""
    import os
    import subprocess
    import sys
    import tempfile

    from core.env import REPO_ROOT
    from gesture_detection.data import recording_session

    images = [a for a in read_box_csv(shared_set_csv("linto", args.shared_root))
              if a.gestures == {a.label} and recording_session(a.path) == "2021-04-29"]
    with tempfile.TemporaryDirectory() as folder:
        for label in sorted({a.label for a in images}):
            (Path(folder) / "photos" / label).mkdir(parents=True)
            for a in [a for a in images if a.label == label][:per_gesture]:
                (Path(folder) / "photos" / label / a.path.name).symlink_to(a.path)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "gesture_detection.teach", str(Path(folder) / "photos"), "--output",
                               str(Path(folder) / "taught.joblib")], capture_output=True, text=True, cwd=REPO_ROOT,
                              env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"teach failed: {done.stderr[-2000:]}")
    return {"set": "linto", "gestures": 10, "photos": 10 * per_gesture, "seconds": seconds, "threads": args.threads}


def teach_section(args: argparse.Namespace, hands) -> dict:
    """`teach.k<k>.accuracy`: the mean over both real sets of `teach_benchmark`, and each set's own; and how long
    the command takes (`teach.command`)."""
    per_set = {name: teach_benchmark(name, args, hands) for name in SHARED_SETS}
    out: dict = {"draws": TEACH_DRAWS, "directions": 2, "sets": per_set, "command": teach_command_seconds(args)}
    for k in TEACH_K:
        out[f"k{k}"] = {"accuracy": float(np.mean([per_set[n][f"k{k}"]["accuracy"] for n in per_set])),
                        **{n: per_set[n][f"k{k}"]["accuracy"] for n in per_set}}
    print(f"  teach: { {k: v for k, v in out.items() if k != 'sets'} }", flush=True)
    return out


def teach_table(teach: dict) -> str:
    rows = []
    for k in TEACH_K:
        for name, r in teach["sets"].items():
            t = r[f"k{k}"]
            rows.append([k, name, _cell(t["accuracy"]), " / ".join(_cell(v) for v in t["by_direction"]),
                         _cell(t["min_accuracy"]), _cell(t["ece"]), _cell(t["no_gesture"]),
                         _cell(t["cv_accuracy"]), f"{t['fit_seconds']:.1f}"])
        rows.append([k, "**mean of the two sets**", f"**{teach[f'k{k}']['accuracy']:.3f}**", "", "", "", "", "", ""])
    return markdown_table(["photos per gesture (k)", "set", "accuracy (other sessions)", "part 1 → 2 / 2 → 1", "worst draw", "ECE",
                           "no_gesture answers", "teach-side CV accuracy", "fit s"], rows)


def results_table(results: dict) -> str:
    rows, stage_rows = [], []
    for name in SHARED_SETS:
        if name not in results:
            continue
        r = results[name]
        for path in PATHS:
            if path not in r:
                continue
            rows.append([name, path, _cell(r[path]["accuracy"]), _cell(r[path]["macro_f1"]),
                         _cell(r["calibration"].get(path)), _cell(r[path].get("ms_per_image"), 0), ""])
            stages = r[path].get("stage_ms", {})
            stage_rows.append([name, path] + [f"{stages[s]:.1f}" if s in stages else "" for s in STAGES])
        for detector, scores in r["detectors"].items():
            rows.append([name, f"detector: {detector}", "", "", "", "",
                         f"mAP@0.5 {scores['map50']:.3f}, recall@IoU0.5 {scores['recall_iou50']:.3f}"])
        recall = r["hand_recall"]
        rows.append([name, f"hand recall of the default path ({recall['chain']})", "", "", "", "",
                     f"recall@IoU0.5 {recall['recall_iou50']:.3f} of {recall['n_boxes']} boxes; "
                     f"a found hand's centre in {recall['hand_found_in_box']:.3f} of them"])
    table = markdown_table(["set (test split)", "path", "accuracy", "macro-F1", "ECE", "ms / image", "hand boxes"], rows)
    cross_rows = []
    for direction, cross in results.get("cross_dataset", {}).items():
        for path in PATHS:
            if path in cross:
                cross_rows.append([direction.replace("_to_", " → "), path, cross["n_images"],
                                   _cell(cross[path]["accuracy"]), _cell(cross[path]["macro_f1"]),
                                   _cell(cross[path].get("ece"))])
    cross_table = markdown_table(["trained on → tested on (all splits)", "path", "images", "accuracy", "macro-F1", "ECE"],
                                 cross_rows)
    fingers_rows = [[name, f["fitted_on"], f["n_images"], _cell(f["accuracy"]), _cell(f["ece"]),
                     f"{', '.join(f'{t:.3f}' for t in f['thresholds'][:2])}; T {f['temperature']:.2f}",
                     _cell(f["defaults"]["accuracy"]), _cell(f["defaults"]["ece"])]
                    for name, f in results.get("fingers", {}).items()]
    fingers_table = markdown_table(["count photos of (all splits)", "counter fitted on", "images", "accuracy", "ECE",
                                    "fitted thresholds (thumb; long fingers), temperature",
                                    "built-in counter: accuracy", "ECE"], fingers_rows)
    two_rows = [[name, t["n_images"], t["n_two_boxes"], t["n_two_found"], _cell(t["accuracy"])]
                for name, t in results.get("two_hands", {}).items()]
    two_table = markdown_table(["set (test split)", "images with two hands", "two annotated", "two found",
                                "accuracy (default path)"], two_rows)
    stage_table = markdown_table(["set", "path"] + [f"{s} ms" for s in STAGES], stage_rows)
    selection_rows = []
    for name in SHARED_SETS:
        chosen = results.get(name, {}).get("selection")
        if not chosen:
            continue
        rescue, ranking = chosen.get("rescue", {}), chosen.get("ranking_cv", {})
        scale = ranking.get("chosen_prior_scale", 8.0)
        classifier = chosen.get("classifiers", {}).get("landmark", {})
        selection_rows.append([name, chosen["n_train_images"], rescue.get("primary_misses", ""),
                               rescue.get("rescued_over_true_box", ""), rescue.get("rescued_right", ""),
                               f"{ranking['plain']:.4f}" if ranking else "",
                               f"{ranking[f'prior_scale_{scale:g}']:.4f}" if ranking else "",
                               _cell(chosen.get("fingers_train_hand_accuracy"), 4),
                               _cell(classifier.get("val_hand_accuracy"), 4), _cell(classifier.get("temperature"), 2),
                               ", ".join(f"{k} {v['four_fifths']:.4f} / {v['one_fifth']:.4f}"
                                         for k, v in chosen.get("session_cv", {}).items() if not k.startswith("n_")),
                               ", ".join(f"{k} {v:.3f}" for k, v in chosen.get("box_style_train_recall", {}).items())])
    selection_table = markdown_table(
        ["set (train split)", "images", "MediaPipe finds no hand", "rescue finds one (over a true box)",
         "of those, classifier right", "kNN 5-fold CV: plain max", "ranked by familiarity",
         "fingers: train hands counted right", "logistic: val hand accuracy", "temperature",
         "by-session CV, hand accuracy trained on 4/5 / on 1/5 of sessions", "box style: train recall@IoU0.5, 5-fold CV"], selection_rows)
    false_part = ""
    if results.get("false_triggers"):
        triggers = results["false_triggers"]
        hold = triggers.get("static_hold_seconds", 0.0)
        false_part = ("\n\nStatic gestures where nobody makes one (`false_triggers`): the live path (tracking hands, the "
                      "released LinTO classifier at its own threshold, every frame, a gesture reported once it has been "
                      f"the answer for {hold:g} s) on the shared pose videos; an occurrence is a run of frames with the "
                      "same gesture (in brackets: answered at once, no hold):\n\n" + markdown_table(
                          ["video", "frames", "frames with a gesture", "occurrences", "per minute", "gestures"],
                          [[name, v["frames"], f"{v['gesture_frames']} ({v['at_once']['gesture_frames']})" if "at_once" in v
                            else v["gesture_frames"], f"{v['occurrences']} ({v['at_once']['occurrences']})" if "at_once" in v
                            else v["occurrences"], f"{v['per_minute']:.1f}", ", ".join(v["labels"])]
                           for name, v in triggers["static_by_video"].items()]) +
                      f"\n\nAll videos: {triggers['static_per_minute']:.1f} a minute (target ≤ 1).")
        kept = triggers.get("held_gestures_kept")
        if kept:
            false_part += (f" Real gestures still come through: on {kept['videos']} real gesture videos "
                           f"(video_gestures/zsgl_demo_videos), {kept['kept']} of the {kept['runs']} gesture runs of at least "
                           f"{kept['held_for_seconds']:g} s answered at once are reported with the {kept['hold_seconds']:g} s hold.")
    teach_part = ""
    if "teach" in results:
        command = results["teach"]["command"]
        teach_part = ("\n\nTaught gestures (`gesture_detection.teach`, `teach.k<k>.accuracy`): k photos per gesture "
                      "drawn from one part of a set, tested on every photo of the other part, whose recording sessions "
                      f"it never saw (both directions, {results['teach']['draws']} draws each; the table's accuracy is "
                      "their mean). The whole command on "
                      f"{command['photos']} LinTO photos of {command['gestures']} gestures took {command['seconds']:.0f} s "
                      f"({command['threads']} thread{'s' * (command['threads'] != 1)}; MediaPipe on every photo, nothing cached). "
                      "Parts: " + "; ".join(f"{name} " + " / ".join(", ".join(part["sessions"]) if len(part["sessions"]) < 3
                                                                  else f"{len(part['sessions'])} sessions" for part in r["parts"])
                                            for name, r in results["teach"]["sets"].items()) +
                      " (`parts` in the JSON lists them).\n\n" + teach_table(results["teach"]))
    threshold = results["threshold"]
    if threshold is None:
        threshold = "each classifier's own (" + ", ".join(
            f"{name} {path} {value:g}" for name in SHARED_SETS for path, value in results.get(name, {}).get("thresholds", {}).items()
            if path in ("landmark", "landmark_knn")) + "; 0.5 for the others)"
    return (table + f"\n\n{results['machine']}; threshold {threshold}; MediaPipe rescue "
            f"{'on' if results.get('rescue', False) else 'off'}; default path `{results.get('default_path', DEFAULT_PATH)}`; "
            f"ECE: expected calibration error of the answer's probability per image (15 bins); written by "
            f"`python -m gesture_detection.bench` on {results['date']}, timed {results.get('timing_date', results['date'])}.\n\n"
            "Across sets, finger counts (an answer translated through its finger count; one with no count in "
            "the other set is wrong):\n\n" + cross_table +
            "\n\n`--mode fingers` on every photo of a set whose gestures are finger counts, the counter's thresholds "
            "and temperature fitted on the other set only (`fingers` in the JSON; the built-in counter was fitted on "
            "the train splits of both sets):\n\n" + fingers_table +
            "\n\nTest photos with two hands (annotated or found), default path:\n\n" + two_table + teach_part + false_part +
            "\n\nMean milliseconds per image in each stage (a stage that runs on only some images is averaged "
            "over all):\n\n" + stage_table + "\n\nChoices made on the train split (per image, or per hand where "
            "it says so):\n\n" + selection_table)


def update_sections(args: argparse.Namespace, hands, yolo) -> dict:
    """`--only`: recompute some sections and rewrite them in the existing results file."""
    results = read_results(TASK)
    models = {name: load_models(name, args) for name in SHARED_SETS} if set(args.only) - {"fingers", "teach", "false_triggers"} else {}
    if "cross_dataset" in args.only:
        results["cross_dataset"] = {f"{source}_to_{target}": cross_dataset(source, target, args, hands, yolo, models[source])
                                    for source, target in CROSS_DIRECTIONS}
    if "fingers" in args.only:
        results["fingers"] = {target: fingers_across(target, source, args, hands) for source, target in CROSS_DIRECTIONS}
    if "two_hands" in args.only:
        results["two_hands"] = {name: two_hands(name, args, hands, models[name]) for name in args.datasets}
    if "teach" in args.only:
        results["teach"] = teach_section(args, hands)
    if "false_triggers" in args.only:
        results["false_triggers"] = false_triggers_section()
    path = write_results(TASK, results)
    publish_table(TASK, results_table(results))
    print(f"results: {path}")
    return results


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    hands = RescuedHands() if args.rescue else MediaPipeHands()
    yolo = YoloHands(args.yolo, confidence=0.001, image_size=args.yolo_image_size) if args.yolo.is_file() else None
    if yolo is None:
        print(f"no YOLO weights at {args.yolo}: YOLO rows left out; train with `python -m gesture_detection.train_detector`")
    machine = f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads (shared host)"
    if args.timing_only:
        args.train_missing = False
    if args.only:
        return update_sections(args, hands, yolo)
    models = {name: load_models(name, args) for name in set(args.datasets) | set(SHARED_SETS)}
    if args.timing_only or not args.timing:
        previous = read_results(TASK)
    if args.timing_only:
        results = previous
        for name in args.datasets:
            for path, timing in time_set(name, args, hands, yolo, models[name]).items():
                results[name][path].update(timing)
        results.update(timing_date=time.strftime("%Y-%m-%d %H:%M"), machine=machine)
    else:
        results = {"threshold": args.threshold, "date": time.strftime("%Y-%m-%d"), "machine": machine,
                   "timing_date": time.strftime("%Y-%m-%d %H:%M"), "rescue": args.rescue,
                   "default_path": DEFAULT_PATH, "yolo_weights": str(args.yolo) if yolo is not None else None}
        for name in args.datasets:
            results[name] = bench_set(name, args, hands, yolo, models[name])
            timings = time_set(name, args, hands, yolo, models[name]) if args.timing else \
                {path: {key: previous[name][path][key] for key in ("ms_per_image", "stage_ms")}
                 for path in PATHS if "ms_per_image" in previous.get(name, {}).get(path, {})}
            for path, timing in timings.items():
                results[name][path].update(timing)
        if not args.timing:  # the milliseconds, and the machine and threads they were timed with, are kept
            results["timing_date"] = previous.get("timing_date", previous.get("date"))
            results["machine"] = previous.get("machine", machine)
        results["cross_dataset"] = {f"{source}_to_{target}": cross_dataset(source, target, args, hands, yolo, models[source])
                                    for source, target in CROSS_DIRECTIONS}
        results["fingers"] = {target: fingers_across(target, source, args, hands) for source, target in CROSS_DIRECTIONS}
        results["two_hands"] = {name: two_hands(name, args, hands, models[name]) for name in args.datasets}
        results["teach"] = teach_section(args, hands)
        results["false_triggers"] = false_triggers_section()
    path = write_results(TASK, results)
    publish_table(TASK, results_table(results))
    print(f"results: {path}")
    return results


def false_triggers_section() -> dict:
    """`false_triggers.static_per_minute`: the live path with the released LinTO classifier on the shared pose
    videos, where nobody makes a gesture (gesture_detection.false_triggers)."""
    from core.weights import released
    from gesture_detection.false_triggers import GESTURE_VIDEOS, held_gestures_kept, static_false_triggers

    found = static_false_triggers(released(TASK, "landmark_linto"))
    found["static_model"] = "weights/gesture_detection/landmark_linto.joblib"
    if GESTURE_VIDEOS.is_dir():
        found["held_gestures_kept"] = held_gestures_kept(released(TASK, "landmark_linto"), sorted(GESTURE_VIDEOS.glob("*.mp4")))
    return found


if __name__ == "__main__":
    run_main(main)
