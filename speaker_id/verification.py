"""Enrol speakers from a few clips and identify or verify them without retraining.

A speaker is the mean of their clips' L2-normalised embeddings (re-normalised); a trial's raw score is the
cosine similarity between a clip's embedding and a speaker's. Scores can be normalised against an impostor
cohort (embeddings of other speakers' clips, stored with the registry):
- S-norm (symmetric normalisation): the mean of the score standardised by the claimed speaker's scores
  against the cohort and by the test clip's scores against the cohort;
- adaptive S-norm: the same statistics over only the `top_k` cohort clips closest to each side.
The accept threshold is calibrated on development speakers that are not the ones scored (`calibrate.py`).

The registry is a JSON file that records which encoder (and checkpoint) made the embeddings, so scores are
never mixed across models; it is replaced atomically, the previous version kept as `<name>.bak`.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from core.io import InputError, write_json
from core.metrics import equal_error_rate

NORMALISATIONS = ("none", "snorm", "asnorm")
REGISTRY_VERSION = 2
UNKNOWN, TOO_SHORT = "unknown", "too_short"  # no enrolled voice reaches the threshold / too little speech to say


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)


@dataclass
class ScoreNormaliser:
    method: str = "none"
    cohort: np.ndarray | None = None  # (clips, dim), unit rows
    top_k: int = 100

    def __post_init__(self):
        if self.method not in NORMALISATIONS:
            raise ValueError(f"unknown score normalisation {self.method!r}; choose from {', '.join(NORMALISATIONS)}")
        if self.method != "none" and (self.cohort is None or len(self.cohort) < 2):
            raise ValueError(f"{self.method} needs an impostor cohort of at least 2 clips")

    def _cohort_statistics(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = embeddings @ self.cohort.T
        if self.method == "asnorm" and self.top_k < scores.shape[1]:
            scores = np.sort(scores, axis=1)[:, -self.top_k:]
        return scores.mean(axis=1), scores.std(axis=1).clip(1e-6)

    def __call__(self, scores: np.ndarray, tests: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        """Normalise raw cosine `scores` (tests × centroids)."""
        if self.method == "none":
            return scores
        test_mean, test_std = self._cohort_statistics(tests)
        centroid_mean, centroid_std = self._cohort_statistics(centroids)
        return 0.5 * ((scores - centroid_mean[None, :]) / centroid_std[None, :]
                      + (scores - test_mean[:, None]) / test_std[:, None])

    def to_json(self) -> dict:
        return {"method": self.method, "top_k": self.top_k,
                "cohort": None if self.cohort is None else np.round(self.cohort, 5).tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "ScoreNormaliser":
        cohort = data.get("cohort")
        return cls(data["method"], None if cohort is None else unit_rows(cohort), int(data.get("top_k", 100)))


@dataclass
class SpeakerRegistry:
    encoder: dict  # {"name": "ge2e"} or {"name": "cnn", "checkpoint": ...}: what made every embedding here
    threshold: float
    normaliser: ScoreNormaliser = field(default_factory=ScoreNormaliser)
    calibration: dict = field(default_factory=dict)  # where the threshold came from
    speakers: dict[str, np.ndarray] = field(default_factory=dict)
    clip_counts: dict[str, int] = field(default_factory=dict)
    speech_seconds: dict[str, float] = field(default_factory=dict)  # seconds of speech each voiceprint holds
    # duration-aware thresholds: (seconds of speech from, threshold) of each usable calibrated bin, shortest first;
    # empty: `threshold` for every clip
    speech_thresholds: list[tuple[float, float]] = field(default_factory=list)

    @staticmethod
    def thresholds_from_calibration(by_speech_seconds: dict) -> list[tuple[float, float]]:
        """The usable bins of a calibration's `by_speech_seconds` (speaker_id.calibrate) as `speech_thresholds`."""
        return sorted((float(b["from"]), float(b["threshold"])) for b in by_speech_seconds.values() if b.get("usable"))

    @property
    def min_speech_seconds(self) -> float:
        """The shortest speech the thresholds were calibrated for; less is `too_short`."""
        return self.speech_thresholds[0][0] if self.speech_thresholds else 0.0

    def threshold_for(self, seconds: float | None) -> float | None:
        """The accept threshold for a clip (or cluster) with `seconds` of speech: its bin's, or the one threshold
        when the registry has no bins or `seconds` is not given; None below the shortest calibrated amount."""
        if seconds is None or not self.speech_thresholds:
            return self.threshold
        fitting = [threshold for low, threshold in self.speech_thresholds if low <= seconds]
        return fitting[-1] if fitting else None

    def set_threshold(self, threshold: float) -> None:
        """One threshold for every amount of speech (`--threshold`); too little speech stays `too_short`."""
        self.threshold = threshold
        if self.speech_thresholds:
            self.speech_thresholds = [(self.min_speech_seconds, threshold)]

    def enroll(self, name: str, embeddings: np.ndarray, speech_seconds: float | None = None, add: bool = False) -> None:
        """A new voiceprint for `name` (replacing any), or with `add` the clips added to the existing one: its
        centroid and the new clips' embeddings are averaged, weighted by clip count."""
        if len(embeddings) == 0:
            raise ValueError(f"speaker {name!r}: no usable clips to enrol")
        embeddings = np.asarray(embeddings)
        if add and name in self.speakers:
            old = self.clip_counts[name]
            total = self.speakers[name] * old + embeddings.sum(axis=0)
            self.speakers[name] = unit_rows(total)[0]
            self.clip_counts[name] = old + len(embeddings)
            if speech_seconds is not None and name in self.speech_seconds:
                self.speech_seconds[name] += speech_seconds
            return
        self.speakers[name] = unit_rows(embeddings.mean(axis=0))[0]
        self.clip_counts[name] = len(embeddings)
        if speech_seconds is not None:
            self.speech_seconds[name] = float(speech_seconds)
        else:
            self.speech_seconds.pop(name, None)

    @property
    def names(self) -> list[str]:
        return sorted(self.speakers)

    def scores(self, embeddings: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
        """Normalised scores, one row per clip and one column per speaker (`names`, default all, sorted)."""
        if not self.speakers:
            raise ValueError("no speakers enrolled yet")
        centroids = np.stack([self.speakers[name] for name in (names or self.names)])
        return self.normaliser(embeddings @ centroids.T, embeddings, centroids)

    def _thresholds(self, count: int, speech_seconds: Sequence[float] | None) -> list[float | None]:
        return [self.threshold_for(None if speech_seconds is None else speech_seconds[i]) for i in range(count)]

    def identify(self, embeddings: np.ndarray, speech_seconds: Sequence[float] | None = None) -> list[tuple[str, float]]:
        """Best speaker per clip, or "unknown" when even the best score is under the threshold for the clip's
        seconds of speech, or "too_short" when the clip has less speech than any threshold was calibrated for."""
        scores = self.scores(embeddings)
        best = scores.argmax(axis=1)
        return [(TOO_SHORT if t is None else self.names[b] if s[b] >= t else UNKNOWN, float(s[b]))
                for b, s, t in zip(best, scores, self._thresholds(len(scores), speech_seconds))]

    def verify(self, embeddings: np.ndarray, claimed: str,
               speech_seconds: Sequence[float] | None = None) -> list[tuple[bool | None, float]]:
        """(accepted, score) per clip; accepted is None (too_short) for a clip with less speech than calibrated."""
        if claimed not in self.speakers:
            raise KeyError(f"speaker {claimed!r} is not enrolled; enrolled: {self.names}")
        scores = self.scores(embeddings, [claimed])[:, 0]
        return [(None if t is None else bool(s >= t), float(s))
                for s, t in zip(scores, self._thresholds(len(scores), speech_seconds))]

    def check_encoder(self, encoder: dict, path: str | Path) -> None:
        if encoder != self.encoder:
            raise InputError(path, f"holds {describe_encoder(self.encoder)} embeddings, not {describe_encoder(encoder)}; "
                                   "embeddings of different encoders cannot be compared: use a new registry")

    def save(self, path: str | Path) -> Path:
        """Write atomically; the version it replaces is kept as `<path>.bak`."""
        path = Path(path)
        if path.is_file():
            shutil.copy2(path, path.with_name(path.name + ".bak"))
        encoder = dict(self.encoder)
        if "checkpoint" in encoder:  # relative to the registry, so a folder holding both can move; absolute as a fallback
            absolute = Path(encoder["checkpoint"]).resolve()
            encoder.update(checkpoint=os.path.relpath(absolute, path.resolve().parent), checkpoint_absolute=str(absolute))
        return write_json(path, {"version": REGISTRY_VERSION, "encoder": encoder, "threshold": self.threshold,
                                 "speech_thresholds": [{"from": low, "threshold": t} for low, t in self.speech_thresholds],
                                 "calibration": self.calibration, "normalisation": self.normaliser.to_json(),
                                 "speakers": {n: {"embedding": self.speakers[n].tolist(), "clips": self.clip_counts[n],
                                                  **({"speech_seconds": round(self.speech_seconds[n], 2)}
                                                     if n in self.speech_seconds else {})}
                                              for n in self.names}})

    @classmethod
    def load(cls, path: str | Path) -> "SpeakerRegistry":
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "registry not found (create one with `python -m speaker_id.enroll enroll`)")
        try:
            data = json.loads(path.read_text())
            # Version 1 registries held CNN embeddings only and named just the checkpoint.
            encoder = data["encoder"] if "encoder" in data else {"name": "cnn", "checkpoint": data["checkpoint"]}
            if "checkpoint" in encoder:
                encoder = {"name": encoder["name"], "checkpoint": _checkpoint_path(encoder, path)}
            normaliser = ScoreNormaliser.from_json(data.get("normalisation", {"method": "none"}))
            return cls(encoder, float(data["threshold"]), normaliser, data.get("calibration", {}),
                       {n: np.asarray(s["embedding"], dtype=np.float32) for n, s in data["speakers"].items()},
                       {n: int(s["clips"]) for n, s in data["speakers"].items()},
                       {n: float(s["speech_seconds"]) for n, s in data["speakers"].items() if "speech_seconds" in s},
                       sorted((float(b["from"]), float(b["threshold"])) for b in data.get("speech_thresholds", [])))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise InputError(path, f"not a speaker registry, or a damaged one ({type(error).__name__}: {error}); "
                                   f"an earlier version may be in {path.name}.bak") from error


