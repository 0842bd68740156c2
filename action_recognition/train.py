"""Train an action classifier: frame, tsn, gru (over CNN features) or keypoint (GRU over body keypoints).

    python -m action_recognition.train --model tsn --run-name tsn            # UCF101 mini set (default data)
    python -m action_recognition.train --model gru --data clips/ --num-frames 8
    python -m action_recognition.train --model frame --finetune --backbone mobilenet_v2 --max-epochs 5
    python -m action_recognition.train --model tsn --finetune-from 11 --image-size 128 --views 6 --select last
    python -m action_recognition.train --model tsn --backbone efficientnet_lite0 --finetune-from 9 --image-size 128
    python -m action_recognition.train --model tsn --limit-per-class 20 --limit-val 10 --max-epochs 2   # a quick run

Data: the UCF101 zip, a folder per class of videos, or a folder per clip of frames (action_recognition/data.py).
The train split loses `--dev-fraction` of each class to a dev set, used to pick the checkpoint (and, in
fusion.py and ensemble.py, the fusion weights); the val split (or test) is scored once with the best checkpoint.
`--dev-split tail` (default) holds out the last clips of each class in source order: UCF101's clips are
ordered by group (actor and scene), so the dev clips come from videos that no training clip shares, as
in the val split (a random hold-out, `--dev-split hash`, shares videos with training and saturates). Clips
without a split are given one first. Splits and limits are made on the list of clips before any frame
is read, so only the clips a run uses are decoded, cached and scored: `--limit-per-class N` trains on the
first N clips of each class (dev is split off before it, so it holds out the same clips as a run without
it), and `--limit-val N` scores the first N dev and evaluation clips of each class. By default the CNN is
frozen: per-frame features are computed once and cached under .cache/action_recognition/, and only the
head trains (seconds per epoch on a CPU). `--finetune` trains the backbone as well, on frames.
`--finetune-from K` trains only the backbone's feature blocks K.. and the head (block 0 is the stem
convolution, then one per inverted-residual block, the last is the 1x1 convolution: MobileNetV2 0..18,
EfficientNet-Lite0 0..17, Lite1 and Lite2 0..22): the frozen blocks' output maps are cached for the plain
clip, its mirror (--flip-augment) and --views random augmented views of each training clip (random
resized crop, flip, colour jitter, the same for all frames of a clip), and each epoch draws one view per clip.
`--select` says which epoch's weights become best.ckpt: the best dev accuracy or loss, or simply the
last (a fixed schedule; with `--dev-fraction 0` there is no dev to choose by).
Outputs go to runs/action_recognition/<run-name>/.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset, TensorDataset  # noqa: E402

from action_recognition.data import ClipSelection, LoadedClips, assign_splits, find_clips, read_clips  # noqa: E402
from action_recognition.features import BACKBONES, CACHE_ROOT, FrameEncoder, cached_stem_maps  # noqa: E402
from action_recognition.inference import load_model, model_inputs, predict_probabilities, report  # noqa: E402
from action_recognition.model import MODELS, ActionModule  # noqa: E402
from core.cli import OutputFolder, run_main  # noqa: E402
from core.io import InputError, write_json  # noqa: E402
from core.training import (LAST_EPOCH, SCHEDULERS, add_trainer_arguments, config_dict, fit, make_run_dir,  # noqa: E402
                           seed_everything, trainer_options_from_args, write_run_records)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "action_recognition" / "ucf101_10class_3frame_clips.zip"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="UCF101 zip, folder per class of videos, or folder per clip of frames (default %(default)s)")
    parser.add_argument("--model", choices=MODELS, default="tsn", help="which classifier (default %(default)s)")
    parser.add_argument("--run-name", help="folder name under runs/action_recognition/ (default: the start time)")
    parser.add_argument("--runs-root", type=OutputFolder(), help="where runs/ lives (default: the repository's runs/)")
    parser.add_argument("--dev-fraction", type=float, default=0.15, help="share of each class's train clips held out as dev")
    parser.add_argument("--dev-split", choices=DEV_SPLITS, default="tail",
                        help="tail: the last clips of each class in source order (unseen videos); "
                             "hash: a seeded random share (default %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="val share for clips that come without a split")
    parser.add_argument("--limit-per-class", type=int, metavar="N",
                        help="train on the first N training clips of each class only (the dev clips stay those of a "
                             "run without it); only the clips a run uses are read")
    parser.add_argument("--limit-val", type=int, metavar="N",
                        help="score the first N dev clips and the first N evaluation (val or test) clips of each "
                             "class only, for a quick run (default: all)")
    clips = parser.add_argument_group("frames")
    clips.add_argument("--num-frames", type=int, default=8, help="frames sampled evenly from each video (video folders)")
    clips.add_argument("--frame-size", type=int, default=112, help="video frames are resized to this square (video/frame folders)")
    clips.add_argument("--backbone", choices=BACKBONES, default="mobilenet_v2",
                       help="per-frame CNN; mobilenet_v2 and efficientnet_lite0/1/2 have offline ImageNet weights "
                            "(EfficientNet-Lite was trained at 224/240/260 px), resnet18 only with --allow-download")
    clips.add_argument("--image-size", type=int, default=112, help="frames are resized to this for the CNN (default %(default)s)")
    clips.add_argument("--finetune", action="store_true", help="train the CNN too (slow on a CPU); default: frozen features")
    clips.add_argument("--finetune-from", type=int, default=0, metavar="K",
                       help="train the backbone's feature blocks K.. only (implies --finetune), on cached maps of "
                            "the frozen blocks; of 0..18 for mobilenet_v2, 0..17 for efficientnet_lite0, 0..22 for "
                            "efficientnet_lite1/2 (0 = the whole backbone with --finetune)")
    clips.add_argument("--views", type=int, default=6,
                       help="random augmented views cached per training clip with --finetune-from (default %(default)s)")
    clips.add_argument("--temporal-shift", action="store_true",
                       help="TSM: shift a quarter of the channels one frame back and forward in time inside the "
                            "fine-tuned residual blocks (needs --finetune or --finetune-from)")
    clips.add_argument("--backbone-lr-scale", type=float, default=0.1,
                       help="the backbone's learning rate as a share of the head's when fine-tuning (default %(default)s)")
    clips.add_argument("--allow-download", action="store_true", help="let torchvision download resnet18's ImageNet weights")
    clips.add_argument("--flip-augment", action="store_true", help="add left-right mirrored clips to training (not keypoint)")
    clips.add_argument("--tta-flip", action="store_true", help="average predictions with the mirrored clip at evaluation")
    clips.add_argument("--cache-dir", type=Path, default=CACHE_ROOT,
                       help="where per-clip features and keypoints are kept (default %(default)s)")
    clips.add_argument("--no-cache", dest="use_cache", action="store_false", help="recompute features/keypoints, write no cache")
    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--hidden", type=int, default=0, help="hidden units: frame/tsn MLP layer (0 = linear), GRU size (0 = 128)")
    model.add_argument("--layers", type=int, default=1, help="GRU layers")
    model.add_argument("--unidirectional", dest="bidirectional", action="store_false", help="GRU in one direction only")
    model.add_argument("--dropout", type=float, default=0.5)
    model.add_argument("--feature-noise", type=float, default=0.0, help="Gaussian noise on frozen features in training (x their std)")
    model.add_argument("--batch-size", type=int, default=64)
    model.add_argument("--optimizer", default="adamw", choices=["adam", "adamw", "radam", "sgd"])
    model.add_argument("--learning-rate", type=float, default=1e-3)
    model.add_argument("--weight-decay", type=float, default=1e-2)
    model.add_argument("--scheduler", default="cosine", choices=SCHEDULERS)
    model.add_argument("--label-smoothing", type=float, default=0.1)
    model.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                       help="mixup of whole training clips and their labels, weight ~ Beta(ALPHA, ALPHA); 0 = off")
    model.add_argument("--select", choices=SELECTION, default="dev_acc",
                       help="which epoch becomes best.ckpt: best dev accuracy, lowest dev loss, or the last (default %(default)s)")
    add_trainer_arguments(parser, max_epochs=30)
    return parser


SELECTION = {"dev_acc": ("val_acc", "max"), "dev_loss": ("val_loss", "min"), "last": LAST_EPOCH}


class RandomViewDataset(Dataset):
    """Clip i -> one of its cached views (N, V, ...) drawn afresh at every visit, and its target."""

    def __init__(self, views: np.ndarray, targets: np.ndarray):
        self.views, self.targets = views, torch.as_tensor(targets, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        view = int(torch.randint(self.views.shape[1], ()))
        return torch.from_numpy(self.views[index, view].astype(np.float32)), self.targets[index]


def view_names(args: argparse.Namespace) -> list[str]:
    return ["plain", *(["flip"] if args.flip_augment else []), *(f"aug{k}" for k in range(args.views))]


def in_dev(source: str, fraction: float, seed: int) -> bool:
    """A clip is in dev when a hash of its source and the seed falls below `fraction`: the choice of one
    clip never depends on the others, so a run on a subset (--limit-per-class) holds out the same
    clips as a run on everything, and two models' dev sets line up for fusion."""
    digest = hashlib.sha1(f"{seed}:{source}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2 ** 32 < fraction


def tail_of_each_class(loaded: ClipSelection, fraction: float) -> list[int]:
    """The last round(fraction * n) of each class's n clips in load order, keeping at least one for training."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, clip in enumerate(loaded.clips):
        by_label[clip.label].append(i)
    dev = []
    for indices in by_label.values():
        held_out = min(round(fraction * len(indices)), len(indices) - 1)
        dev.extend(indices[len(indices) - held_out:])
    return sorted(dev)


DEV_SPLITS = ("tail", "hash")


def split_dev(loaded: ClipSelection, fraction: float, seed: int, how: str = "tail") -> tuple[ClipSelection, ClipSelection]:
    """Hold out about `fraction` of the clips as dev: each class's tail (`tail_of_each_class`) or those
    chosen by `in_dev` (hash)."""
    if how not in DEV_SPLITS:
        raise ValueError(f"unknown dev split {how!r}; choose from {DEV_SPLITS}")
    dev = (tail_of_each_class(loaded, fraction) if how == "tail"
           else [i for i, c in enumerate(loaded.clips) if in_dev(c.source, fraction, seed)])
    chosen = set(dev)
    return loaded.take([i for i in range(len(loaded)) if i not in chosen]), loaded.take(dev)


def load_splits(args: argparse.Namespace) -> tuple[LoadedClips, LoadedClips, LoadedClips]:
    """Train, dev and evaluation clips with their frames. The splits and limits are made on the list of
    clips before any frame is decoded, so a run reads only the clips it uses. Dev is split off the whole
    train list before --limit-per-class, so every run holds out the same dev clips; --limit-val keeps the
    first clips of each class of dev and of evaluation. `skipped` of the train clips lists every input left out."""
    found = assign_splits(find_clips(args.data), args.val_fraction, args.seed)
    evaluation = found.select("val") if any(c.split == "val" for c in found.clips) else found.select("test")
    train, dev = split_dev(found.select("train"), args.dev_fraction, args.seed, args.dev_split)
    chosen = (train.first_of_each_class(args.limit_per_class), dev.first_of_each_class(args.limit_val),
              evaluation.first_of_each_class(args.limit_val))
    train, dev, evaluation = (read_clips(replace(subset, skipped=[]), args.num_frames, args.frame_size) for subset in chosen)
    train = replace(train, skipped=found.skipped + train.skipped + dev.skipped + evaluation.skipped)
    for source, reason in train.skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    empty = [label for label in found.labels if label not in set(train.labels)]
    if empty:
        print(f"warning: classes with no training clips are left out: {empty}", file=sys.stderr)
    if len(train.labels) < 2:
        raise InputError(args.data, f"need at least 2 classes with training clips, found {train.labels}")
    return train, dev, evaluation


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    args.finetune = args.finetune or args.finetune_from > 0
    options = trainer_options_from_args(args)
    cache = args.cache_dir if args.use_cache else False
    if args.temporal_shift and not args.finetune:
        raise ValueError("--temporal-shift works inside the fine-tuned CNN: add --finetune or --finetune-from")
    if args.model == "keypoint" and (args.finetune or args.flip_augment):
        raise ValueError("--finetune, --finetune-from and --flip-augment do not apply to the keypoint model")
    train, dev, evaluation = load_splits(args)
    labels = train.labels
    index = {name: i for i, name in enumerate(labels)}

    def tensors(subset: LoadedClips, flips: tuple[bool, ...]) -> TensorDataset:
        subset = subset.take([i for i, c in enumerate(subset.clips) if c.label in index])
        inputs = np.concatenate([model_inputs(args, subset, flip, cache, options.progress_bar) for flip in flips])
        targets = np.tile([index[c.label] for c in subset.clips], len(flips))
        return TensorDataset(torch.from_numpy(inputs), torch.as_tensor(targets, dtype=torch.long))

    def views(subset: LoadedClips) -> RandomViewDataset:
        subset = subset.take([i for i, c in enumerate(subset.clips) if c.label in index])
        encoder = FrameEncoder(args.backbone, args.image_size, args.allow_download, first_trained=args.finetune_from)
        sources = [c.source for c in subset.clips]
        maps = np.stack([cached_stem_maps(sources, subset.frames, encoder, view, args.seed, cache / "features",
                                          progress=options.progress_bar) for view in view_names(args)], axis=1)
        return RandomViewDataset(maps, np.array([index[c.label] for c in subset.clips]))

    if args.finetune_from and cache:
        train_set = views(train)
    else:
        train_set = tensors(train, (False, True) if args.flip_augment else (False,))
    nobody = 0
    if args.model == "keypoint":  # a clip with no person in any frame is all zeros: say how many
        nobody = int((train_set.tensors[0].abs().sum(dim=(1, 2)) == 0).sum())
        print(f"note: no person found in any frame of {nobody} of {len(train_set)} training clips "
              f"(their keypoint input is all zeros)", file=sys.stderr)
    dev_set = tensors(dev if len(dev) else train, (False,))
    input_dim = 0 if args.finetune else int(train_set.tensors[0].shape[-1])  # features or keypoints: from the data
    seed_everything(args.seed)  # before the weights are drawn: the same command gives the same model
    module = ActionModule(labels, args.model, input_dim, args.hidden, args.layers, args.dropout, args.bidirectional,
                          args.backbone, args.image_size, args.finetune, args.allow_download,
                          int(np.shape(train.frames[0])[0]), args.frame_size, args.optimizer, args.learning_rate,
                          args.weight_decay, args.scheduler, args.label_smoothing, args.feature_noise,
                          args.finetune_from, args.backbone_lr_scale, args.mixup, args.temporal_shift)
    run_dir = make_run_dir("action_recognition", args.run_name, args.runs_root)
    result = fit(module, DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                    drop_last=len(train_set) > args.batch_size),
                 DataLoader(dev_set, batch_size=256), options, run_dir, *SELECTION[args.select])
    if not result.trainer.is_global_zero:
        return {}

    model = load_model(result.best_checkpoint)
    known = evaluation.take([i for i, c in enumerate(evaluation.clips) if c.label in index])
    probabilities = predict_probabilities(model, known, args.tta_flip, cache) if len(known) else None
    evaluation_report = report(labels, [c.label for c in known.clips], probabilities) if len(known) else None
    dev_probabilities = predict_probabilities(model, dev, args.tta_flip, cache) if len(dev) else None
    metrics = {"model": args.model, "train_seconds": result.train_seconds, "epochs": result.trainer.current_epoch,
               "labels": labels, "clips": {"train": len(train), "dev": len(dev), "evaluation": len(known)},
               "skipped_files": [list(s) for s in train.skipped], "train_clips_without_person": nobody}
    if evaluation_report is not None:
        metrics["evaluation"] = evaluation_report.as_dict()
    write_run_records(run_dir, config_dict(args), metrics, evaluation_report)
    # Per-clip probabilities, for late fusion (fusion.py) without recomputing anything.
    for name, subset, probs in (("dev", dev, dev_probabilities), ("evaluation", known, probabilities)):
        if probs is not None:
            write_json(run_dir / f"probabilities_{name}.json",
                       {"labels": labels, "sources": [c.source for c in subset.clips],
                        "truth": [c.label for c in subset.clips], "probabilities": np.round(probs, 6)})
    text = (f"{evaluation_report.accuracy:.4f} accuracy, macro-F1 {evaluation_report.macro_f1:.4f} on {len(known)} clips"
            if evaluation_report else "no evaluation clips")
    print(f"{args.model}: {text}; trained in {result.train_seconds:.1f} s; run folder {run_dir}")
    return {"run_dir": run_dir, "best_checkpoint": result.best_checkpoint, "report": evaluation_report,
            "probabilities": probabilities, "dev_probabilities": dev_probabilities, **metrics,
            "evaluation_clips": known, "dev_clips": dev}


if __name__ == "__main__":
    run_main(main)
