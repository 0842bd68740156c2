"""Batched inference on waveforms of any length: class probabilities and speaker embeddings.

Clips longer than the model's window are cut into half-overlapping windows whose outputs are averaged,
so a 10-second VoxCeleb utterance uses all its audio; shorter clips are centred and zero-padded.
The log-mel front end runs in PyTorch; the CNN runs in onnxruntime (exported once per checkpoint into
.cache/speaker_id/onnx/), several times faster on a CPU than eager PyTorch; `backend="torch"` keeps PyTorch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.io import InputError
from core.metrics import ClassificationReport, classification_report
from core.onnx import cached_onnx_session, check_backend, export_onnx
from speaker_id.data import LoadedClips, fix_length
from speaker_id.model import SpeakerModule


class _Heads(torch.nn.Module):
    """The CNN with both outputs the tasks need: class probabilities and L2-normalised embeddings."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, spectrogram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.network.embed(spectrogram)
        probabilities = torch.softmax(self.network.classifier(embedding), dim=1)
        return probabilities, torch.nn.functional.normalize(embedding, dim=1)


def load_model(checkpoint: str | Path, device: str = "cpu", backend: str = "auto", threads: int | None = None) -> SpeakerModule:
    """The trained module in eval mode; on the CPU its CNN also gets an onnxruntime session (`model.session`)
    unless `backend` is "torch" ("auto" falls back to PyTorch when onnxruntime is missing)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise InputError(checkpoint, "checkpoint not found (train one with `python -m speaker_id.train`)")
    check_backend(backend)
    model = SpeakerModule.load_from_checkpoint(checkpoint, map_location=device).eval()

    def export(target: Path) -> None:
        with torch.no_grad():
            example = model.frontend(torch.zeros(1, model.num_samples))
        export_onnx(_Heads(model.network), example, target, ["spectrogram"], ["probabilities", "embeddings"])

    model.session = (cached_onnx_session(checkpoint, "speaker_id", export, threads or torch.get_num_threads(), backend)
                     if device == "cpu" else None)
    return model


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
    session = getattr(model, "session", None)
    heads = _Heads(model.network) if session is None else None
    outputs = []
    for start in range(0, len(segments), batch_size):
        batch = torch.from_numpy(np.stack(segments[start:start + batch_size])).to(model.device)
        spectrogram = model.frontend(batch)
        if session is not None:
            probabilities, embeddings = session.run(None, {"spectrogram": spectrogram.cpu().numpy()})
        else:
            probabilities, embeddings = (t.cpu().numpy() for t in heads(spectrogram))
        outputs.append(probabilities if head == "probabilities" else embeddings)
    stacked = np.concatenate(outputs)
    owner_index = np.asarray(owner)
    averaged = np.zeros((len(waveforms), stacked.shape[1]), dtype=stacked.dtype)
    np.add.at(averaged, owner_index, stacked)
    averaged /= np.bincount(owner_index, minlength=len(waveforms))[:, None]
    if head == "embeddings":
        averaged /= np.linalg.norm(averaged, axis=1, keepdims=True).clip(1e-12)
    return averaged


def predict_probabilities(model: SpeakerModule, waveforms: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
    return _run_windows(model, waveforms, "probabilities", batch_size)


def embed(model: SpeakerModule, waveforms: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
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
