"""Real-data benchmark behind `make bench`: results/gesture_detection.json and the README table.

On the test split of each real set (HandsDataset, LinTO), for each path (landmark, crop_cnn,
combined): accuracy and macro-F1 per image end to end (an image with no hand found is an error), and
milliseconds per image (decode + detectors + classifier, 2 CPU threads, every test image run for
real without any cache, with the time per stage); for each detector (MediaPipe, MediaPipe with its
rescues, YOLO): mAP@0.5 and hand-box recall at IoU 0.5. On the train split only (`selection`): what
the two choices made there give, MediaPipe's rescue on the images it misses and the kNN's
familiarity ranking (5-fold cross-validation by image).

`--timing-only` reruns just the timing with the trained models and rewrites the milliseconds (and
stage times) in the existing results/gesture_detection.json, e.g. on a quiet machine:

    python -m gesture_detection.bench --timing-only

An image counts as correct when the answer is one of the gestures it shows (34 HandsDataset images
show two hands with different finger counts; the original answers one gesture per image).
Models come from runs/gesture_detection/ (`lm_<set>`, `crop_<set>`, `yolo`); missing classifiers are
trained first (`--train-missing`, on by default); a missing YOLO detector is reported as absent and
the combined path then falls back to the whole image.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

import core  # noqa: F401  (offline environment first)
from core.metrics import classification_report
from core.results import markdown_table, publish_table, read_results, write_results
from core.training import RUNS_DIR

from gesture_detection.data import (NO_GESTURE, SHARED_ROOT, SHARED_SETS, load_image, read_box_csv,
                                    shared_set_csv)
from gesture_detection.detect import MediaPipeHands, RescuedHands, YoloHands, postprocess, score_detector
from gesture_detection.landmarks import cached_hand_detections, landmark_features, match_to_boxes
from gesture_detection.model import CropClassifier, LandmarkClassifier, NearestHands
from gesture_detection.pipeline import MODES, GesturePipeline, decide

TASK = "gesture_detection"
# the 5 epochs of `yolo` (stopped) continued for 4 more (`yolo_ft`, see README)
DEFAULT_YOLO = RUNS_DIR / TASK / "yolo_ft" / "yolo" / "weights" / "last.pt"
STAGES = ("decode", "mediapipe", "landmark_knn", "yolo", "crop_cnn")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(SHARED_SETS), choices=list(SHARED_SETS), help="real sets to score")
    parser.add_argument("--shared-root", type=Path, default=SHARED_ROOT, help="folder of the real sets")
    parser.add_argument("--models", type=Path, default=RUNS_DIR / TASK,
                        help="folder with lm_<set>/landmark.joblib and crop_<set>/best.ckpt (default %(default)s)")
    parser.add_argument("--yolo", type=Path, default=DEFAULT_YOLO, help="YOLO weights from train_detector.py")
    parser.add_argument("--yolo-image-size", type=int, default=256, help="YOLO inference size")
    parser.add_argument("--yolo-confidence", type=float, default=0.25, help="YOLO boxes kept for the pipeline and recall")
    parser.add_argument("--threshold", type=float, default=0.5, help="no_gesture below this probability (default %(default)s)")
    parser.add_argument("--timing-images", type=int, default=0,
                        help="test images timed end to end per set and path (default: all)")
    parser.add_argument("--timing-only", action="store_true",
                        help="only time the paths with the trained models and update the existing results file")
    parser.add_argument("--no-rescue", dest="rescue", action="store_false",
                        help="MediaPipe alone, without the low-confidence rescues where it finds no hand")
    parser.add_argument("--crop-epochs", type=int, default=4, help="epochs when a crop classifier must be trained first")
    parser.add_argument("--no-train-missing", dest="train_missing", action="store_false",
                        help="fail instead of training a missing classifier")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    return parser.parse_args(argv)


def load_models(name: str, args: argparse.Namespace):
    from gesture_detection import train

    landmark_path = args.models / f"lm_{name}" / "landmark.joblib"
    crop_path = args.models / f"crop_{name}" / "best.ckpt"
    common = ["--dataset", name, "--shared-root", str(args.shared_root), "--runs-root", str(args.models.parent)]
    if not landmark_path.is_file() and args.train_missing:
        train.main(["--classifier", "landmark", "--run-name", f"lm_{name}", *common])
    if not crop_path.is_file() and args.train_missing:
        train.main(["--classifier", "crop", "--run-name", f"crop_{name}", "--max-epochs", str(args.crop_epochs),
                    "--image-size", "112", "--freeze-blocks", "14", "--no-progress-bar", *common])
    return LandmarkClassifier.load(landmark_path), CropClassifier.load(crop_path)


def score_answers(answers: list[str], annotations, labels: list[str]) -> dict:
    truth = [answer if answer in a.gestures else a.label for answer, a in zip(answers, annotations)]
    report = classification_report(truth, answers, labels + [NO_GESTURE])
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "n_images": report.n_samples,
            "no_gesture_answers": int(sum(a == NO_GESTURE for a in answers))}


def bench_set(name: str, args: argparse.Namespace, hands, yolo: YoloHands | None) -> dict:
    test = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split == "test"]
    landmark, crop_model = load_models(name, args)
    labels = landmark.labels
    print(f"{name}: {len(test)} test images, classes {labels}", flush=True)
    primary = hands.primary if isinstance(hands, RescuedHands) else hands
    primary_found = [found or [] for found in cached_hand_detections([a.path for a in test], primary)[0]]
    mediapipe_found = [found or [] for found in cached_hand_detections([a.path for a in test], hands)[0]]
    result: dict = {"n_test_images": len(test), "classes": labels,
                    "mediapipe_hand_found": float(np.mean([bool(f) for f in primary_found])),
                    "mediapipe_rescued_hand_found": float(np.mean([bool(f) for f in mediapipe_found]))}

    # detectors: MediaPipe's landmark box scaled to the annotation style (scale fitted on the train split)
    def scaled(detections):
        return [[d.with_box(b.box) for d, b in zip(found, postprocess(found, a.width, a.height, expand=landmark.box_scale))]
                for found, a in zip(detections, test)]

    result["detectors"] = {"mediapipe": {**score_detector(scaled(primary_found), test, confidence=0.0),
                                         "box_scale": landmark.box_scale}}
    if isinstance(hands, RescuedHands):
        result["detectors"]["mediapipe_rescued"] = score_detector(scaled(mediapipe_found), test, confidence=0.0)
    yolo_found = None
    if yolo is not None:
        yolo_found = [yolo(load_image(a.path)) for a in test]
        result["detectors"]["yolo"] = score_detector(yolo_found, test, confidence=args.yolo_confidence)

    for mode in MODES:
        pipeline = GesturePipeline(mode, landmark, crop_model, hands, threshold=args.threshold)
        answers, sources = [], []
        for i, a in enumerate(test):
            needs_image = mode != "landmark"
            rgb = load_image(a.path) if needs_image else np.zeros((a.height, a.width, 3), dtype=np.uint8)
            kept_yolo = [d for d in yolo_found[i] if d.score >= args.yolo_confidence] if yolo_found is not None else None
            prediction = pipeline.predict(rgb, mediapipe_found[i], kept_yolo)
            answers.append(prediction.gesture)
            sources.append(prediction.boxes[0].source if prediction.boxes else "none")
        result[mode] = score_answers(answers, test, labels)
        result[mode]["answered_from"] = {source: sources.count(source) for source in sorted(set(sources))}
        result[mode]["errors"] = [a.path.name for answer, a in zip(answers, test) if answer not in a.gestures]
        print(f"  {mode}: { {k: v for k, v in result[mode].items() if k != 'errors'} }", flush=True)
    for mode, timing in time_set(name, args, hands, yolo, landmark, crop_model).items():
        result[mode].update(timing)
    result["selection"] = selection_on_train(name, args, hands, landmark)
    print(f"  selection (train split): {result['selection']}", flush=True)
    return result


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


def time_set(name: str, args: argparse.Namespace, hands, yolo: YoloHands | None, landmark=None, crop_model=None) -> dict:
    """{mode: {"ms_per_image", "stage_ms"}} on the test split, every detector run for real."""
    test = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split == "test"]
    if landmark is None:
        landmark, crop_model = load_models(name, args)
    timed = test[:args.timing_images] if args.timing_images else test
    out = {}
    for mode in MODES:
        pipeline = GesturePipeline(mode, landmark, crop_model, hands, threshold=args.threshold,
                                   yolo=_confident(yolo, args.yolo_confidence) if yolo is not None else None)
        out[mode] = time_pipeline(pipeline, timed)
        print(f"  {name} {mode}: {out[mode]['ms_per_image']:.1f} ms/image, stages "
              f"{ {k: round(v, 1) for k, v in out[mode]['stage_ms'].items()} }", flush=True)
    return out


def selection_on_train(name: str, args: argparse.Namespace, hands, landmark: LandmarkClassifier) -> dict:
    """What the two choices made on the train split (test split untouched) give there:
    - rescue: of the train images where MediaPipe finds no hand, how many its rescues find a hand in
      (over a true box) and how many of those the landmark classifier gets right (the classifier
      never saw these images: it trains on the hands MediaPipe found);
    - ranking: per-image accuracy of the kNN, 5-fold cross-validated by image, with the plain
      max over hands and with the familiarity ranking, for a few prior scales."""
    train = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split != "test"]
    primary_detector = hands.primary if isinstance(hands, RescuedHands) else hands
    primary = [found or [] for found in cached_hand_detections([a.path for a in train], primary_detector)[0]]
    out: dict = {"n_train_images": len(train)}
    if isinstance(hands, RescuedHands):
        missed = [i for i, found in enumerate(primary) if not found]
        rescued, _ = cached_hand_detections([train[i].path for i in missed], hands)
        over_box = [(i, [d for d, _, _ in match_to_boxes(found or [], train[i])]) for i, found in zip(missed, rescued)]
        over_box = [(i, found) for i, found in over_box if found]
        right = sum(decide(landmark.probabilities(landmark_features(found)), landmark.labels, 0.0)[0] in train[i].gestures
                    for i, found in over_box)
        out["rescue"] = {"primary_misses": len(missed), "rescued_any": int(sum(bool(f) for f in rescued)),
                         "rescued_over_true_box": len(over_box), "rescued_right": int(right)}
    if landmark.kind == "knn":
        out["ranking_cv"] = ranking_cross_validation(train, primary, landmark, args.threshold)
    return out


def ranking_cross_validation(train, detections, landmark: LandmarkClassifier, threshold: float,
                             prior_scales=(2.0, 8.0, 32.0), folds: int = 5) -> dict:
    """Per-image accuracy of the landmark kNN, cross-validated by image over the train split, with
    the plain max over hands and with the familiarity ranking at each prior scale."""
    labels = landmark.labels
    fold = np.random.default_rng(0).integers(0, folds, len(train))
    hand_rows = [[(landmark_features([d])[0], labels.index(label)) for d, label, _ in match_to_boxes(found, a)]
                 for found, a in zip(detections, train)]
    correct = {"plain": 0, **{f"prior_scale_{s:g}": 0 for s in prior_scales}}
    for k in range(folds):
        rows = [row for i in np.where(fold != k)[0] for row in hand_rows[i]]
        knn = NearestHands(landmark.model.neighbours).fit(np.stack([r[0] for r in rows]), np.array([r[1] for r in rows]))
        for i in np.where(fold == k)[0]:
            if not detections[i]:
                continue
            features = landmark_features(detections[i])
            probabilities = np.zeros((len(features), len(labels)), dtype=np.float32)
            probabilities[:, :knn.n_classes] = knn.predict_proba(features)
            correct["plain"] += decide(probabilities, labels, threshold)[0] in train[i].gestures
            for scale in prior_scales:
                knn.prior_scale = scale
                answer = decide(probabilities, labels, threshold, knn.familiarity(features))[0]
                correct[f"prior_scale_{scale:g}"] += answer in train[i].gestures
    n = int(sum(bool(found) for found in detections))
    return {"n_images_with_hand": n, **{key: value / n for key, value in correct.items()},
            "chosen_prior_scale": landmark.model.prior_scale}


class _confident:
    """The YOLO detector keeping only boxes at or above the pipeline's confidence."""

    def __init__(self, yolo: YoloHands, confidence: float):
        self.yolo, self.confidence = yolo, confidence

    def __call__(self, rgb):
        return [d for d in self.yolo(rgb) if d.score >= self.confidence]


