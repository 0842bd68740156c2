"""Calibrate the accept threshold (and build the impostor cohort) on development speakers.

    python -m speaker_id.calibrate --encoder ge2e --data ../shared/data/speaker_id/multispeaker/audio \
        -o speaker_id/calibration/ge2e.json

The development set is a folder with one sub-folder of clips per speaker (or a CSV manifest). Each speaker
is enrolled from their first `--enroll-clips` clips by file name, and every other clip is scored against
every speaker. The threshold is the equal-error point of those trials. With `--normalisation snorm|asnorm`
the cohort is every development clip, and each calibration trial is normalised against a cohort without
the trial's two speakers, as it will be for speakers enrolled later.

`leave_out_thresholds` estimates how such a threshold does on speakers it has never seen (the benchmark):
each trial gets the threshold calibrated on the trials of the other speakers only.
"""
from __future__ import annotations

import argparse
import datetime
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

import core  # noqa: F401  (offline environment first)
from core.cli import ModelArgument, OutputFile, run_main, skip
from core.io import InputError, write_json
from core.metrics import equal_error_rate
from speaker_id.data import load_clips
from speaker_id.encoders import ENCODERS, SpeakerEncoder, load_encoder
from speaker_id.frontend import MIN_SPEECH_SECONDS, SAMPLE_RATE, SpeechFrontend
from speaker_id.verification import NORMALISATIONS, ScoreNormaliser, unit_rows

CALIBRATION_DIR = Path(__file__).parent / "calibration"
ENROLL_CLIPS = 5
# (key, from, to) seconds of speech in a scored clip: each bin gets its own threshold; below the first bin's
# lower edge no threshold is calibrated and the answer is `too_short`
SPEECH_BINS = (("under_1", 0.5, 1.0), ("1_to_2", 1.0, 2.0), ("2_to_4", 2.0, 4.0), ("4_and_over", 4.0, math.inf))
MAX_BIN_EER = 0.10  # a bin whose development EER is higher gives no names: its clips are `too_short`


def read_speech(paths, frontend: SpeechFrontend, tell: bool = True) -> tuple[list[np.ndarray], list[int], list[tuple]]:
    """The speech of the files the front-end accepts, their indices, and (path, reason) for the others (each told
    on stderr with `tell`; a caller that reports them itself passes False)."""
    speech, kept, skipped = [], [], []
    for index, path in enumerate(paths):
        try:
            speech.append(frontend.read(path))
            kept.append(index)
        except InputError as error:
            skipped.append((path, error.reason))
            if tell:
                skip(path, error.reason)
    return speech, kept, skipped


@dataclass
class DevelopmentTrials:
    """Every test clip of a development set against every speaker's centroid, with per-trial cohorts."""

    embeddings: np.ndarray  # unit rows, one per clip
    speakers: np.ndarray  # speaker per clip
    enrolled: np.ndarray  # True for the clips that make the centroids
    method: str = "none"
    top_k: int = 100

    @classmethod
    def first_clips(cls, embeddings, speakers, paths, enroll_clips: int = ENROLL_CLIPS, **kwargs) -> "DevelopmentTrials":
        """Enrol each speaker from their first `enroll_clips` clips by file name."""
        speakers = np.asarray(speakers)
        enrolled = np.zeros(len(speakers), dtype=bool)
        for name in sorted(set(speakers)):
            own = sorted(np.flatnonzero(speakers == name), key=lambda i: Path(paths[i]).name)
            if len(own) <= enroll_clips:
                raise ValueError(f"speaker {name!r} has {len(own)} usable clips; need more than {enroll_clips}")
            enrolled[own[:enroll_clips]] = True
        return cls(unit_rows(embeddings), speakers, enrolled, **kwargs)

    @cached_property
    def names(self) -> list[str]:
        return sorted(set(self.speakers))

    @cached_property
    def centroids(self) -> np.ndarray:
        return unit_rows(np.stack([self.embeddings[self.enrolled & (self.speakers == n)].mean(0) for n in self.names]))

    def _normaliser(self, excluded: set[str]) -> ScoreNormaliser:
        if self.method == "none":
            return ScoreNormaliser()
        return ScoreNormaliser(self.method, self.embeddings[~np.isin(self.speakers, sorted(excluded))], self.top_k)

    def scores(self, tested: str, claimed: str, excluded: set[str] = frozenset()) -> np.ndarray:
        """Scores of `tested`'s test clips against `claimed`'s centroid; the cohort leaves out both speakers
        and `excluded`."""
        tests = self.embeddings[(self.speakers == tested) & ~self.enrolled]
        centroid = self.centroids[self.names.index(claimed)][None]
        return self._normaliser({tested, claimed} | set(excluded))(tests @ centroid.T, tests, centroid)[:, 0]

    def table(self, pool: list[str] | None = None, excluded: set[str] = frozenset()) -> dict[tuple[str, str], np.ndarray]:
        """{(tested, claimed): scores} for every pair of speakers in `pool` (default: all)."""
        pool = self.names if pool is None else pool
        return {(x, y): self.scores(x, y, excluded) for x in pool for y in pool}

    def identification_accuracy(self, table: dict[tuple[str, str], np.ndarray]) -> float:
        correct = total = 0
        for x in self.names:
            columns = np.stack([table[x, y] for y in self.names], axis=1)
            correct += int((columns.argmax(axis=1) == self.names.index(x)).sum())
            total += len(columns)
        return correct / total


