"""Train an emotion model: data (FER+, the Skillbox layout or fer2013.csv) -> EmotionModule -> fit ->
evaluation with flip TTA -> run records in runs/emotion/<run-name>/ (config, metrics, curves, confusion).

    python -m emotion.train --architecture mobilenet_v2 --input-size 64 --max-epochs 12 --run-name mnv2
    python -m emotion.train --data skillbox --data-root path/with/train --max-epochs 5
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python emotion/train.py`: put the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
import numpy as np  # noqa: E402

from core.cli import OutputFolder, run_main  # noqa: E402
from core.env import REPO_ROOT  # noqa: E402
from core.metrics import classification_report  # noqa: E402
from core.training import (LAST_EPOCH, add_trainer_arguments, config_dict, fit, make_run_dir,  # noqa: E402
                           seed_everything, trainer_options_from_args, write_run_records)
from emotion.data import (CLASSES, FaceDataset, FaceSet, balanced_sample_weights, concat, find_duplicates, near_copies,  # noqa: E402
                          load_fer2013_csv, load_ferplus, load_skillbox_train, resize_faces, train_augmentation)
from emotion.model import HEADS, EmotionModule, load_module, predict_faces  # noqa: E402
from emotion.va import va_ccc, va_from_distribution  # noqa: E402

FERPLUS_ROOT = REPO_ROOT.parent / "shared" / "data" / "emotion" / "ferplus"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=("ferplus", "skillbox", "fer2013"), default="ferplus",
                      help="ferplus: labels.csv + ferplus_images.zip (train/valid/test); skillbox: a folder with "
                           "train/<emotion>/*.jpg (validation split off it); fer2013: fer2013.csv (Training/PublicTest/PrivateTest)")
    data.add_argument("--data-root", type=Path, default=None,
                      help=f"folder (ferplus, skillbox) or CSV file (fer2013); default for ferplus: {FERPLUS_ROOT}")
    data.add_argument("--val-fraction", type=float, default=0.15, help="skillbox: stratified validation share")
    data.add_argument("--detector", default="mediapipe", choices=("mediapipe", "haar", "none"),
                      help="skillbox: face detector for cropping (FER faces are already cropped)")
    data.add_argument("--clean", action="store_true", help="drop perceptual-hash duplicates and conflicts from the training set, "
                      "and its near copies of validation and test faces")
    data.add_argument("--train-on-val", action="store_true",
                      help="final model: train on train + val with a recipe already chosen on val; best.ckpt is then "
                           "the last epoch and the val figures printed are not held out (test stays untouched)")
    data.add_argument("--limit-train", type=int, default=0, help="use at most this many training faces (0 = all), stratified")
    data.add_argument("--keep-ties", action="store_true",
                      help="FER+: also train on the faces whose votes have no single majority, with their vote "
                           "distribution as the target (scoring always leaves ties out)")
    data.add_argument("--soft-weight", type=float, default=1.0,
                      help="FER+ targets: 1 = vote distributions, 0 = majority label, in between = a mix")
    data.add_argument("--balance", type=float, default=0.0,
                      help="class-balanced sampling: weight count^-BALANCE (0 = off, 0.5 = sqrt, 1 = fully balanced)")
    data.add_argument("--augment", choices=("none", "light", "medium", "strong", "robust"), default="medium",
                      help="albumentations strength; robust adds resolution, JPEG, blur and lighting (emotion/augment.py)")
    data.add_argument("--batch-size", type=int, default=64, help="training batch size (default %(default)s)")
    model = parser.add_argument_group("model")
    model.add_argument("--architecture", default="mobilenet_v2",
                       help="mobilenet_v2 or efficientnet_lite0/1/2 (ImageNet, fine-tuned), compact_cnn (from scratch) "
                            "or timm:<name> (random init)")
    model.add_argument("--head", choices=HEADS, default="class", help="class logits, valence-arousal regression, or both")
    model.add_argument("--input-size", type=int, default=64, help="face side in pixels fed to the network")
    model.add_argument("--no-pretrained", dest="pretrained", action="store_false", help="ImageNet backbones from random init")
    model.add_argument("--dropout", type=float, default=0.2, help="dropout before the head (default %(default)s)")
    model.add_argument("--va-weight", type=float, default=1.0, help="weight of the VA MSE in the joint loss")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--optimizer", default="adamw", choices=("adam", "adamw", "radam", "sgd"), help="optimiser (default %(default)s)")
    optim.add_argument("--learning-rate", type=float, default=2e-3, help="peak learning rate (default %(default)s)")
    optim.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (default %(default)s)")
    optim.add_argument("--scheduler", default="onecycle", choices=("none", "cosine", "onecycle", "step", "plateau"),
                       help="learning-rate schedule (default %(default)s)")
    optim.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing of the class targets (default 0)")
    parser.add_argument("--no-tta", dest="tta", action="store_false", help="evaluate without flip test-time augmentation")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 by default: on a busy shared CPU, 2 threads ran 5x slower than 1)")
    parser.add_argument("--run-name", default=None, help="runs/emotion/<run-name> (default: the start time)")
    parser.add_argument("--runs-root", type=OutputFolder(), default=None, help="parent of runs/<task> (default: the repository's runs/)")
    add_trainer_arguments(parser, max_epochs=12, log_every_n_steps=20)
    return parser


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices) with `fraction` of each class held out (at least one when a class has 2+)."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in np.unique(labels):
        index = rng.permutation(np.nonzero(labels == label)[0])
        k = int(round(len(index) * fraction)) if len(index) > 1 else 0
        k = max(k, 1) if len(index) > 1 and fraction > 0 else k
        held.extend(index[:k])
        train.extend(index[k:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(held, dtype=int))


def load_splits(args: argparse.Namespace) -> dict[str, FaceSet]:
    """{'train', 'val'[, 'test']} FaceSets at the model's input size."""
    size = args.input_size
    if args.data == "ferplus":
        root = args.data_root or FERPLUS_ROOT
        splits = {"train": load_ferplus(root, ("train",), drop_ties=not args.keep_ties), "val": load_ferplus(root, ("valid",)),
                  "test": load_ferplus(root, ("test",))}
    elif args.data == "fer2013":
        if args.data_root is None:
            raise ValueError("--data fer2013 needs --data-root path/to/fer2013.csv")
        splits = {"train": load_fer2013_csv(args.data_root, ("Training",)), "val": load_fer2013_csv(args.data_root, ("PublicTest",))}
        try:
            splits["test"] = load_fer2013_csv(args.data_root, ("PrivateTest",))
        except ValueError:
            pass
    else:
        if args.data_root is None:
            raise ValueError("--data skillbox needs --data-root (a folder with train/<emotion>/)")
        from emotion.faces import FaceDetector

        detector = FaceDetector(args.detector)
        faces = load_skillbox_train(args.data_root, size=size, face_cropper=detector if args.detector != "none" else None)
        detector.close()
        train, val = stratified_split(faces.labels, args.val_fraction, args.seed)
        splits = {"train": faces.subset(train), "val": faces.subset(val)}
    if args.clean:
        report = find_duplicates(splits["train"])
        print(f"clean: {len(report.groups)} duplicate groups, {len(report.conflicts)} with conflicting labels, "
              f"kept {len(report.keep)} of {len(splits['train'])}")
        splits["train"] = splits["train"].subset(report.keep)
        held_out = [faces for name, faces in splits.items() if name != "train"]
        copies = near_copies(splits["train"], held_out)
        print(f"clean: dropped {int(copies.sum())} training faces with a near copy in {', '.join(n for n in splits if n != 'train')}")
        splits["train"] = splits["train"].subset(np.flatnonzero(~copies))
    if args.train_on_val:
        splits["train"] = concat([splits["train"], splits["val"]])
    if args.limit_train and args.limit_train < len(splits["train"]):
        keep, _ = stratified_split(splits["train"].strata(), 1 - args.limit_train / len(splits["train"]), args.seed)
        splits["train"] = splits["train"].subset(keep)
    for name, faces in splits.items():
        faces.images = resize_faces(faces.images, size)
    return splits


