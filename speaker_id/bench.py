"""Benchmark → results/speaker_id.json and the README table.

    python -m speaker_id.bench                     # what `make bench` runs

Closed set, on the Free Spoken Digit Dataset (official split):
1. Train on all six speakers (indices 5-49), score the 300 test clips (indices 0-4): test_accuracy, train_seconds.
2. clips_per_second: read the 300 test files and predict them in batches (log-mel in PyTorch, the CNN in
   onnxruntime; best of 3 passes), 2 CPU threads.
3. Open-set verification: train again without two speakers, enrol each held-out speaker from 5 random clips,
   score all their other clips against both enrolled speakers; EER averaged over 10 random enrolments.
   For scale, the same protocol on a classic untrained embedding: per-clip mean and standard deviation of
   20 MFCCs, standardised (the statistics that give 299/300 with logistic regression in closed set).

Open set, on `multispeaker` (11 speakers no model here was trained on, 3 corpora, multi-second sentences):
4. For each encoder (`ge2e`, `cnn` = the FSDD model of step 1, `mfcc` = the statistics of step 3), every
   clip through the front-end (Silero VAD), each speaker enrolled from their first 5 clips by file name,
   every other clip scored against every centroid (265 target, 2,650 non-target trials): 11-way
   identification accuracy, EER over all trials and within VCC 2016 (6 speakers, one corpus: the hard part).
5. The accept threshold as a user gets it (`speaker_id.calibrate`: the EER point of development trials),
   but for each pair of speakers calibrated without both of them: false-accept and false-reject rates, and
   how many clips a registry without their speaker would name as someone. Across corpora: calibrated on the
   other corpora only, scored within each corpus.
6. ge2e with S-norm and adaptive S-norm (cohort: the development clips of the other speakers), as tried.
7. Per amount of speech (`--only speech_seconds`): every test clip of step 4 cut to a random piece of each
   bin's length (< 1 s, 1-2 s, 2-4 s; >= 4 s: whole clips), the same voiceprints, and each bin's threshold
   calibrated without the trial's two speakers as `speaker_id.calibrate` calibrates it:
   verification.by_speech_seconds.<bin>.{false_accept_rate, false_reject_rate}.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import core  # noqa: F401  (offline environment first)
import numpy as np
import torch
import torchaudio

from core.cli import run_main
from core.env import SHARED_DATA
from core.metrics import equal_error_rate
from core.results import markdown_table, publish_table, read_results, replace_marked_block, write_results
from speaker_id import train
from speaker_id.calibrate import (MAX_BIN_EER, DevelopmentTrials, default_calibration_path, error_rates,
                                  leave_out_speech_bins, leave_out_thresholds, split_trials, trials_by_speech_seconds,
                                  unenrolled_named_rate)
from speaker_id.data import load_clips, read_clips
from speaker_id.encoders import SpeakerEncoder, load_encoder
from speaker_id.frontend import SAMPLE_RATE, SpeechFrontend
from speaker_id.inference import embed, load_model, predict_probabilities
from speaker_id.verification import enrolment_eer

HELD_OUT = ("theo", "yweweler")
MULTISPEAKER = SHARED_DATA / "speaker_id" / "multispeaker" / "audio"


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
    n_fft = 256 * sample_rate // 8000  # 32 ms
    mfcc = torchaudio.transforms.MFCC(sample_rate, n_mfcc=20, melkwargs={"n_fft": n_fft, "hop_length": sample_rate // 100, "n_mels": 40})
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


class MfccStatisticsEncoder:
    """The untrained baseline of step 3 as an encoder: MFCC mean/std, standardised over the clips it is given."""
    name = "mfcc"

    def spec(self) -> dict:
        return {"name": self.name}

    def embed(self, speech, progress: bool = False) -> np.ndarray:
        return mfcc_statistics(speech, SAMPLE_RATE)


def corpus_of(speaker: str) -> str:
    return speaker.split("_", 1)[0]  # multispeaker folders are <corpus>_<speaker>


def open_set_scores(trials: DevelopmentTrials) -> dict:
    """Identification, EERs and the error rates at thresholds calibrated without the scored speakers."""
    table = trials.table()
    target, nontarget = split_trials(table)
    within_vcc = split_trials(table, lambda x, y: corpus_of(x) == corpus_of(y) == "vcc2016")
    pair_out = leave_out_thresholds(trials)
    corpus_out = leave_out_thresholds(trials, group=corpus_of)
    within_corpus = {pair: scores for pair, scores in table.items() if corpus_of(pair[0]) == corpus_of(pair[1])}
    rates = error_rates(table, pair_out)
    return {"id_accuracy": trials.identification_accuracy(table), "eer": equal_error_rate(target, nontarget)[0],
            "eer_within_vcc": equal_error_rate(*within_vcc)[0],
            "false_accept_rate": rates["false_accept_rate"], "false_reject_rate": rates["false_reject_rate"],
            "threshold_range": [min(pair_out.values()), max(pair_out.values())],
            "unenrolled_named_rate": unenrolled_named_rate(trials, table, pair_out),
            "corpus_out": error_rates(within_corpus, corpus_out),
            "trials": {"target": int(target.size), "nontarget": int(nontarget.size)}}


def multispeaker_benchmark(cnn_checkpoint: Path, data: Path = MULTISPEAKER) -> dict:
    clips = load_clips(data)
    frontend = SpeechFrontend()
    started = time.perf_counter()
    speech = [frontend.read(c.path) for c in clips]  # every clip of this set has speech; an error here is real
    audio_seconds = sum(len(w) for w in speech) / SAMPLE_RATE
    results = {"clips": len(clips), "speech_seconds": audio_seconds,
               "vad_ms_per_audio_second": 1000 * (time.perf_counter() - started) / audio_seconds}
    encoders: list[SpeakerEncoder] = [load_encoder("ge2e"), load_encoder("cnn", cnn_checkpoint), MfccStatisticsEncoder()]
    for encoder in encoders:
        started = time.perf_counter()
        embeddings = encoder.embed(speech, progress=True)
        elapsed = time.perf_counter() - started
        methods = ("none", "snorm", "asnorm") if encoder.name == "ge2e" else ("none",)
        for method in methods:
            trials = DevelopmentTrials.first_clips(embeddings, [c.speaker for c in clips], [c.path for c in clips],
                                                   method=method, top_k=100)
            key = encoder.name if method == "none" else f"{encoder.name}_{method}"
            results[key] = {**open_set_scores(trials), "ms_per_audio_second": 1000 * elapsed / audio_seconds}
            print(f"multispeaker {key}: id {results[key]['id_accuracy']:.3f}, EER {results[key]['eer']:.4f}, "
                  f"within VCC {results[key]['eer_within_vcc']:.4f}")
    results["ge2e"]["shipped_threshold"] = json.loads(default_calibration_path("ge2e").read_text())["threshold"]
    return results


def open_set_table(multispeaker: dict) -> str:
    rows = []
    for key, label in (("ge2e", "**ge2e** (default)"), ("ge2e_snorm", "ge2e + S-norm"), ("ge2e_asnorm", "ge2e + adaptive S-norm (top 100)"),
                       ("cnn", "cnn (FSDD checkpoint)"), ("mfcc", "MFCC mean/std statistics")):
        r = multispeaker[key]
        rows.append([label, f"{r['id_accuracy']:.3f}", f"{r['eer']:.4f}", f"{r['eer_within_vcc']:.4f}", f"{r['false_accept_rate']:.4f}",
                     f"{r['false_reject_rate']:.4f}", f"{r['unenrolled_named_rate']:.3f}",
                     f"{r['corpus_out']['false_accept_rate']:.4f} / {r['corpus_out']['false_reject_rate']:.4f}", f"{r['ms_per_audio_second']:.1f}"])
    rows.append(["target (ge2e)", "", "≤ 0.005", "≤ 0.005", "≤ 0.01", "≤ 0.03", "", "", ""])
    trials = multispeaker["ge2e"]["trials"]
    return (f"Open set, `multispeaker` (11 unseen speakers, enrolled from 5 clips each; {trials['target']} target and "
            f"{trials['nontarget']} non-target trials; thresholds calibrated without the trial's two speakers):\n\n"
            + markdown_table(["encoder", "11-way id", "EER", "EER within VCC", "false accepts", "false rejects",
                              "unenrolled voice named", "other-corpora threshold: FA / FR", "ms per audio s"], rows)
            + f"\n\nThe front-end (Silero VAD) adds {multispeaker['vad_ms_per_audio_second']:.1f} ms per audio second; "
              f"the threshold that ships (`speaker_id/calibration/ge2e.json`, all 11 speakers) is {multispeaker['ge2e']['shipped_threshold']:.3f}.")


def speech_seconds_part(data: Path = MULTISPEAKER) -> dict:
    """Step 7: verification.by_speech_seconds, and its README table."""
    clips = load_clips(data)
    frontend, encoder = SpeechFrontend(), load_encoder("ge2e")
    speech = [frontend.read(c.path) for c in clips]
    trials = DevelopmentTrials.first_clips(encoder.embed(speech, progress=True), [c.speaker for c in clips],
                                           [c.path for c in clips])
    results = leave_out_speech_bins(trials_by_speech_seconds(trials, speech, encoder))
    shipped = json.loads(default_calibration_path("ge2e").read_text())["by_speech_seconds"]
    rows = []
    for key, r in results.items():
        span = f"{r['from']:g}-{r['to']:g} s" if r["to"] else f"≥ {r['from']:g} s"
        rows.append([span, f"{r['target_trials']} / {r['nontarget_trials']}", f"{r['eer']:.4f}", f"{r['false_accept_rate']:.4f}",
                     f"{r['false_reject_rate']:.4f}", f"{r['unenrolled_named_rate']:.3f}",
                     f"{shipped[key]['threshold']:.3f}" + ("" if shipped[key]["usable"] else " (answered `too_short`)"),
                     "" if key == "under_1" else "≤ 0.05"])
    table = (f"Per amount of speech (`multispeaker`, GE2E; every test clip cut to a random piece of each length, the same "
             f"5-clip voiceprints; each bin's threshold calibrated without the trial's two speakers):\n\n"
             + markdown_table(["speech in the clip", "target / non-target trials", "EER", "false accepts", "false rejects",
                               "unenrolled voice named", "shipped threshold", "target (false rejects)"], rows)
             + f"\n\nA bin whose development EER is over {MAX_BIN_EER:g} gives no names: its clips are answered `too_short`. "
               f"From `results/speaker_id.json` (`verification`), written by `python -m speaker_id.bench --only speech_seconds`.")
    replace_marked_block(Path(__file__).parent / "README.md", "results:speaker_id:speech_seconds", table)
    print(table)
    return {"by_speech_seconds": results, "command": "python -m speaker_id.bench --only speech_seconds"}


DIARIZATION_FIGURE = Path(__file__).parent / "diarization_timeline.png"


def diarization_part(conversations: int, development: bool = False) -> dict:
    """The diarization keys (bench_diarization.py), their README table and the timeline picture; `development`:
    the generated sets of the seed the diarizer's defaults were chosen on instead (key `diarization_development`,
    its own README table, no real recordings, no picture)."""
    from speaker_id.bench_diarization import DEVELOPMENT_SEED, diarization_benchmark, diarization_table

    started = time.perf_counter()
    part = "development" if development else "diarization"
    results = (diarization_benchmark(conversations, seed=DEVELOPMENT_SEED, real=False) if development
               else diarization_benchmark(conversations, figure=DIARIZATION_FIGURE))
    results.update(torch_threads=torch.get_num_threads(), load_average_1min=os.getloadavg()[0],
                   bench_seconds=time.perf_counter() - started, date=time.strftime("%Y-%m-%d"),
                   command=f"python -m speaker_id.bench --only {part} --conversations {conversations} "
                           f"--threads {torch.get_num_threads()}")
    table = diarization_table(results)
    key = "diarization_development" if development else "diarization"
    note = (f"\n\nFrom `results/speaker_id.json` (`{key}`), written by `{results['command']}` in "
            f"{results['bench_seconds']:.0f} s (1-minute load average at the end: {results['load_average_1min']:.1f} "
            f"on 2 cores, shared). DER: pyannote.metrics, a collar of ±0.25 s around each reference boundary (md-eval `-c 0.25`), overlapped speech scored; missed and confusion "
            f"are fractions of the scored speech.")
    replace_marked_block(Path(__file__).parent / "README.md", f"results:speaker_id:{key}", table + note)
    print(table)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=train.DEFAULT_DATA, help="FSDD recordings folder (default %(default)s)")
    parser.add_argument("--multispeaker", type=Path, default=MULTISPEAKER, help="open-set speakers, one folder each (default %(default)s)")
    parser.add_argument("--max-epochs", type=int, default=12, help="training epochs of the FSDD CNN (default %(default)s)")
    parser.add_argument("--only", choices=("all", "diarization", "development", "speech_seconds"), default="all",
                        help="run one part only and update its keys in results/speaker_id.json and its README table: "
                             "`diarization` (the diarization sets, minutes), `development` (the generated conversations "
                             "the diarizer's defaults were chosen on, seed 100: not a test) or `speech_seconds` "
                             "(verification per amount of speech, about 2 minutes) (default %(default)s)")
    parser.add_argument("--conversations", type=int, default=20,
                        help="generated conversations per diarization set (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (default %(default)s)")
    args = parser.parse_args(argv)
    from speaker_id.frontend import _silero_vad

    _silero_vad()  # silero_vad's import sets PyTorch to one thread: load it before choosing the count
    torch.set_num_threads(args.threads)
    if args.only != "all":
        try:
            results = read_results("speaker_id")
        except FileNotFoundError:
            results = {}
        if args.only == "diarization":
            results["diarization"] = diarization_part(args.conversations)
        elif args.only == "development":
            results["diarization_development"] = diarization_part(args.conversations, development=True)
        else:
            results["verification"] = speech_seconds_part(args.multispeaker)
        write_results("speaker_id", results)
        return results
    diarization = diarization_part(args.conversations)
    verification_by_seconds = speech_seconds_part(args.multispeaker)
    common = ["--data", str(args.data), "--max-epochs", str(args.max_epochs), "--no-progress-bar"]

    closed = train.main([*common, "--run-name", "bench-fsdd"])
    report = closed["report"]
    speed = clips_per_second(closed["best_checkpoint"], args.data)
    opened = train.main([*common, "--run-name", "bench-heldout", "--exclude-speakers", ",".join(HELD_OUT)])
    verification = heldout_eer(opened["best_checkpoint"], args.data)
    multispeaker = multispeaker_benchmark(closed["best_checkpoint"], args.multispeaker)

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
        "multispeaker": multispeaker,
        "diarization": diarization,
        "verification": verification_by_seconds,
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
    table += "\n\n" + open_set_table(multispeaker)
    publish_table("speaker_id", table + f"\n\nFrom `results/speaker_id.json`, written by `python -m speaker_id.bench` "
                  f"(1-minute load average at the end: {results['load_average_1min']:.1f} on 2 cores).")
    print(table)
    return results


if __name__ == "__main__":
    run_main(main)