def speech_crops(speech, low: float, high: float, rng: np.random.Generator) -> list[np.ndarray | None]:
    """One piece of each clip's speech holding between `low` and `high` seconds (random length and start), None
    for a clip with less than `low`; with no upper bound (`high` infinite), the clip's whole speech."""
    crops = []
    for waveform in speech:
        seconds = len(waveform) / SAMPLE_RATE
        if seconds < low:
            crops.append(None)
            continue
        samples = len(waveform) if math.isinf(high) else int(rng.uniform(low, min(high, seconds)) * SAMPLE_RATE)
        start = int(rng.integers(0, len(waveform) - samples + 1))
        crops.append(waveform[start:start + samples])
    return crops


def trials_by_speech_seconds(trials: DevelopmentTrials, speech, encoder: SpeakerEncoder, seed: int = 0,
                             bins=SPEECH_BINS) -> dict[str, DevelopmentTrials]:
    """For each bin of SPEECH_BINS, the development trials again with every test clip cut to a piece of that
    much speech (`speech_crops`; clips with less are left out of the bin); the voiceprints stay the same."""
    rng = np.random.default_rng(seed)
    tests = np.flatnonzero(~trials.enrolled)
    enrolled = np.flatnonzero(trials.enrolled)
    result = {}
    for key, low, high in bins:
        crops = speech_crops([speech[i] for i in tests], low, high, rng)
        kept = [i for i, crop in zip(tests, crops) if crop is not None]
        embedded = (encoder.embed([crop for crop in crops if crop is not None]) if kept
                    else np.zeros((0, trials.embeddings.shape[1]), np.float32))
        result[key] = DevelopmentTrials(np.concatenate([trials.embeddings[enrolled], unit_rows(embedded)]),
                                        np.concatenate([trials.speakers[enrolled], trials.speakers[kept]]),
                                        np.r_[np.ones(len(enrolled), bool), np.zeros(len(kept), bool)],
                                        trials.method, trials.top_k)
    return result


def split_trials(table: dict[tuple[str, str], np.ndarray], keep: Callable[[str, str], bool] = lambda x, y: True):
    """Target and non-target scores of the trials (tested, claimed) that `keep` accepts."""
    target = [s for (x, y), s in table.items() if x == y and keep(x, y)]
    nontarget = [s for (x, y), s in table.items() if x != y and keep(x, y)]
    return (np.concatenate(target) if target else np.zeros(0)), (np.concatenate(nontarget) if nontarget else np.zeros(0))


def calibrated_threshold(trials: DevelopmentTrials, pool: list[str] | None = None, excluded: set[str] = frozenset()) -> float:
    """The equal-error threshold of the trials among `pool`, each normalised without its own speakers."""
    target, nontarget = split_trials(trials.table(pool, excluded))
    return equal_error_rate(target, nontarget)[1]