def results_table(results: dict) -> str:
    rows, stage_rows = [], []
    for name in SHARED_SETS:
        if name not in results:
            continue
        r = results[name]
        for mode in MODES:
            rows.append([name, mode, f"{r[mode]['accuracy']:.3f}", f"{r[mode]['macro_f1']:.3f}",
                         f"{r[mode]['ms_per_image']:.0f}", ""])
            stages = r[mode].get("stage_ms", {})
            stage_rows.append([name, mode] + [f"{stages[s]:.1f}" if s in stages else "" for s in STAGES])
        for detector, scores in r["detectors"].items():
            rows.append([name, f"detector: {detector}", "", "", "",
                         f"mAP@0.5 {scores['map50']:.3f}, recall@IoU0.5 {scores['recall_iou50']:.3f}"])
    table = markdown_table(["set (test split)", "path", "accuracy", "macro-F1", "ms / image", "hand boxes"], rows)
    stage_table = markdown_table(["set", "path"] + [f"{s} ms" for s in STAGES], stage_rows)
    selection_rows = []
    for name in SHARED_SETS:
        chosen = results.get(name, {}).get("selection")
        if not chosen:
            continue
        rescue, ranking = chosen.get("rescue", {}), chosen.get("ranking_cv", {})
        scale = ranking.get("chosen_prior_scale", 8.0)
        selection_rows.append([name, chosen["n_train_images"], rescue.get("primary_misses", ""),
                               rescue.get("rescued_over_true_box", ""), rescue.get("rescued_right", ""),
                               f"{ranking['plain']:.4f}" if ranking else "",
                               f"{ranking[f'prior_scale_{scale:g}']:.4f}" if ranking else ""])
    selection_table = markdown_table(
        ["set (train split)", "images", "MediaPipe finds no hand", "rescue finds one (over a true box)",
         "of those, kNN right", "kNN 5-fold CV: plain max", "ranked by familiarity"], selection_rows)
    return (table + f"\n\n{results['machine']}; threshold {results['threshold']}; MediaPipe rescue "
            f"{'on' if results.get('rescue', False) else 'off'}; written by `python -m gesture_detection.bench` on "
            f"{results['date']}, timed {results.get('timing_date', results['date'])}.\n\n"
            "Mean milliseconds per image in each stage (a stage that runs on only some images is averaged "
            "over all):\n\n" + stage_table + "\n\nChoices made on the train split (per image):\n\n" + selection_table)


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
        results = read_results(TASK)
        for name in args.datasets:
            for mode, timing in time_set(name, args, hands, yolo).items():
                results[name][mode].update(timing)
        results.update(timing_date=time.strftime("%Y-%m-%d %H:%M"), machine=machine)
    else:
        results = {"threshold": args.threshold, "date": time.strftime("%Y-%m-%d"), "machine": machine,
                   "timing_date": time.strftime("%Y-%m-%d %H:%M"), "rescue": args.rescue,
                   "yolo_weights": str(args.yolo) if yolo is not None else None}
        for name in args.datasets:
            results[name] = bench_set(name, args, hands, yolo)
    path = write_results(TASK, results)
    publish_table(TASK, results_table(results))
    print(f"results: {path}")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
