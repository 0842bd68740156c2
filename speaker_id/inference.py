"""Batched inference on waveforms of any length: class probabilities and speaker embeddings.

Clips longer than the model's window are cut into half-overlapping windows whose outputs are averaged,
so a 10-second VoxCeleb utterance uses all its audio; shorter clips are centred and zero-padded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.io import InputError
from core.metrics import ClassificationReport, classification_report
from speaker_id.data import LoadedClips, fix_length
from speaker_id.model import SpeakerModule


def load_model(checkpoint: str | Path, device: str = "cpu") -> SpeakerModule:
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise InputError(checkpoint, "checkpoint not found (train one with `python -m speaker_id.train`)")
    model = SpeakerModule.load_from_checkpoint(checkpoint, map_location=device)
    return model.eval()


def windows(waveform: np.ndarray, num_samples: int) -> list[np.ndarray]:
    if len(waveform) <= num_samples:
        return [fix_length(waveform, num_samples, None)]
    hop = num_samples // 2
    starts = list(range(0, len(waveform) - num_samples + 1, hop))
    if starts[-1] + num_samples < len(waveform):
        starts.append(len(waveform) - num_samples)
    return [waveform[s:s + num_samples] for s in starts]


@torch.inference_mode()
def _run_windows(model: SpeakerModule, waveforms: Sequence[np.ndarray], head: str, batch_size: int) -> np.ndarray:
    """Apply `head` ("probabilities" or "embeddings") to every window and average per clip."""
    segments, owner = [], []
    for i, waveform in enumerate(waveforms):
        parts = windows(waveform, model.num_samples)
        segments.extend(parts)
        owner.extend([i] * len(parts))
    outputs = []
    for start in range(0, len(segments), batch_size):
        batch = torch.from_numpy(np.stack(segments[start:start + batch_size])).to(model.device)
        if head == "probabilities":
            outputs.append(torch.softmax(model(batch), dim=1).cpu())
        else:
            outputs.append(model.embed(batch).cpu())
    stacked = torch.cat(outputs).numpy()
    owner_index = np.asarray(owner)
    averaged = np.zeros((len(waveforms), stacked.shape[1]), dtype=stacked.dtype)
    np.add.at(averaged, owner_index, stacked)
    averaged /= np.bincount(owner_index, minlength=len(waveforms))[:, None]
    if head == "embeddings":
        averaged /= np.linalg.norm(averaged, axis=1, keepdims=True).clip(1e-12)
    return averaged


def predict_probabilities(model: SpeakerModule, waveforms: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
    return _run_windows(model, waveforms, "probabilities", batch_size)


def embed(model: SpeakerModule, waveforms: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """L2-normalised embeddings, one row per clip."""
    return _run_windows(model, waveforms, "embeddings", batch_size)


def evaluate(model: SpeakerModule, loaded: LoadedClips) -> ClassificationReport:
    """Closed-set identification report over the model's speakers."""
    unknown = sorted(set(loaded.speakers) - set(model.labels))
    if unknown:
        raise ValueError(f"speakers not in the model: {unknown}; enrol them instead (speaker_id.enroll)")
    probabilities = predict_probabilities(model, loaded.waveforms)
    predicted = [model.labels[i] for i in probabilities.argmax(axis=1)]
    return classification_report([c.speaker for c in loaded.clips], predicted, labels=model.labels)