def leave_out_thresholds(trials: DevelopmentTrials, group: Callable[[str], str] = lambda name: name) -> dict:
    """For each pair of speakers, the threshold calibrated on the speakers outside both their groups.

    With the default grouping (each speaker alone) that is leave-two-speakers-out; grouping by corpus
    calibrates on the other corpora only. Pairs whose leave-out set has no non-target trial get none."""
    thresholds = {}
    for x in trials.names:
        for y in trials.names:
            left_out = {n for n in trials.names if group(n) in {group(x), group(y)}}
            pool = [n for n in trials.names if n not in left_out]
            if len(pool) >= 2:
                thresholds[x, y] = calibrated_threshold(trials, pool, left_out)
    return thresholds


def error_rates(table: dict[tuple[str, str], np.ndarray], thresholds: dict | float) -> dict:
    """False-accept and false-reject rates with a threshold per pair (dict) or one for all (float)."""
    accepted = {"target": [0, 0], "nontarget": [0, 0]}
    for pair, scores in table.items():
        threshold = thresholds.get(pair) if isinstance(thresholds, dict) else thresholds
        if threshold is None:
            continue
        kind = "target" if pair[0] == pair[1] else "nontarget"
        accepted[kind][0] += int((scores >= threshold).sum())
        accepted[kind][1] += len(scores)
    (target_accepted, targets), (false_accepts, nontargets) = accepted["target"], accepted["nontarget"]
    return {"false_accept_rate": false_accepts / max(nontargets, 1), "false_reject_rate": 1 - target_accepted / max(targets, 1),
            "target_trials": targets, "nontarget_trials": nontargets}


def unenrolled_named_rate(trials: DevelopmentTrials, table: dict, thresholds: dict) -> float:
    """Fraction of clips that would be named as an enrolled speaker if their own speaker were not enrolled
    (identification's false alarms: any other speaker's score at or above its threshold)."""
    named = total = 0
    for x in trials.names:
        others = [y for y in trials.names if y != x and (x, y) in thresholds]
        if not others:
            continue
        hits = np.stack([table[x, y] >= thresholds[x, y] for y in others], axis=1).any(axis=1)
        named += int(hits.sum())
        total += len(hits)
    return named / max(total, 1)


def separating_threshold(target: np.ndarray, nontarget: np.ndarray) -> float:
    """The equal-error threshold; when the trials do not overlap at all, the middle of the gap between them
    (any threshold there has no error on these trials; the middle leaves the most room for new speakers)."""
    if target.min() > nontarget.max():
        return float(target.min() + nontarget.max()) / 2
    return equal_error_rate(target, nontarget)[1]


def speech_bin_thresholds(by_bin: dict[str, DevelopmentTrials], pool: list[str] | None = None,
                          excluded: set[str] = frozenset()) -> dict[str, dict]:
    """Per bin of SPEECH_BINS: the threshold (`separating_threshold`) and EER of the trials among `pool`.
    A bin is `usable` when that EER is at most MAX_BIN_EER; below the first usable bin the answer is `too_short`."""
    result = {}
    for key, low, high in SPEECH_BINS:
        target, nontarget = split_trials(by_bin[key].table(pool, excluded))
        calibrated = target.size > 0 and nontarget.size > 0  # a development set may have no clip this long
        eer = equal_error_rate(target, nontarget)[0] if calibrated else None
        result[key] = {"from": low, "to": None if math.isinf(high) else high,
                       "threshold": separating_threshold(target, nontarget) if calibrated else None, "eer": eer,
                       "usable": calibrated and eer <= MAX_BIN_EER,
                       "target_trials": int(target.size), "nontarget_trials": int(nontarget.size)}
    return result


def leave_out_speech_bins(by_bin: dict[str, DevelopmentTrials]) -> dict[str, dict]:
    """What the per-bin thresholds do on speakers they never saw (leave two speakers out, as
    `leave_out_thresholds`): each bin's false-accept and false-reject rates, the share of clips named when their
    own speaker is not enrolled, and the thresholds' range."""
    names = next(iter(by_bin.values())).names
    thresholds: dict[str, dict] = {key: {} for key, _, _ in SPEECH_BINS}
    for x in names:
        for y in names:
            pool = [n for n in names if n not in {x, y}]
            for key, calibrated in speech_bin_thresholds(by_bin, pool, {x, y}).items():
                if calibrated["threshold"] is not None:
                    thresholds[key][x, y] = calibrated["threshold"]
    result = {}
    for key, low, high in SPEECH_BINS:
        if not thresholds[key]:
            continue
        trials = by_bin[key]
        table = trials.table()
        target, nontarget = split_trials(table)
        result[key] = {"from": low, "to": None if math.isinf(high) else high,
                       **error_rates(table, thresholds[key]), "eer": equal_error_rate(target, nontarget)[0],
                       "unenrolled_named_rate": unenrolled_named_rate(trials, table, thresholds[key]),
                       "threshold_range": [min(thresholds[key].values()), max(thresholds[key].values())]}
    return result


