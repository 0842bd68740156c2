"""Train `CNNBiLSTMWithAttention` on gesture sequences (RAdam + OneCycleLR, best checkpoint, attention statistics).

    python -m video_gestures.train --source points --run-name points          # MediaPipe fingertip trajectories
    python -m video_gestures.train --source cache --cache runs/video_gestures/clips.h5 --run-name clips
    python -m video_gestures.train --source clips --data my_clips/ --backbone mobilenet_v2 --run-name clips

`points` reads the point-history CSV (16 fingertip positions per sequence) and adds `--none-sequences` generated
paths of a hand wandering at random as the class `none` (motion that is none of the gestures; see
video_gestures.data.non_gesture_sequences); their held-out share is scored apart from the recorded ones; `cache` reads per-frame embeddings
from an HDF5 cache (see video_gestures/embeddings.py); `clips` builds that cache from a frame/video folder first.
A stratified `--test-fraction` (grouped by video) is held out and scored once with the best checkpoint; a
further `--val-fraction` of the training part selects the checkpoint. Outputs go to runs/video_gestures/<run-name>/:
config.json, metrics.json (with attention statistics), curves.png, confusion.png, attention.png, best.ckpt.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import core  # noqa: F401  (offline environment first)
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from core.cli import OutputFolder, run_main
from core.env import SHARED_DATA
from core.io import InputError, atomic_path, save_figure
from core.metrics import classification_report
from core.training import (SCHEDULERS, add_trainer_arguments, config_dict, fit, make_run_dir, seed_everything,
                           trainer_options_from_args, write_run_records)
from video_gestures.data import (NONE, POINT_HISTORY_FEATURES, grouped_stratified_split, non_gesture_paths, non_gesture_sequences,
                                 point_history_features, read_point_history, stratified_split)
from video_gestures.model import (CHANNEL_PROJECTIONS, SequenceModule, attention_statistics, format_attention_statistics,
                                  load_sequence_model, plot_attention, predict_with_attention)

DEFAULT_POINTS = SHARED_DATA / "video_gestures" / "mediapipe_point_history" / "point_history.csv"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["points", "cache", "clips"], default="points",
                        help="points: point-history CSV; cache: HDF5 embedding cache; clips: frame/video folder (default %(default)s)")
    parser.add_argument("--points", type=Path, default=DEFAULT_POINTS, help="point-history CSV (default %(default)s)")
    parser.add_argument("--none-sequences", type=int, default=1500,
                        help="for --source points: generated non-gesture fingertip paths added as the class `none` "
                             "(0: no such class) (default %(default)s)")
    parser.add_argument("--none-seed", type=int, default=1,
                        help="seed of those paths; the benchmark tests on seed 0's, so keep it apart (default %(default)s)")
    parser.add_argument("--resting-classes", default="Stop",
                        help="for --source points: classes that are answers but never gestures (upstream's Stop is a "
                             "fingertip held still, which a hand at rest does too), stored in the model (default %(default)s)")
    parser.add_argument("--false-gestures-per-minute", type=float, default=0.5,
                        help="for --source points with a none class: the gesture threshold on the smoothed probability is "
                             "the smallest giving at most this many gestures per minute on 20 minutes of generated "
                             "non-gesture paths of the training seed (half the issue's target of 1) (default %(default)s)")
    parser.add_argument("--point-features", default=",".join(POINT_HISTORY_FEATURES),
                        help="channels per step for the points source: position, velocity or both (default %(default)s)")
    parser.add_argument("--cache", type=Path, help="HDF5 embedding cache (read for --source cache, written for clips)")
    parser.add_argument("--data", type=Path, help="frame/video folder for --source clips")
    parser.add_argument("--layout", default="auto", choices=["auto", "frames", "jester", "videos"], help="clip folder layout")
    parser.add_argument("--labels-csv", type=Path, help="video_id;label CSV for the jester layout")
    parser.add_argument("--backbone", default="mobilenet_v2", help="embedding backbone for --source clips (see embeddings.py)")
    parser.add_argument("--num-frames", type=int, default=32, help="frames sampled per clip for --source clips")
    parser.add_argument("--image-size", type=int, default=96, help="backbone input size for --source clips")
    parser.add_argument("--views", default="whole,left,right", help="frame views embedded for --source clips")
    parser.add_argument("--channel-size", type=int,
                        help="features per channel; vectors are cut into zero-padded chunks (default: the largest backbone dim)")
    parser.add_argument("--backbone-checkpoints", default="",
                        help="comma-separated local weight files, one per backbone (empty = built-in/random weights)")
    parser.add_argument("--rebuild-cache", action="store_true", help="rebuild a cache made with other settings instead of stopping")
    parser.add_argument("--allow-gaps", action="store_true", help="keep videos with gaps in their frame numbers")
    parser.add_argument("--shuffle-time", action="store_true",
                        help="control: shuffle the frame order of every sequence (a temporal model must fall to chance)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default; 1 is often fastest on a busy machine)")
    parser.add_argument("--run-name", help="folder name under runs/video_gestures/ (default: the start time)")
    parser.add_argument("--runs-root", type=OutputFolder(), help="where runs/ lives (default: the repository's runs/)")
    parser.add_argument("--test-fraction", type=float, default=0.25, help="stratified hold-out share scored once (default %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of the rest used to pick the checkpoint")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the hold-out split (default %(default)s)")
    parser.add_argument("--monitor", default="val_loss", choices=["val_loss", "val_acc"],
                        help="validation metric that picks the best checkpoint (and early stopping). val_loss by default: "
                             "validation accuracy often reaches 1.0 early and then cannot rank later epochs (default %(default)s)")
    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--hidden", type=int, default=64, help="LSTM output size (both directions) and projection size")
    model.add_argument("--conv-channels", type=int, default=16, help="filters of the per-channel feature convolution")
    model.add_argument("--lstm-layers", type=int, default=1, help="stacked BiLSTM layers (default %(default)s)")
    model.add_argument("--dropout", type=float, default=0.2, help="dropout before the head (and between LSTM layers)")
    model.add_argument("--standardize", action="store_true",
                       help="standardise every input feature with training-set mean and std (stored in the checkpoint)")
    model.add_argument("--deltas", action="store_true", help="add frame-to-frame differences as extra channels inside the model")
    model.add_argument("--channel-projection", default="separate", choices=CHANNEL_PROJECTIONS,
                       help="separate: every channel (view, backbone chunk) has its own projection, so the model knows "
                            "which half of the frame a vector came from; shared: one channel-blind projection (default %(default)s)")
    model.add_argument("--centre-time", action="store_true",
                       help="subtract each clip's mean over time inside the model (removes who and where, keeps the motion)")
    model.add_argument("--batch-size", type=int, default=64, help="sequences per batch (default %(default)s)")
    model.add_argument("--optimizer", default="radam", choices=["adam", "adamw", "radam", "sgd"], help="default %(default)s (the original)")
    model.add_argument("--learning-rate", type=float, default=5e-3, help="peak learning rate of the one-cycle schedule")
    model.add_argument("--weight-decay", type=float, default=1e-4, help="L2 weight decay (default %(default)s)")
    model.add_argument("--scheduler", default="onecycle", choices=SCHEDULERS, help="default %(default)s (the original, stepped per batch)")
    model.add_argument("--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing (default %(default)s)")
    add_trainer_arguments(parser, max_epochs=30)
    return parser


def load_sequences(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, dict, np.ndarray]:
    """(sequences (N, T, C, F), targets, labels, groups for the split, input config with channel names, which
    sequences are generated)."""
    if args.source == "points":
        history = read_point_history(args.points)
        if args.none_sequences < 0:
            raise InputError("--none-sequences", f"must be 0 or more, got {args.none_sequences}")
        if NONE in history.labels:
            raise InputError(args.points, f"already has a class named {NONE!r}; train with --none-sequences 0")
        none = non_gesture_sequences(args.none_sequences, history.sequences.shape[1], args.none_seed)
        sequences = np.concatenate([history.sequences, none])
        targets = np.concatenate([history.targets, np.full(len(none), len(history.labels))])
        labels = [*history.labels, NONE] if len(none) else history.labels
        features = [f for f in args.point_features.split(",") if f]
        x = point_history_features(sequences, features)
        config = {"source": "points", "point_features": features, "num_frames": x.shape[1], "channel_names": features,
                  "resting_labels": [c for c in args.resting_classes.split(",") if c in labels]}
        return x, targets, labels, np.arange(len(x)).astype(str), config, np.arange(len(x)) >= len(history.sequences)
    from video_gestures.embeddings import build_cache_for_folder, read_cache

    if args.source == "clips":
        if args.data is None:
            raise InputError("--data", "--source clips needs a frame/video folder")
        args.cache = args.cache or (make_run_dir("video_gestures", args.run_name, args.runs_root) / "embeddings.h5")
        build_cache_for_folder(args.data, args.cache, layout=args.layout, labels_csv=args.labels_csv,
                               backbone=args.backbone, num_frames=args.num_frames, image_size=args.image_size,
                               views=args.views.split(","), channel_size=args.channel_size,
                               checkpoints=[c or None for c in args.backbone_checkpoints.split(",")] if args.backbone_checkpoints else (),
                               rebuild=args.rebuild_cache, allow_gaps=args.allow_gaps, progress=args.progress_bar)
    if args.cache is None:
        raise InputError("--cache", "--source cache needs an HDF5 cache path")
    cache = read_cache(args.cache)
    return (cache.embeddings, cache.targets, cache.labels, cache.video_ids, {"source": "embeddings", **cache.config},
            np.zeros(len(cache.targets), bool))


def shuffle_time(x: np.ndarray, seed: int) -> np.ndarray:
    """Every sequence's steps in a random order of their own (the temporal-order control)."""
    rng = np.random.default_rng(seed)
    return np.stack([s[rng.permutation(len(s))] for s in x])


