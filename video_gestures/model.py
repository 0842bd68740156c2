"""`CNNBiLSTMWithAttention`: per-frame channels → projection per channel → channel attention → residual BiLSTM → attention over time → linear head.

Input is (batch, time, channels, features). In the original, a frame is 12 channels of 768 features
(ResNeXt50 and ViT embeddings of the whole frame and its left and right halves, ResNeXt's 2048 cut into
three 768 chunks); the landmark path uses e.g. 2 channels of 2 features (fingertip position, velocity).
The network returns logits, and `forward_with_attention` also returns both attention maps for plots.
`export_onnx` writes a module as ONNX (probabilities and both attention maps), which `video_gestures.inference`
runs without PyTorch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from core.io import InputError
from core.models import load_lightning_checkpoint
from core.onnx import export_onnx as core_export_onnx
from core.training import ClassificationModule
from video_gestures.inference import ONNX_INPUT, ONNX_OUTPUTS


CHANNEL_PROJECTIONS = ("separate", "shared")


class CNNBiLSTMWithAttention(nn.Module):
    """1-D convolution over each channel's features (shared across channels and frames), a linear projection per
    channel, softmax attention over the channels of each frame, a BiLSTM whose output is added to its input
    (residual), softmax attention over time, and a linear classifier."""

    def __init__(self, num_classes: int, channels: int, features: int, hidden: int = 128,
                 conv_channels: int = 16, kernel_size: int = 5, lstm_layers: int = 1, dropout: float = 0.2,
                 deltas: bool = False, centre_time: bool = False, channel_projection: str = "separate"):
        super().__init__()
        if hidden % 2:
            raise ValueError(f"hidden size must be even (two LSTM directions), got {hidden}")
        self.channels, self.features, self.deltas, self.centre_time = channels, features, deltas, centre_time
        # Input standardisation per channel and feature, fitted on the training set (`fit_input_statistics`)
        # and saved with the weights; identity until fitted.
        self.register_buffer("input_mean", torch.zeros(channels, features))
        self.register_buffer("input_std", torch.ones(channels, features))
        kernel_size = min(kernel_size, features) | 1  # odd and no longer than the features
        # The "CNN": a small conv over the feature axis of every channel; tiny feature vectors (2 coordinates)
        # still pass through it, so one network serves both paths.
        # Long embeddings (768, 1280, 2048 features) are read with a stride, so the conv costs the same for any size.
        stride = max(1, -(-features // 64))
        self.conv = nn.Sequential(nn.Conv1d(1, conv_channels, max(kernel_size, stride) | 1, stride=stride,
                                            padding=max(kernel_size, stride) // 2), nn.GELU(),
                                  nn.AdaptiveAvgPool1d(min(features, 8)))
        # Which channel a vector came from matters. With one projection shared by all channels and a weighted sum
        # over them, a frame is a *set* of channel vectors: "hand in the left half, background in the right" and
        # its mirror image give the same frame vector, so swipe left/right (and rotation direction) cannot be
        # told apart. "separate" gives every channel (view, backbone chunk, delta) its own projection;
        # "shared" is the channel-blind variant, kept for comparison.
        if channel_projection not in CHANNEL_PROJECTIONS:
            raise ValueError(f"channel_projection must be one of {CHANNEL_PROJECTIONS}, got {channel_projection!r}")
        self.channel_projection = channel_projection
        total_channels = channels * (2 if deltas else 1)
        width = conv_channels * min(features, 8) + features
        if channel_projection == "separate":
            bound = width ** -0.5  # nn.Linear's default initialisation range
            self.channel_weight = nn.Parameter(torch.empty(total_channels, width, hidden).uniform_(-bound, bound))
            self.channel_bias = nn.Parameter(torch.empty(total_channels, hidden).uniform_(-bound, bound))
        else:
            self.project = nn.Linear(width, hidden)
        self.project_activation = nn.Sequential(nn.LayerNorm(hidden), nn.GELU())
        self.channel_score = nn.Linear(hidden, 1)  # over 2 x channels when deltas are on
        self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=lstm_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        self.norm = nn.LayerNorm(hidden)
        self.time_score = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.Tanh(), nn.Linear(hidden // 2, 1))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if x.dim() != 4 or x.shape[2] != self.channels or x.shape[3] != self.features:
            raise ValueError(f"expected (batch, time, {self.channels}, {self.features}), got {tuple(x.shape)}")
        x = (self._centred(x) - self.input_mean) / self.input_std
        if self.deltas:  # frame-to-frame change as extra channels: motion made explicit for small data sets
            x = torch.cat([x, torch.diff(x, dim=1, prepend=x[:, :1])], dim=2)
        batch, time, channels, features = x.shape
        # flatten + unsqueeze rather than reshape: the ONNX exporter then keeps the feature length, which the
        # adaptive pooling needs to be exported
        flat = x.flatten(0, 2).unsqueeze(1)  # (B * T * C, 1, features)
        conv = self.conv(flat).flatten(1)
        frame_channels = self._project(torch.cat([conv, flat.squeeze(1)], dim=1).view(batch, time, channels, -1))
        channel_weights = torch.softmax(self.channel_score(frame_channels).squeeze(-1), dim=2)  # (B, T, C)
        frames = (channel_weights.unsqueeze(-1) * frame_channels).sum(dim=2)  # (B, T, H)
        sequence = self.norm(frames + self.lstm(frames)[0])  # residual BiLSTM
        time_weights = torch.softmax(self.time_score(sequence).squeeze(-1), dim=1)  # (B, T)
        pooled = (time_weights.unsqueeze(-1) * sequence).sum(dim=1)
        return self.head(self.dropout(pooled)), {"time": time_weights, "channel": channel_weights}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, width) → (B, T, C, hidden): a linear map (per channel or shared), LayerNorm, GELU."""
        if self.channel_projection == "separate":
            return self.project_activation(torch.einsum("btcw,cwh->btch", x, self.channel_weight) + self.channel_bias)
        return self.project_activation(self.project(x))

    def _centred(self, x: torch.Tensor) -> torch.Tensor:
        """With `centre_time`, each clip minus its mean over time: what stays the same in a clip (the person,
        the background) is removed and only the change over time is left."""
        return x - x.mean(dim=1, keepdim=True) if self.centre_time else x

    @torch.no_grad()
    def fit_input_statistics(self, x: np.ndarray | torch.Tensor) -> None:
        """Set the input standardisation from training sequences (batch, time, channels, features)."""
        x = self._centred(torch.as_tensor(np.asarray(x, dtype=np.float32))).flatten(0, 1)
        self.input_mean.copy_(x.mean(dim=0))
        self.input_std.copy_(x.std(dim=0).clamp_min(1e-3))


