"""Train the speaker CNN on log-mel spectrograms.

    python -m speaker_id.train --data ../shared/data/speaker_id/recordings --run-name fsdd
    python -m speaker_id.train --data my_speakers/ --max-epochs 30 --devices 2 --strategy ddp

The data is an FSDD folder, a folder per speaker, or a CSV manifest (see speaker_id/data.py). Training
uses the train split minus a validation share (for checkpoint selection); the test split is scored once
with the best checkpoint (lowest validation loss). Outputs go to runs/speaker_id/<run-name>/.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import core  # noqa: F401  (offline environment first)
import numpy as np
import torch
from torch.utils.data import DataLoader

from core.cli import OutputFolder, run_main
from core.env import SHARED_DATA
from core.io import InputError, atomic_path
from core.training import (SCHEDULERS, add_trainer_arguments, config_dict, fit, make_run_dir, seed_everything,
                           trainer_options_from_args, write_run_records)
from speaker_id.data import WaveformDataset, assign_splits, load_clips, read_clips
from speaker_id.inference import embed, evaluate, load_model
from speaker_id.model import SpeakerModule
from speaker_id.verification import enrolment_eer

DEFAULT_DATA = SHARED_DATA / "speaker_id" / "recordings"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="FSDD folder, folder per speaker, or CSV manifest path,speaker[,split] (default %(default)s)")
    parser.add_argument("--run-name", help="folder name under runs/speaker_id/ (default: the start time)")
    parser.add_argument("--runs-root", type=OutputFolder(), help="where runs/ lives (default: the repository's runs/)")
    parser.add_argument("--exclude-speakers", default="", help="comma-separated speakers left out of training (for open-set tests)")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="test share for clips without a split")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of the train split held out for checkpoint selection")
    data = parser.add_argument_group("audio and features")
    data.add_argument("--sample-rate", type=int, default=8000, help="audio is resampled to this rate (Hz)")
    data.add_argument("--clip-seconds", type=float, default=1.0, help="fixed input length: pad or crop to this")
    data.add_argument("--max-shift-seconds", type=float, default=0.1, help="random time shift in training")
    data.add_argument("--n-mels", type=int, default=40)
    data.add_argument("--noise-snr-db", type=float, default=15.0, help="add white noise at SNR in [this, 40] dB; negative = off")
    data.add_argument("--freq-mask", type=int, default=8, help="SpecAugment frequency mask width (0 = off)")
    data.add_argument("--time-mask", type=int, default=10, help="SpecAugment time mask width in frames (0 = off)")
    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--channels", default="8,16,32,64,128", help="channels of the five conv layers")
    model.add_argument("--dropout", type=float, default=0.2)
    model.add_argument("--batch-size", type=int, default=64)
    model.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "radam", "sgd"])
    model.add_argument("--learning-rate", type=float, default=3e-3)
    model.add_argument("--weight-decay", type=float, default=1e-4)
    model.add_argument("--scheduler", default="onecycle", choices=SCHEDULERS)
    model.add_argument("--label-smoothing", type=float, default=0.05)
    add_trainer_arguments(parser, max_epochs=12)
    return parser


def split_validation(train, fraction: float, seed: int):
    """Hold out `fraction` of each speaker's training clips for validation."""
    rng = np.random.default_rng(seed)
    val_index = []
    for speaker in train.speakers:
        own = [i for i, c in enumerate(train.clips) if c.speaker == speaker]
        n_val = int(round(len(own) * fraction))
        val_index.extend(rng.choice(own, n_val, replace=False).tolist() if n_val else [])
    val_set = set(val_index)
    return train.take([i for i in range(len(train.clips)) if i not in val_set]), train.take(sorted(val_set))


