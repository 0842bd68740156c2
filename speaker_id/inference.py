"""Batched inference on waveforms of any length: class probabilities and speaker embeddings.

Clips longer than the model's window are cut into half-overlapping windows whose outputs are averaged,
so a 10-second VoxCeleb utterance uses all its audio; shorter clips are centred and zero-padded.
Two kinds of model file:
- the released `cnn.onnx` (`make weights`, `export_checkpoint`): the STFT runs in numpy and the rest (mel
  filterbank, log, normalisation, CNN) in onnxruntime, so prediction imports neither PyTorch nor Lightning
  and a one-file predict starts in about 2 s;
- a Lightning checkpoint from `speaker_id.train`: the log-mel front end runs in PyTorch and the CNN in
  onnxruntime (exported once per checkpoint into .cache/speaker_id/onnx/); `backend="torch"` keeps PyTorch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.io import InputError
from core.metrics import ClassificationReport, classification_report
from core.models import ONNX, checked_model, load_lightning_checkpoint, onnx_model_session
from core.onnx import cached_onnx_session, check_backend, export_onnx
from speaker_id.data import LoadedClips, fix_length


def power_spectrogram(waveforms: np.ndarray, n_fft: int, win_length: int, hop_length: int) -> np.ndarray:
    """(batch, samples) -> (batch, n_fft // 2 + 1, frames) |STFT|^2, as torchaudio's Spectrogram computes it:
    a periodic Hann window zero-padded to n_fft, frames centred (reflect padding of n_fft // 2)."""
    waveforms = np.asarray(waveforms, dtype=np.float32)
    padded = np.pad(waveforms, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    window = np.zeros(n_fft, dtype=np.float32)
    left = (n_fft - win_length) // 2
    window[left:left + win_length] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop_length]
    spectrum = np.fft.rfft(frames * window, axis=-1)
    return np.ascontiguousarray((spectrum.real ** 2 + spectrum.imag ** 2).transpose(0, 2, 1), dtype=np.float32)


class ExportedSpeakerModel:
    """The speaker CNN from its ONNX export: what `load_model` returns for a .onnx file."""

    def __init__(self, path: Path, threads: int = 2):
        self.session, meta = onnx_model_session(path, "speaker_id", threads)
        try:
            self.labels = json.loads(meta["labels"])
            self.sample_rate, self.num_samples = int(meta["sample_rate"]), int(meta["num_samples"])
            self.verify_threshold = float(meta["verify_threshold"])
            self.stft = json.loads(meta["stft"])
        except KeyError as missing:
            raise InputError(path, f"not a speaker_id export (no {missing} in its metadata); make one with "
                                   "speaker_id.inference.export_checkpoint") from None

    def heads(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, embeddings) of fixed-length waveforms (batch, num_samples)."""
        power = power_spectrogram(segments, **self.stft)
        probabilities, embeddings = self.session.run(None, {"power": power})
        return probabilities, embeddings


def load_model(checkpoint: str | Path, device: str = "cpu", backend: str = "auto", threads: int | None = None):
    """A model for `predict_probabilities` / `embed`: an `ExportedSpeakerModel` for a .onnx file, else the
    trained SpeakerModule in eval mode; on the CPU its CNN also gets an onnxruntime session (`model.session`)
    unless `backend` is "torch" ("auto" falls back to PyTorch when onnxruntime is missing)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise InputError(checkpoint, "checkpoint not found (train one with `python -m speaker_id.train`)")
    check_backend(backend)
    if checked_model(checkpoint, "speaker_id").format == ONNX:   # by its content, whatever its extension
        return ExportedSpeakerModel(checkpoint, threads or 2)
    import torch

    from speaker_id.model import SpeakerHeads, SpeakerModule

    model = load_lightning_checkpoint(SpeakerModule, checkpoint, "speaker_id", map_location=device)

    def export(target: Path) -> None:
        with torch.no_grad():
            example = model.frontend(torch.zeros(1, model.num_samples))
        export_onnx(SpeakerHeads(model.network), example, target, ["spectrogram"], ["probabilities", "embeddings"],
                    task="speaker_id")

    model.session = (cached_onnx_session(checkpoint, "speaker_id", export, threads or torch.get_num_threads(), backend)
                     if device == "cpu" else None)
    return model


def export_checkpoint(checkpoint: str | Path, target: str | Path) -> Path:
    """The ONNX file of a speaker checkpoint, from the power spectrogram to both heads, with the metadata
    `ExportedSpeakerModel` needs (what `make weights` releases as weights/speaker_id/cnn.onnx)."""
    import torch

    from speaker_id.model import SpeakerHeads

    model = load_model(checkpoint, backend="torch")
    stft = model.frontend.stft
    example = torch.from_numpy(power_spectrogram(np.zeros((1, model.num_samples), np.float32), **stft))
    metadata = {"labels": json.dumps(list(model.labels)), "sample_rate": model.sample_rate,
                "num_samples": model.num_samples, "verify_threshold": model.verify_threshold, "stft": json.dumps(stft)}
    return export_onnx(SpeakerHeads(model.network, model.frontend), example, target, ["power"],
                       ["probabilities", "embeddings"], metadata, task="speaker_id")


def _heads_of(model) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """segments (batch, num_samples) -> (probabilities, embeddings), for either kind of model."""
    if isinstance(model, ExportedSpeakerModel):
        return model.heads
    import torch

    from speaker_id.model import SpeakerHeads

    session = getattr(model, "session", None)
    heads = SpeakerHeads(model.network) if session is None else None

    @torch.inference_mode()
    def run(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spectrogram = model.frontend(torch.from_numpy(segments).to(model.device))
        if session is not None:
            return tuple(session.run(None, {"spectrogram": spectrogram.cpu().numpy()}))
        return tuple(t.cpu().numpy() for t in heads(spectrogram))

    return run


def windows(waveform: np.ndarray, num_samples: int) -> list[np.ndarray]:
    if len(waveform) <= num_samples:
        return [fix_length(waveform, num_samples, None)]
    hop = num_samples // 2
    starts = list(range(0, len(waveform) - num_samples + 1, hop))
    if starts[-1] + num_samples < len(waveform):
        starts.append(len(waveform) - num_samples)
    return [waveform[s:s + num_samples] for s in starts]


def _run_windows(model, waveforms: Sequence[np.ndarray], head: str, batch_size: int) -> np.ndarray:
    """Apply `head` ("probabilities" or "embeddings") to every window and average per clip."""
    segments, owner = [], []
    for i, waveform in enumerate(waveforms):
        parts = windows(waveform, model.num_samples)
        segments.extend(parts)
        owner.extend([i] * len(parts))
    heads = _heads_of(model)
    outputs = []
    for start in range(0, len(segments), batch_size):
        probabilities, embeddings = heads(np.stack(segments[start:start + batch_size]).astype(np.float32))
        outputs.append(probabilities if head == "probabilities" else embeddings)
    stacked = np.concatenate(outputs)
    owner_index = np.asarray(owner)
    averaged = np.zeros((len(waveforms), stacked.shape[1]), dtype=stacked.dtype)
    np.add.at(averaged, owner_index, stacked)
    averaged /= np.bincount(owner_index, minlength=len(waveforms))[:, None]
    if head == "embeddings":
        averaged /= np.linalg.norm(averaged, axis=1, keepdims=True).clip(1e-12)
    return averaged


def predict_probabilities(model, waveforms: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
    return _run_windows(model, waveforms, "probabilities", batch_size)


def embed(model, waveforms: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """L2-normalised embeddings, one row per clip."""
    return _run_windows(model, waveforms, "embeddings", batch_size)


def evaluate(model, loaded: LoadedClips) -> ClassificationReport:
    """Closed-set identification report over the model's speakers."""
    unknown = sorted(set(loaded.speakers) - set(model.labels))
    if unknown:
        raise ValueError(f"speakers not in the model: {unknown}; enrol them instead (speaker_id.enroll)")
    probabilities = predict_probabilities(model, loaded.waveforms)
    predicted = [model.labels[i] for i in probabilities.argmax(axis=1)]
    return classification_report([c.speaker for c in loaded.clips], predicted, labels=model.labels)