class SequenceModule(ClassificationModule):
    """Lightning wrapper: RAdam + OneCycleLR + cross-entropy by default (the original's recipe)."""

    def __init__(self, labels: Sequence[str], channels: int, features: int, hidden: int = 128, conv_channels: int = 16,
                 kernel_size: int = 5, lstm_layers: int = 1, dropout: float = 0.2, optimizer: str = "radam",
                 learning_rate: float = 3e-3, weight_decay: float = 1e-4, scheduler: str = "onecycle",
                 label_smoothing: float = 0.0, input_config: dict | None = None, deltas: bool = False,
                 centre_time: bool = False, channel_projection: str = "separate"):
        super().__init__(labels, optimizer, learning_rate, weight_decay, scheduler, label_smoothing)
        self.save_hyperparameters()
        # How inputs were made (point features, or backbones/views/frames of the embedding cache), so that
        # predict.py rebuilds the same front end from the checkpoint alone.
        self.input_config = dict(input_config or {})
        self.network = CNNBiLSTMWithAttention(len(labels), channels, features, hidden, conv_channels, kernel_size,
                                              lstm_layers, dropout, deltas, centre_time, channel_projection)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.network.forward_with_attention(x)

    def predict_with_attention(self, sequences: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The module-level `predict_with_attention` as a method, so a checkpoint and its ONNX export
        (`video_gestures.inference.OnnxSequenceModel`) are used alike."""
        return predict_with_attention(self, sequences)


class ProbabilitiesWithAttention(nn.Module):
    """The network as exported: softmax probabilities, time attention and channel attention (a tuple, as
    ONNX outputs are)."""

    def __init__(self, network: CNNBiLSTMWithAttention):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, attention = self.network.forward_with_attention(x)
        return torch.softmax(logits, dim=1), attention["time"], attention["channel"]


def load_sequence_model(checkpoint: str) -> SequenceModule:
    if not Path(checkpoint).is_file():
        raise InputError(checkpoint, "checkpoint not found (train one with `python -m video_gestures.train`)")
    return load_lightning_checkpoint(SequenceModule, checkpoint, "video_gestures")


def export_onnx(module: SequenceModule, target: str | Path) -> Path:
    """Write `module` as ONNX: input `sequences` (batch, time, channels, features), outputs as
    `predict_with_attention`. The time axis is fixed at the clip length it was trained on (`num_frames`, which
    predict and the live window always pass); metadata holds the labels, the input config and that shape (JSON).
    Models trained with `--deltas` do not export (the TorchScript exporter has no torch.diff)."""
    network = module.network
    time_steps = int(module.input_config.get("num_frames", 16))
    example = torch.zeros(1, time_steps, network.channels, network.features)
    metadata = {"labels": json.dumps(list(module.labels)), "input_config": json.dumps(module.input_config),
                "input_shape": json.dumps(list(example.shape[1:]))}
    return core_export_onnx(ProbabilitiesWithAttention(network), example, target, [ONNX_INPUT], ONNX_OUTPUTS, metadata,
                            task="video_gestures")


def export_checkpoint(checkpoint: str | Path, target: str | Path) -> Path:
    """The ONNX file of a checkpoint (what `make weights` releases beside points.ckpt)."""
    return export_onnx(load_sequence_model(str(checkpoint)), target)


@torch.inference_mode()
def predict_with_attention(model: SequenceModule, sequences: np.ndarray | torch.Tensor, batch_size: int = 256
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax probabilities (N, classes), time attention (N, T) and channel attention (N, T, C)."""
    model.eval()
    sequences = torch.as_tensor(np.asarray(sequences, dtype=np.float32))
    probabilities, times, channels = [], [], []
    for start in range(0, len(sequences), batch_size):
        logits, attention = model.forward_with_attention(sequences[start:start + batch_size])
        probabilities.append(torch.softmax(logits, dim=1))
        times.append(attention["time"])
        channels.append(attention["channel"])
    return torch.cat(probabilities).numpy(), torch.cat(times).numpy(), torch.cat(channels).numpy()


def attention_statistics(time_attention: np.ndarray, channel_attention: np.ndarray) -> dict:
    """Mean attention per time step and per channel, and where each is largest and smallest
    (the original printed these after training)."""
    time_mean = np.asarray(time_attention).mean(axis=0)
    channel_mean = np.asarray(channel_attention).mean(axis=(0, 1))
    return {"time_mean": time_mean.tolist(), "time_argmax": int(time_mean.argmax()), "time_argmin": int(time_mean.argmin()),
            "channel_mean": channel_mean.tolist(), "channel_argmax": int(channel_mean.argmax()),
            "channel_argmin": int(channel_mean.argmin())}


def format_attention_statistics(stats: dict) -> str:
    time = " ".join(f"{v:.3f}" for v in stats["time_mean"])
    channel = " ".join(f"{v:.3f}" for v in stats["channel_mean"])
    return (f"attention over time: mean per step [{time}]; argmax step {stats['time_argmax']}, argmin step {stats['time_argmin']}\n"
            f"attention over channels: mean per channel [{channel}]; argmax channel {stats['channel_argmax']}, "
            f"argmin channel {stats['channel_argmin']}")


def plot_attention(time_attention: np.ndarray, channel_attention: np.ndarray, labels: Sequence[str] | None = None,
                   targets: Sequence[int] | None = None, channel_names: Sequence[str] | None = None):
    """Two panels: mean attention over time (per class when targets are given) and mean attention per channel."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    time_attention, channel_attention = np.asarray(time_attention), np.asarray(channel_attention)
    figure, (time_axes, channel_axes) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = np.arange(time_attention.shape[1])
    if targets is not None and labels is not None:
        targets = np.asarray(targets)
        for index, name in enumerate(labels):
            if (targets == index).any():
                time_axes.plot(steps, time_attention[targets == index].mean(axis=0), marker="o", ms=3, label=name)
        time_axes.legend(fontsize=8)
    else:
        time_axes.plot(steps, time_attention.mean(axis=0), marker="o", ms=3)
    time_axes.set(title="attention over time", xlabel="frame", ylabel="mean weight")
    time_axes.grid(alpha=0.3)
    channel_mean = channel_attention.mean(axis=(0, 1))
    names = list(channel_names) if channel_names else [str(i) for i in range(len(channel_mean))]
    channel_axes.bar(names, channel_mean)
    channel_axes.set(title="attention over channels", ylabel="mean weight")
    channel_axes.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    return figure
