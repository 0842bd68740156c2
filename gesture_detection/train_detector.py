"""Train an ultralytics YOLO hand detector from scratch on hand boxes, offline, and score it.

The box CSVs (or YOLO / HaGRID data converted by `data.py`) become one `hand` class in YOLO layout
under the run folder (images are linked, not copied). Training starts from the architecture YAML
(`yolov8n.yaml`: no download), then the detector is scored on each set's test split: mAP@0.5 and
hand-box recall at IoU 0.5 (`detect.detection_scores`), written to `metrics.json` in the run folder.

    python -m gesture_detection.train_detector --epochs 12 --image-size 256 --run-name yolo
    python -m gesture_detection.train_detector --model runs/gesture_detection/yolo/yolo/weights/last.pt \
        --epochs 4 --warmup-epochs 0 --run-name yolo_ft      # continue a stopped run with a short fresh schedule
    python -m gesture_detection.train_detector --evaluate runs/gesture_detection/yolo/yolo/weights/last.pt
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.cli import ModelArgument, OutputFolder, run_main
from core.env import install_ultralytics_font
from core.io import write_json
from core.training import config_dict, make_run_dir

from gesture_detection.data import (SHARED_ROOT, SHARED_SETS, load_image, read_box_csv, shared_set_csv,
                                    write_yolo_dataset)
from gesture_detection.detect import YoloHands, score_detector

TASK = "gesture_detection"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=sorted(SHARED_SETS), choices=sorted(SHARED_SETS),
                        help="real sets under --shared-root to train on (train split) and score (test split)")
    parser.add_argument("--csv", nargs="*", default=[], type=Path,
                        help="extra box CSVs (image,split,width,height,class,xmin,ymin,xmax,ymax) to use as well")
    parser.add_argument("--shared-root", type=Path, default=SHARED_ROOT, help="folder holding the real sets")
    parser.add_argument("--model", default="yolov8n.yaml",
                        help="ultralytics architecture YAML (from scratch) or a .pt to fine-tune (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (default %(default)s)")
    parser.add_argument("--image-size", type=int, default=256, help="training and inference size in px (default %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default %(default)s)")
    parser.add_argument("--fraction", type=float, default=1.0, help="fraction of the training images to use (quick runs)")
    parser.add_argument("--device", default="cpu", help="cpu, 0, 0,1 ... (default %(default)s)")
    parser.add_argument("--workers", type=int, default=0, help="data-loader workers (default %(default)s)")
    parser.add_argument("--confidence", type=float, default=0.25, help="detection threshold for the recall score")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--warmup-epochs", type=float, default=3.0,
                        help="learning-rate warm-up epochs (default %(default)s; 0 when fine-tuning a trained .pt)")
    parser.add_argument("--close-mosaic", type=int, default=10,
                        help="mosaic augmentation off for the last N epochs (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--evaluate", type=ModelArgument("gesture_detection"), default=None,
                        help="only score these weights on the test splits (e.g. a stopped run's last.pt)")
    parser.add_argument("--run-name", default=None, help="run folder under runs/gesture_detection/ (default: start time)")
    parser.add_argument("--runs-root", type=OutputFolder(), default=None,
                        help="runs folder: the run goes to <runs-root>/gesture_detection/<run-name> (default: runs/)")
    return parser.parse_args(argv)


def test_splits(args: argparse.Namespace):
    """(train annotations, {set name: test annotations}) of every source."""
    sources = [shared_set_csv(name, args.shared_root) for name in args.datasets] + list(args.csv)
    if not sources:
        raise SystemExit("no data: give --datasets and/or --csv")
    train, tests = [], {}
    for csv_path in sources:
        annotations = read_box_csv(csv_path)
        train += [a for a in annotations if a.split != "test"]
        tests[csv_path.parent.name if csv_path.name == "labels.csv" else csv_path.stem] = [a for a in annotations if a.split == "test"]
    return train, {name: split for name, split in tests.items() if split}


def evaluate(weights: Path, tests: dict, image_size: int, confidence: float, device: str = "cpu") -> dict:
    detector = YoloHands(weights, confidence=0.001, image_size=image_size, device=device)
    results = {}
    for name, annotations in tests.items():
        predictions = [detector(load_image(a.path)) for a in annotations]
        results[name] = score_detector(predictions, annotations, confidence)
        print(f"{name}: mAP@0.5 {results[name]['map50']:.3f}, recall@IoU0.5 {results[name]['recall_iou50']:.3f}")
    return results


def main(argv=None) -> dict:
    args = parse_args(argv)
    train, tests = test_splits(args)
    if args.evaluate is not None:
        return {"weights": str(args.evaluate), "test": evaluate(args.evaluate, tests, args.image_size, args.confidence, args.device)}
    run_dir = make_run_dir(TASK, args.run_name, args.runs_root)
    data_yaml = write_yolo_dataset({"train": train, "val": [a for split in tests.values() for a in split] or train[:1]},
                                   run_dir / "yolo_data")

    install_ultralytics_font()
    import torch
    from ultralytics import YOLO

    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    model = YOLO(args.model)
    model.train(data=str(data_yaml), epochs=args.epochs, imgsz=args.image_size, batch=args.batch, device=args.device,
                workers=args.workers, amp=False, val=False, plots=False, seed=args.seed, fraction=args.fraction,
                warmup_epochs=args.warmup_epochs, close_mosaic=args.close_mosaic,
                project=str(run_dir), name="yolo", exist_ok=True, verbose=False)
    train_seconds = time.perf_counter() - started
    weights = run_dir / "yolo" / "weights" / "best.pt"
    if not weights.is_file():
        weights = run_dir / "yolo" / "weights" / "last.pt"
    metrics = {"weights": str(weights), "train_seconds": train_seconds,
               "test": evaluate(weights, tests, args.image_size, args.confidence, args.device)}
    write_json(run_dir / "config.json", config_dict(args))
    write_json(run_dir / "metrics.json", metrics)
    print(f"weights: {weights}\nrecords: {run_dir}")
    return metrics


if __name__ == "__main__":
    run_main(main)