def calibrate_threshold(model: SpeakerModule, train, val) -> float:
    """EER threshold for verify/identify: enrol each known speaker from its training clips, score validation clips."""
    embeddings = embed(model, train.waveforms + val.waveforms)
    speakers = [c.speaker for c in train.clips + val.clips]
    enroll_count = min(10, min(sum(s == name for s in speakers) for name in set(speakers)) - 1)
    return enrolment_eer(embeddings, speakers, enroll_per_speaker=max(enroll_count, 1))["threshold"]


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    options = trainer_options_from_args(args)
    seed_everything(args.seed)
    excluded = {s for s in args.exclude_speakers.split(",") if s}
    clips = [c for c in assign_splits(load_clips(args.data), args.test_fraction, args.seed) if c.speaker not in excluded]
    if not clips:
        raise InputError(args.data, "no clips left to train on")
    loaded = read_clips(clips, args.sample_rate, progress=options.progress_bar)
    train, val = split_validation(loaded.select("train"), args.val_fraction, args.seed)
    test = loaded.select("test")
    labels = train.speakers
    missing = sorted(set(loaded.speakers) - set(labels))
    if missing:
        warnings.warn(f"speakers with no training clips are left out: {missing}")
    if len(labels) < 2:
        raise InputError(args.data, f"need at least 2 speakers with training clips, found {labels}")
    index = {name: i for i, name in enumerate(labels)}

    module = SpeakerModule(labels, args.sample_rate, args.clip_seconds, args.n_mels,
                           tuple(int(c) for c in args.channels.split(",")), args.dropout,
                           args.noise_snr_db if args.noise_snr_db >= 0 else None, args.freq_mask, args.time_mask,
                           args.optimizer, args.learning_rate, args.weight_decay, args.scheduler, args.label_smoothing)
    max_shift = int(args.max_shift_seconds * args.sample_rate)

    def loader(subset, shuffle: bool) -> DataLoader:
        keep = [i for i, c in enumerate(subset.clips) if c.speaker in index]
        dataset = WaveformDataset([subset.waveforms[i] for i in keep], [index[subset.clips[i].speaker] for i in keep],
                                  module.num_samples, train=shuffle, max_shift=max_shift, seed=args.seed)
        return DataLoader(dataset, batch_size=args.batch_size, shuffle=shuffle, drop_last=shuffle and len(dataset) > args.batch_size)

    run_dir = make_run_dir("speaker_id", args.run_name, args.runs_root)
    # validation accuracy saturates at 100% within a few epochs on clean speech; the loss still ranks the checkpoints
    result = fit(module, loader(train, True), loader(val if val.clips else train, False), options, run_dir,
                 monitor="val_loss", mode="min")
    if not result.trainer.is_global_zero:
        return {}

    model = load_model(result.best_checkpoint)
    threshold = calibrate_threshold(model, train, val) if val.clips else 0.5
    _store_threshold(result.best_checkpoint, threshold)
    test_known = test.select(speakers=set(labels))
    report = evaluate(model, test_known) if test_known.clips else None
    metrics = {"train_seconds": result.train_seconds, "epochs": result.trainer.current_epoch,
               "verify_threshold": threshold, "speakers": labels,
               "clips": {"train": len(train.clips), "val": len(val.clips), "test": len(test_known.clips)},
               "skipped_files": [[str(p), r] for p, r in loaded.skipped]}
    if report is not None:
        metrics["test"] = report.as_dict()
    write_run_records(run_dir, config_dict(args), metrics, report)
    accuracy = f"test accuracy {report.accuracy:.4f} ({int(round(report.accuracy * report.n_samples))}/{report.n_samples})" if report else "no test clips"
    print(f"{accuracy}; trained in {result.train_seconds:.1f} s; run folder {run_dir}")
    return {"run_dir": run_dir, "best_checkpoint": result.best_checkpoint, "report": report, **metrics}


def _store_threshold(checkpoint: Path, threshold: float) -> None:
    """Keep the calibrated verification threshold with the weights it belongs to."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["hyper_parameters"]["verify_threshold"] = float(threshold)
    with atomic_path(checkpoint) as tmp:
        torch.save(state, tmp)


if __name__ == "__main__":
    run_main(main)