def evaluate(module: EmotionModule, faces: FaceSet, tta: bool = True) -> tuple[dict, object]:
    """Accuracy and macro-F1 on faces with a majority label, and VA CCC against the vote-derived VA."""
    probabilities, va = predict_faces(module, faces.images, tta=tta)
    known = faces.labels >= 0
    report = classification_report([CLASSES[i] for i in faces.labels[known]],
                                    [CLASSES[i] for i in probabilities[known].argmax(axis=1)], labels=CLASSES)
    ccc = va_ccc(va, va_from_distribution(faces.targets()))
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "va_ccc": ccc, "n": int(known.sum())}, report


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    splits = load_splits(args)
    print({name: len(faces) for name, faces in splits.items()}, f"loaded in {time.perf_counter() - started:.1f} s")
    train_set = FaceDataset(splits["train"], train_augmentation(args.augment), soft_weight=args.soft_weight)
    sampler = None
    if args.balance > 0:
        weights = balanced_sample_weights(splits["train"].strata(), args.balance)
        sampler = WeightedRandomSampler(torch.from_numpy(weights), num_samples=len(weights), replacement=True,
                                        generator=torch.Generator().manual_seed(args.seed))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler, drop_last=len(train_set) > args.batch_size)
    val_loader = DataLoader(FaceDataset(splits["val"]), batch_size=256)
    seed_everything(args.seed)
    module = EmotionModule(CLASSES, args.architecture, args.head, args.input_size, args.optimizer, args.learning_rate,
                           args.weight_decay, args.scheduler, args.label_smoothing, args.va_weight, args.dropout, args.pretrained)
    run_dir = make_run_dir("emotion", args.run_name, args.runs_root)
    options = trainer_options_from_args(args)
    # with val inside the training set, its accuracy cannot pick an epoch: keep the last one
    result = fit(module, train_loader, val_loader, options, run_dir, *(LAST_EPOCH if args.train_on_val else ()))
    best = load_module(str(result.best_checkpoint))
    metrics: dict = {"train_seconds": result.train_seconds, "best_checkpoint": str(result.best_checkpoint),
                     "n_train": len(splits["train"]), "epochs": result.trainer.current_epoch}
    report = None
    for name in ("val", "test"):
        if name in splits:
            scores, report = evaluate(best, splits[name], tta=args.tta)
            metrics.update({f"{name}_{key}": value for key, value in scores.items()})
    write_run_records(run_dir, config_dict(args, {"classes": list(CLASSES)}), metrics, report)
    print({k: v for k, v in metrics.items() if not isinstance(v, dict)}, "va_ccc:", metrics.get("val_va_ccc"))
    print(f"run records in {run_dir}")
    return metrics


if __name__ == "__main__":
    run_main(main)