def calibrate(encoder: SpeakerEncoder, data: Path, method: str = "none", top_k: int = 100,
              enroll_clips: int = ENROLL_CLIPS, frontend: SpeechFrontend = SpeechFrontend(), seed: int = 0) -> dict:
    clips = load_clips(data)
    speech, kept, skipped = read_speech([c.path for c in clips], frontend)
    if not speech:
        raise InputError(data, "no clip with enough speech")
    embeddings = encoder.embed(speech, progress=True)
    clips = [clips[i] for i in kept]
    trials = DevelopmentTrials.first_clips(embeddings, [c.speaker for c in clips], [c.path for c in clips],
                                           enroll_clips, method=method, top_k=top_k)
    target, nontarget = split_trials(trials.table())
    eer, threshold = equal_error_rate(target, nontarget)
    normaliser = ScoreNormaliser(method, trials.embeddings if method != "none" else None, top_k)
    by_speech = speech_bin_thresholds(trials_by_speech_seconds(trials, speech, encoder, seed))
    return {"encoder": encoder.spec(), "threshold": threshold, "normalisation": normaliser.to_json(),
            "by_speech_seconds": by_speech,
            "calibration": {"data": str(data), "speakers": len(trials.names), "clips": len(clips), "skipped": len(skipped),
                            "enroll_clips": enroll_clips, "target_trials": int(target.size),
                            "nontarget_trials": int(nontarget.size), "eer": eer, "seed": seed,
                            "date": datetime.date.today().isoformat(),
                            "command": "python -m speaker_id.calibrate " + " ".join(sys.argv[1:])}}


def default_calibration_path(encoder_name: str) -> Path:
    return CALIBRATION_DIR / f"{encoder_name}.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", choices=ENCODERS, default="ge2e")
    parser.add_argument("--checkpoint", type=ModelArgument("speaker_id"), help="speaker_id.train checkpoint (with --encoder cnn)")
    parser.add_argument("--data", type=Path, required=True, help="development speakers: one sub-folder per speaker, or a CSV manifest")
    parser.add_argument("--normalisation", choices=NORMALISATIONS, default="none", help="score normalisation (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=100, help="cohort clips per side for asnorm (default %(default)s)")
    parser.add_argument("--enroll-clips", type=int, default=ENROLL_CLIPS, help="clips per speaker for enrolment (default %(default)s)")
    parser.add_argument("--no-vad", action="store_true",
                        help="keep every sample instead of cutting silences (for clips already trimmed to speech)")
    parser.add_argument("--min-speech", type=float, default=MIN_SPEECH_SECONDS,
                        help="skip clips with less speech than this, in seconds (default %(default)s)")
    parser.add_argument("-o", "--output", type=OutputFile(), help="calibration JSON (default speaker_id/calibration/<encoder>.json)")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    result = calibrate(load_encoder(args.encoder, args.checkpoint), args.data, args.normalisation, args.top_k, args.enroll_clips,
                       SpeechFrontend(vad=not args.no_vad, min_speech_seconds=args.min_speech))
    output = args.output or default_calibration_path(args.encoder)
    write_json(output, result)
    info = result["calibration"]
    print(f"{output}: threshold {result['threshold']:.4f} ({args.normalisation}); development EER {info['eer']:.4f} over "
          f"{info['target_trials']} target and {info['nontarget_trials']} non-target trials of {info['speakers']} speakers")
    for key, calibrated in result["by_speech_seconds"].items():
        if calibrated["threshold"] is not None:
            print(f"  {key} s of speech: threshold {calibrated['threshold']:.4f}, development EER {calibrated['eer']:.4f}"
                  + ("" if calibrated["usable"] else f" (over {MAX_BIN_EER}: answered too_short)"))
    return result


if __name__ == "__main__":
    run_main(main)
