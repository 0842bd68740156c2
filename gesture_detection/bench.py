"""Real-data benchmark behind `make bench`: results/gesture_detection.json and the README table.

On the test split of each real set (HandsDataset, LinTO), for each path (landmark, crop_cnn,
combined): accuracy and macro-F1 per image end to end (an image with no hand found is an error), and
milliseconds per image (decode + detectors + classifier, 2 CPU threads, measured on the first
`--timing-images` test images without any cache); for each detector (MediaPipe, YOLO): mAP@0.5 and
hand-box recall at IoU 0.5.

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
from core.results import markdown_table, publish_table, write_results
from core.training import RUNS_DIR

from gesture_detection.data import (NO_GESTURE, SHARED_ROOT, SHARED_SETS, load_image, read_box_csv,
                                    shared_set_csv)
from gesture_detection.detect import MediaPipeHands, YoloHands, postprocess, score_detector
from gesture_detection.landmarks import cached_hand_detections
from gesture_detection.model import CropClassifier, LandmarkClassifier
from gesture_detection.pipeline import MODES, GesturePipeline

TASK = "gesture_detection"
DEFAULT_YOLO = RUNS_DIR / TASK / "yolo" / "yolo" / "weights" / "last.pt"


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
    parser.add_argument("--timing-images", type=int, default=30, help="test images timed end to end per set and path")
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


def time_pipeline(pipeline: GesturePipeline, annotations) -> float:
    """Milliseconds per image, decode included, detectors run for real (no cache)."""
    pipeline.predict(load_image(annotations[0].path))  # warm-up: first-call initialisation is not per-image cost
    started = time.perf_counter()
    for a in annotations:
        pipeline.predict(load_image(a.path))
    return (time.perf_counter() - started) / len(annotations) * 1000


def bench_set(name: str, args: argparse.Namespace, hands: MediaPipeHands, yolo: YoloHands | None) -> dict:
    test = [a for a in read_box_csv(shared_set_csv(name, args.shared_root)) if a.split == "test"]
    landmark, crop_model = load_models(name, args)
    labels = landmark.labels
    print(f"{name}: {len(test)} test images, classes {labels}", flush=True)
    mediapipe_found, _ = cached_hand_detections([a.path for a in test], hands)
    mediapipe_found = [found or [] for found in mediapipe_found]
    result: dict = {"n_test_images": len(test), "classes": labels,
                    "mediapipe_hand_found": float(np.mean([bool(f) for f in mediapipe_found]))}

    # detectors: MediaPipe's landmark box scaled to the annotation style (scale fitted on the train split)
    scaled = [[d.with_box(b.box) for d, b in zip(found, postprocess(found, a.width, a.height, expand=landmark.box_scale))]
              for found, a in zip(mediapipe_found, test)]
    result["detectors"] = {"mediapipe": {**score_detector(scaled, test, confidence=0.0), "box_scale": landmark.box_scale}}
    yolo_found = None
    if yolo is not None:
        yolo_found = [yolo(load_image(a.path)) for a in test]
        result["detectors"]["yolo"] = score_detector(yolo_found, test, confidence=args.yolo_confidence)

    for mode in MODES:
        pipeline = GesturePipeline(mode, landmark, crop_model, hands, threshold=args.threshold,
                                   yolo=_confident(yolo, args.yolo_confidence) if yolo is not None else None)
        answers = []
        for i, a in enumerate(test):
            needs_image = mode != "landmark"
            rgb = load_image(a.path) if needs_image else np.zeros((a.height, a.width, 3), dtype=np.uint8)
            kept_yolo = [d for d in yolo_found[i] if d.score >= args.yolo_confidence] if yolo_found is not None else None
            answers.append(pipeline.predict(rgb, mediapipe_found[i], kept_yolo).gesture)
        result[mode] = score_answers(answers, test, labels)
        result[mode]["ms_per_image"] = time_pipeline(pipeline, test[:args.timing_images])
        print(f"  {mode}: {result[mode]}", flush=True)
    return result


class _confident:
    """The YOLO detector keeping only boxes at or above the pipeline's confidence."""

    def __init__(self, yolo: YoloHands, confidence: float):
        self.yolo, self.confidence = yolo, confidence

    def __call__(self, rgb):
        return [d for d in self.yolo(rgb) if d.score >= self.confidence]


def results_table(results: dict) -> str:
    rows = []
    for name in SHARED_SETS:
        if name not in results:
            continue
        r = results[name]
        for mode in MODES:
            rows.append([name, mode, f"{r[mode]['accuracy']:.3f}", f"{r[mode]['macro_f1']:.3f}",
                         f"{r[mode]['ms_per_image']:.0f}", ""])
        for detector, scores in r["detectors"].items():
            rows.append([name, f"detector: {detector}", "", "", "",
                         f"mAP@0.5 {scores['map50']:.3f}, recall@IoU0.5 {scores['recall_iou50']:.3f}"])
    table = markdown_table(["set (test split)", "path", "accuracy", "macro-F1", "ms / image", "hand boxes"], rows)
    return (table + f"\n\n{results['machine']}; threshold {results['threshold']}; written by "
            "`python -m gesture_detection.bench` on " + results["date"] + ".")


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    hands = MediaPipeHands()
    yolo = YoloHands(args.yolo, confidence=0.001, image_size=args.yolo_image_size) if args.yolo.is_file() else None
    if yolo is None:
        print(f"no YOLO weights at {args.yolo}: YOLO rows left out; train with `python -m gesture_detection.train_detector`")
    results: dict = {"threshold": args.threshold, "date": time.strftime("%Y-%m-%d"),
                     "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads (shared host)",
                     "yolo_weights": str(args.yolo) if yolo is not None else None}
    for name in args.datasets:
        results[name] = bench_set(name, args, hands, yolo)
    path = write_results(TASK, results)
    publish_table(TASK, results_table(results))
    print(f"results: {path}")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