def train_sequences(x: np.ndarray, y: np.ndarray, labels: list[str], groups: np.ndarray, args: argparse.Namespace,
                    input_config: dict | None = None, generated: np.ndarray | None = None) -> dict:
    """Split, train, score the hold-out with the best checkpoint, print and plot attention; returns metrics.
    The `generated` sequences (the `none` class) are split like the others, but their hold-out is scored apart:
    `test` is the recorded sequences' alone."""
    options = trainer_options_from_args(args)
    names = np.array(labels)[y]
    test_mask = (stratified_split(y, args.test_fraction, args.split_seed) if len(set(groups)) == len(groups)
                 else grouped_stratified_split(names, groups, args.test_fraction, args.split_seed))
    train_index, test_index = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    val_inner = grouped_stratified_split(names[train_index], groups[train_index], args.val_fraction, args.split_seed + 1)
    val_index, train_index = train_index[val_inner], train_index[~val_inner]
    if len(set(y[train_index])) < 2:
        raise InputError(args.source, f"need at least 2 classes to train, found {sorted(set(names[train_index]))}")

    def loader(index: np.ndarray, shuffle: bool) -> DataLoader:
        dataset = TensorDataset(torch.from_numpy(np.ascontiguousarray(x[index], dtype=np.float32)), torch.from_numpy(y[index]).long())
        return DataLoader(dataset, batch_size=args.batch_size, shuffle=shuffle, drop_last=shuffle and len(index) > args.batch_size)

    seed_everything(args.seed)  # before the weights are drawn: the same command gives the same model
    module = SequenceModule(labels, x.shape[2], x.shape[3], args.hidden, args.conv_channels, 5, args.lstm_layers,
                            args.dropout, args.optimizer, args.learning_rate, args.weight_decay, args.scheduler,
                            args.label_smoothing, input_config, args.deltas, args.centre_time, args.channel_projection)
    if args.standardize:
        module.network.fit_input_statistics(x[train_index])
    channel_names = (input_config or {}).get("channel_names")
    if channel_names and args.deltas:
        channel_names = [*channel_names, *(f"Δ{name}" for name in channel_names)]
    run_dir = make_run_dir("video_gestures", args.run_name, args.runs_root)
    result = fit(module, loader(train_index, True), loader(val_index if len(val_index) else train_index, False), options, run_dir,
                 monitor=args.monitor, mode="min" if args.monitor == "val_loss" else "max")
    if not result.trainer.is_global_zero:
        return {}
    model = load_sequence_model(str(result.best_checkpoint))
    generated = np.zeros(len(x), bool) if generated is None else generated
    generated_test, test_index = test_index[generated[test_index]], test_index[~generated[test_index]]
    probabilities, time_attention, channel_attention = predict_with_attention(model, x[test_index])
    report = classification_report(names[test_index], np.array(labels)[probabilities.argmax(axis=1)], labels=labels)
    stats = attention_statistics(time_attention, channel_attention)
    print(format_attention_statistics(stats))
    save_figure(plot_attention(time_attention, channel_attention, labels, y[test_index], channel_names), run_dir / "attention.png")
    metrics = {"test_accuracy": report.accuracy, "test": report.as_dict(), "train_seconds": result.train_seconds,
               "epochs": result.trainer.current_epoch, "attention": stats, "labels": labels,
               "sequences": {"train": len(train_index), "val": len(val_index), "test": len(test_index)},
               "input_shape": list(x.shape[1:])}
    if len(generated_test):
        answers = np.array(labels)[predict_with_attention(model, x[generated_test])[0].argmax(axis=1)]
        metrics["generated_test"] = {"sequences": len(generated_test),
                                     "accuracy": float(np.mean(answers == names[generated_test]))}
        print(f"generated {NONE} hold-out: {metrics['generated_test']['accuracy']:.4f} of {len(generated_test)} answered {NONE}")
    if NONE in labels and model.input_config.get("source") == "points":
        metrics["gesture_threshold"] = calibrate_threshold(model, result.best_checkpoint, args)
        resting = set(model.input_config["resting_labels"])
        gestures = ~np.isin(names[test_index], list(resting))
        kept = (probabilities.max(axis=1) >= model.input_config["gesture_threshold"]) & (probabilities.argmax(axis=1) == y[test_index])
        metrics["gesture_threshold"]["test_gestures_kept"] = float(kept[gestures].mean())
        print(f"gesture threshold {metrics['gesture_threshold']['threshold']:.2f}: recorded hold-out gestures right and "
              f"over it {metrics['gesture_threshold']['test_gestures_kept']:.4f}")
    write_run_records(run_dir, config_dict(args), metrics, report)
    print(f"test accuracy {report.accuracy:.4f} ({int(round(report.accuracy * report.n_samples))}/{report.n_samples}); "
          f"trained in {result.train_seconds:.1f} s; run folder {run_dir}")
    return {"run_dir": run_dir, "best_checkpoint": result.best_checkpoint, "report": report, **metrics}


