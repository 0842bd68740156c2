"""Speaker encoders: speech (16 kHz, from `frontend.SpeechFrontend`) → one L2-normalised embedding per clip.

- `ge2e`: the GE2E speaker encoder (Wan et al. 2018) that the `resemblyzer` wheel ships (`pretrained.pt`,
  Apache-2.0; a 3-layer LSTM trained on thousands of LibriSpeech / VoxCeleb speakers), loaded from the
  installed package with no download. Speech is raised to -30 dBFS as GE2E's training data was (resemblyzer's
  level normalisation), and long clips are cut into 1.6 s windows at 50% overlap whose embeddings are
  averaged (resemblyzer's `embed_utterance`). The default for enrolment: it has heard far more voices
  than any model trained here.
- `cnn`: the pooled embedding of a `speaker_id.train` checkpoint (closed-set FSDD model, 8 kHz).

`spec()` is what a registry records, so embeddings of different encoders (or CNN checkpoints) never meet.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from tqdm import tqdm

from core.io import resample
from core.weights import released
from speaker_id.frontend import SAMPLE_RATE

ENCODERS = ("ge2e", "cnn")


class SpeakerEncoder(Protocol):
    name: str

    def spec(self) -> dict: ...

    def embed(self, speech: Sequence[np.ndarray], progress: bool = False) -> np.ndarray: ...


@lru_cache(maxsize=1)
def _voice_encoder():
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


class Ge2eEncoder:
    name = "ge2e"

    def spec(self) -> dict:
        return {"name": self.name}

    def embed(self, speech: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
        from resemblyzer.audio import normalize_volume

        encoder = _voice_encoder()
        embeddings = [encoder.embed_utterance(normalize_volume(waveform, -30, increase_only=True))
                      for waveform in tqdm(speech, desc="GE2E embeddings", unit="clip", disable=not progress, leave=False)]
        return np.stack(embeddings).astype(np.float32)  # embed_utterance returns unit-length vectors


class CnnEncoder:
    name = "cnn"

    def __init__(self, checkpoint: str | Path):
        from speaker_id.inference import load_model

        self.checkpoint = str(Path(checkpoint).resolve())
        self.model = load_model(checkpoint)

    def spec(self) -> dict:
        return {"name": self.name, "checkpoint": self.checkpoint}

    def embed(self, speech: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
        from speaker_id.inference import embed

        rate = self.model.sample_rate
        return embed(self.model, [w if rate == SAMPLE_RATE else resample(w, SAMPLE_RATE, rate) for w in speech])


def load_encoder(name: str, checkpoint: str | Path | None = None) -> SpeakerEncoder:
    if name == "ge2e":
        return Ge2eEncoder()
    if name == "cnn":
        return CnnEncoder(checkpoint or released("speaker_id", "cnn"))
    raise ValueError(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")


def encoder_from_spec(spec: dict) -> SpeakerEncoder:
    return load_encoder(spec["name"], spec.get("checkpoint"))