def _checkpoint_path(encoder: dict, registry: Path) -> str:
    """The absolute path of a registry's checkpoint: stored relative to the registry's folder (found wherever the
    two moved together), else the absolute path it was saved with (the registry moved alone)."""
    relative = (registry.resolve().parent / encoder["checkpoint"]).resolve()
    absolute = encoder.get("checkpoint_absolute")
    return str(relative if relative.is_file() or not absolute else Path(absolute))


def describe_encoder(spec: dict) -> str:
    return spec["name"] + (f" ({spec['checkpoint']})" if spec.get("checkpoint") else "")


# ----------------------------------------------------------------------------------------- trials
def trial_scores(registry: SpeakerRegistry, embeddings: np.ndarray, speakers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every clip against every enrolled speaker: target scores (same speaker) and non-target scores."""
    scores = registry.scores(embeddings)
    same = np.asarray(speakers)[:, None] == np.asarray(registry.names)[None, :]
    return scores[same], scores[~same]


def enrolment_eer(embeddings: np.ndarray, speakers: Sequence[str], enroll_per_speaker: int, seed: int = 0) -> dict:
    """Enrol each speaker from `enroll_per_speaker` random clips, score all their other clips against
    every enrolled speaker, and return the EER with its threshold and trial counts."""
    rng = np.random.default_rng(seed)
    speakers = np.asarray(speakers)
    registry = SpeakerRegistry(encoder={}, threshold=0.0)
    trial_mask = np.ones(len(speakers), dtype=bool)
    for name in sorted(set(speakers)):
        own = np.flatnonzero(speakers == name)
        if len(own) <= enroll_per_speaker:
            raise ValueError(f"speaker {name!r} has {len(own)} clips; need more than {enroll_per_speaker} to enrol and test")
        chosen = rng.choice(own, enroll_per_speaker, replace=False)
        registry.enroll(name, embeddings[chosen])
        trial_mask[chosen] = False
    target, nontarget = trial_scores(registry, embeddings[trial_mask], speakers[trial_mask])
    eer, threshold = equal_error_rate(target, nontarget)
    return {"eer": eer, "threshold": threshold, "target_trials": int(target.size), "nontarget_trials": int(nontarget.size)}