def calibrate_threshold(model, checkpoint: Path, args: argparse.Namespace) -> dict:
    """Choose the live path's gesture threshold on 20 minutes of generated non-gesture paths (60 of 20 s, seed
    --none-seed + 1: neither the training sequences' nor the benchmark's) and store it in the checkpoint's input
    config. (4 minutes gave too coarse a rate: 0.5 a minute there is 2 occurrences.)"""
    from video_gestures.live import gesture_threshold

    fps, seconds, paths = 30, 20, 60
    threshold, rate = gesture_threshold(model, non_gesture_paths(paths, fps * seconds, args.none_seed + 1), fps,
                                        args.false_gestures_per_minute)
    model.input_config["gesture_threshold"] = threshold
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    saved["hyper_parameters"]["input_config"]["gesture_threshold"] = threshold
    with atomic_path(checkpoint) as tmp:
        torch.save(saved, tmp)
    return {"threshold": threshold, "calibration_per_minute": rate, "calibration_minutes": paths * seconds / 60,
            "calibration_seed": args.none_seed + 1}


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    x, y, labels, groups, input_config, generated = load_sequences(args)
    if args.shuffle_time:
        x = shuffle_time(x, args.seed)
    return train_sequences(x, y, labels, groups, args, input_config, generated)


if __name__ == "__main__":
    run_main(main)
