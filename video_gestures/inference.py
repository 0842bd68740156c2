"""Load a sequence model for prediction: the ONNX export in onnxruntime, or a Lightning checkpoint in PyTorch.

    model = load_model("weights/video_gestures/points.onnx")      # the released one (core.weights)
    probabilities, time_attention, channel_attention = model.predict_with_attention(sequences)
    model.labels, model.input_config

The released point-history model ships as ONNX (`model.export_checkpoint`, run by `make weights`), so a
one-input `predict` on a fingertip CSV starts without importing PyTorch or Lightning (seconds, not ten).
A `.ckpt` from `video_gestures.train` loads as a `SequenceModule` with the same three attributes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from core.io import InputError
from core.models import ONNX, checked_model, onnx_model_session

ONNX_INPUT = "sequences"  # (batch, time, channels, features)
ONNX_OUTPUTS = ("probabilities", "time_attention", "channel_attention")  # (N, classes), (N, T), (N, T, C)


class SequenceModel(Protocol):
    labels: list[str]
    input_config: dict  # how inputs were made (point features or embedding backbones), see `SequenceModule`

    def predict_with_attention(self, sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class OnnxSequenceModel:
    """A sequence model exported by `video_gestures.model.export_onnx`, run by onnxruntime; its labels, input
    config and input shape come from the file's metadata."""

    def __init__(self, path: str | Path, threads: int = 2):
        self.session, meta = onnx_model_session(path, "video_gestures", threads)
        try:
            self.labels = json.loads(meta["labels"])
            self.input_config = json.loads(meta["input_config"])
            self.input_shape = tuple(json.loads(meta["input_shape"]))  # (time, channels, features)
        except KeyError as error:
            raise InputError(path, f"not a video_gestures ONNX export (no {error} metadata)") from error

    def predict_with_attention(self, sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Softmax probabilities (N, classes), time attention (N, T) and channel attention (N, T, C)."""
        sequences = np.ascontiguousarray(sequences, dtype=np.float32)
        if sequences.shape[1:] != self.input_shape:
            # the export has a fixed time axis; say so instead of onnxruntime's shape error
            raise ValueError(f"expected (batch, {', '.join(map(str, self.input_shape))}), got {sequences.shape}")
        return tuple(self.session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: sequences}))


def load_model(path: str | Path, threads: int | None = None) -> SequenceModel:
    """An ONNX export: onnxruntime with `threads` (2 when None); a checkpoint from `video_gestures.train`: PyTorch
    with `threads` (PyTorch's default when None). Which one is read from the file, not its extension."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found (train one with `python -m video_gestures.train`, or "
                               "`make weights` for the released ONNX model)")
    if checked_model(path, "video_gestures").format == ONNX:
        return OnnxSequenceModel(path, threads or 2)
    from video_gestures.model import load_sequence_model

    if threads:
        import torch

        torch.set_num_threads(threads)
    return load_sequence_model(str(path))
