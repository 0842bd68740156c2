"""Enrol speakers from a few clips and identify or verify them without retraining.

A speaker is the mean of their clips' L2-normalised embeddings (re-normalised); a trial's score is the
cosine similarity between a clip's embedding and a speaker's. The registry is a JSON file that records
which checkpoint made the embeddings, so scores are never mixed across models.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from core.io import InputError, write_json
from core.metrics import equal_error_rate


@dataclass
class SpeakerRegistry:
    checkpoint: str
    threshold: float
    speakers: dict[str, np.ndarray] = field(default_factory=dict)
    clip_counts: dict[str, int] = field(default_factory=dict)

    def enroll(self, name: str, embeddings: np.ndarray) -> None:
        if len(embeddings) == 0:
            raise ValueError(f"speaker {name!r}: no readable clips to enrol")
        centre = embeddings.mean(axis=0)
        self.speakers[name] = centre / max(np.linalg.norm(centre), 1e-12)
        self.clip_counts[name] = len(embeddings)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine scores, one row per clip and one column per enrolled speaker (sorted names)."""
        if not self.speakers:
            raise ValueError("no speakers enrolled yet")
        return embeddings @ np.stack([self.speakers[name] for name in self.names]).T

    @property
    def names(self) -> list[str]:
        return sorted(self.speakers)

    def identify(self, embeddings: np.ndarray) -> list[tuple[str, float]]:
        """Best speaker per clip, or "unknown" when even the best score is under the threshold."""
        scores = self.scores(embeddings)
        best = scores.argmax(axis=1)
        return [(self.names[b] if s[b] >= self.threshold else "unknown", float(s[b])) for b, s in zip(best, scores)]

    def verify(self, embeddings: np.ndarray, claimed: str) -> list[tuple[bool, float]]:
        if claimed not in self.speakers:
            raise KeyError(f"speaker {claimed!r} is not enrolled; enrolled: {self.names}")
        scores = embeddings @ self.speakers[claimed]
        return [(bool(s >= self.threshold), float(s)) for s in scores]

    def save(self, path: str | Path) -> Path:
        return write_json(path, {"checkpoint": self.checkpoint, "threshold": self.threshold,
                                 "speakers": {n: {"embedding": self.speakers[n].tolist(), "clips": self.clip_counts[n]}
                                              for n in self.names}})

    @classmethod
    def load(cls, path: str | Path) -> "SpeakerRegistry":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            return cls(data["checkpoint"], float(data["threshold"]),
                       {n: np.asarray(s["embedding"], dtype=np.float32) for n, s in data["speakers"].items()},
                       {n: int(s["clips"]) for n, s in data["speakers"].items()})
        except (OSError, ValueError, KeyError) as error:
            raise InputError(path, f"not a speaker registry ({error})") from error


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
    registry = SpeakerRegistry(checkpoint="", threshold=0.0)
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
