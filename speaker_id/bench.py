"""Benchmark on the Free Spoken Digit Dataset (official split) → results/speaker_id.json and the README table.

    python -m speaker_id.bench                     # what `make bench` runs

1. Train on all six speakers (indices 5-49), score the 300 test clips (indices 0-4): test_accuracy, train_seconds.
2. clips_per_second: read the 300 test files and predict them in batches (log-mel in PyTorch, the CNN in
   onnxruntime; best of 3 passes), 2 CPU threads.
3. Open-set verification: train again without two speakers, enrol each held-out speaker from 5 random clips,
   score all their other clips against both enrolled speakers; EER averaged over 10 random enrolments.
   For scale, the same protocol on a classic untrained embedding: per-clip mean and standard deviation of
   20 MFCCs, standardised (the statistics that give 299/300 with logistic regression in closed set).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import core  # noqa: F401  (offline environment first)
import numpy as np
import torch
import torchaudio

from core.results import markdown_table, publish_table, write_results
from speaker_id import train
from speaker_id.data import load_clips, read_clips
from speaker_id.inference import embed, load_model, predict_probabilities
from speaker_id.verification import enrolment_eer

HELD_OUT = ("theo", "yweweler")


def clips_per_second(checkpoint: Path, data: Path, repeats: int = 3) -> float:
    model = load_model(checkpoint)
    test_clips = [c for c in load_clips(data) if c.split == "test"]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        loaded = read_clips(test_clips, model.sample_rate, progress=False)
        predict_probabilities(model, loaded.waveforms)
        best = min(best, time.perf_counter() - started)
    return len(test_clips) / best


def mfcc_statistics(waveforms, sample_rate: int) -> np.ndarray:
    """Per clip: mean and standard deviation over time of 20 MFCCs, standardised across clips."""
    mfcc = torchaudio.transforms.MFCC(sample_rate, n_mfcc=20, melkwargs={"n_fft": 256, "hop_length": sample_rate // 100, "n_mels": 40})
    with torch.inference_mode():
        stats = np.stack([torch.cat([m.mean(1), m.std(1)]).numpy() for m in (mfcc(torch.from_numpy(w)) for w in waveforms)])
    return (stats - stats.mean(axis=0)) / stats.std(axis=0).clip(1e-9)


def heldout_eer(checkpoint: Path, data: Path, enroll_per_speaker: int = 5, repeats: int = 10) -> dict:
    model = load_model(checkpoint)
    loaded = read_clips([c for c in load_clips(data) if c.speaker in HELD_OUT], model.sample_rate, progress=False)
    speakers = [c.speaker for c in loaded.clips]

    def mean_eer(embeddings: np.ndarray) -> list[dict]:
        embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
        return [enrolment_eer(embeddings, speakers, enroll_per_speaker, seed) for seed in range(repeats)]

    runs, baseline = mean_eer(embed(model, loaded.waveforms)), mean_eer(mfcc_statistics(loaded.waveforms, model.sample_rate))
    return {"eer": float(np.mean([r["eer"] for r in runs])), "eer_worst": float(np.max([r["eer"] for r in runs])),
            "eer_mfcc_statistics": float(np.mean([r["eer"] for r in baseline])),
            "target_trials": runs[0]["target_trials"], "nontarget_trials": runs[0]["nontarget_trials"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=train.DEFAULT_DATA, help="FSDD recordings folder (default %(default)s)")
    parser.add_argument("--max-epochs", type=int, default=12)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    common = ["--data", str(args.data), "--max-epochs", str(args.max_epochs), "--no-progress-bar"]

    closed = train.main([*common, "--run-name", "bench-fsdd"])
    report = closed["report"]
    speed = clips_per_second(closed["best_checkpoint"], args.data)
    opened = train.main([*common, "--run-name", "bench-heldout", "--exclude-speakers", ",".join(HELD_OUT)])
    verification = heldout_eer(opened["best_checkpoint"], args.data)

    results = {
        "test_accuracy": report.accuracy,
        "test_correct": int(round(report.accuracy * report.n_samples)),
        "test_clips": report.n_samples,
        "macro_f1": report.macro_f1,
        "train_seconds": closed["train_seconds"],
        "epochs": args.max_epochs,
        "clips_per_second": speed,
        "eer_heldout_speakers": verification["eer"],
        "eer_heldout_worst_of_10": verification["eer_worst"],
        "eer_heldout_mfcc_statistics_baseline": verification["eer_mfcc_statistics"],
        "heldout_speakers": list(HELD_OUT),
        "verification_trials": {"target": verification["target_trials"], "nontarget": verification["nontarget_trials"]},
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],  # > 2 means other jobs shared the 2 cores: timings are pessimistic
        "command": "python -m speaker_id.bench",
    }
    write_results("speaker_id", results)
    table = markdown_table(
        ["metric", "value", "target"],
        [["test accuracy (FSDD official split, 6 speakers)", f"{results['test_accuracy']:.4f} ({results['test_correct']}/{results['test_clips']})", "1.0000 (300/300)"],
         ["macro-F1", f"{results['macro_f1']:.4f}", ""],
         [f"training time ({args.max_epochs} epochs, 2 CPU threads)", f"{results['train_seconds']:.1f} s", "≤ 90 s"],
         ["inference (read + log-mel + CNN in onnxruntime, batched)", f"{results['clips_per_second']:.0f} clips/s", "≥ 1,000 clips/s"],
         [f"EER, 2 held-out speakers ({', '.join(HELD_OUT)}), enrolled from 5 clips, mean of 10", f"{results['eer_heldout_speakers']:.4f}", "≤ 0.02"],
         ["same EER protocol, MFCC mean/std statistics (no training, for scale)", f"{results['eer_heldout_mfcc_statistics_baseline']:.4f}", ""]])
    publish_table("speaker_id", table + f"\n\nFrom `results/speaker_id.json`, written by `python -m speaker_id.bench` "
                  f"(1-minute load average at the end: {results['load_average_1min']:.1f} on 2 cores).")
    print(table)
    return results


if __name__ == "__main__":
    main()
