"""Log-mel front end and the five-layer speaker CNN, wrapped in a LightningModule.

The network's penultimate layer (global average pooling of the last conv block) is the speaker
embedding: `SpeakerModule.embed` returns it L2-normalised, for enrolment and verification.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torchaudio.transforms as T
from torch import nn

from core.training import ClassificationModule


class LogMelFrontend(nn.Module):
    """Waveform (batch, samples) → normalised log-mel (batch, 1, mels, frames).

    In training it adds white noise at a random SNR and SpecAugment masks (both optional)."""

    def __init__(self, sample_rate: int, n_mels: int = 64, window_seconds: float = 0.025, hop_seconds: float = 0.010,
                 noise_snr_db: float | None = None, freq_mask: int = 0, time_mask: int = 0):
        super().__init__()
        win_length = int(round(window_seconds * sample_rate))
        n_fft = 1 << (win_length - 1).bit_length()
        self.mel = T.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, win_length=win_length,
                                    hop_length=int(round(hop_seconds * sample_rate)), n_mels=n_mels,
                                    f_min=20.0, f_max=sample_rate / 2)
        self.norm = nn.BatchNorm1d(n_mels)  # learned per-band normalisation of the log energies
        self.noise_snr_db = noise_snr_db
        self.masks = nn.Sequential(*([T.FrequencyMasking(freq_mask)] if freq_mask else []),
                                   *([T.TimeMasking(time_mask)] if time_mask else []))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise_snr_db is not None:
            waveform = add_noise(waveform, self.noise_snr_db)
        features = self.from_power(self.mel.spectrogram(waveform))
        if self.training and len(self.masks):
            features = self.masks(features.squeeze(1)).unsqueeze(1)
        return features

    def from_power(self, power: torch.Tensor) -> torch.Tensor:
        """Power spectrogram (batch, n_fft // 2 + 1, frames) -> normalised log-mel (batch, 1, mels, frames): the
        part after the STFT, which the ONNX export holds (the STFT itself runs in numpy, `inference.power_spectrogram`)."""
        return self.norm(torch.log(self.mel.mel_scale(power) + 1e-6)).unsqueeze(1)

    @property
    def stft(self) -> dict[str, int]:
        """The STFT's sizes, for `inference.power_spectrogram`."""
        spectrogram = self.mel.spectrogram
        return {"n_fft": spectrogram.n_fft, "win_length": spectrogram.win_length, "hop_length": spectrogram.hop_length}


def add_noise(waveform: torch.Tensor, min_snr_db: float, max_snr_db: float = 40.0) -> torch.Tensor:
    """White noise at a per-clip SNR drawn uniformly from [min_snr_db, max_snr_db]."""
    snr_db = torch.empty(waveform.shape[0], 1, device=waveform.device).uniform_(min_snr_db, max_snr_db)
    signal_power = waveform.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-10)
    noise_power = signal_power / torch.pow(10.0, snr_db / 10)
    return waveform + torch.randn_like(waveform) * noise_power.sqrt()


def conv_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                               nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SpeakerCNN(nn.Module):
    """Five conv layers (BatchNorm + ReLU; max-pooling after the first four), global average pooling,
    one linear layer. The pooled vector is the speaker embedding."""

    def __init__(self, num_classes: int, channels: Sequence[int] = (8, 16, 32, 64, 128), dropout: float = 0.2):
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"the speaker CNN has five conv layers; got {len(channels)} channel sizes")
        sizes = [1, *channels]
        self.features = nn.Sequential(*(conv_block(sizes[i], sizes[i + 1], pool=i < 4) for i in range(5)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels[-1], num_classes)
        self.embedding_dim = channels[-1]

    def embed(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(spectrogram)).flatten(1)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(spectrogram)))


class SpeakerModule(ClassificationModule):
    """Waveforms at `sample_rate`, `clip_seconds` long → speaker logits (and embeddings)."""

    def __init__(self, labels: Sequence[str], sample_rate: int = 8000, clip_seconds: float = 1.0, n_mels: int = 40,
                 channels: Sequence[int] = (8, 16, 32, 64, 128), dropout: float = 0.2,
                 noise_snr_db: float | None = 15.0, freq_mask: int = 8, time_mask: int = 10,
                 optimizer: str = "adam", learning_rate: float = 3e-3, weight_decay: float = 1e-4,
                 scheduler: str = "onecycle", label_smoothing: float = 0.05, verify_threshold: float = 0.5):
        super().__init__(labels, optimizer, learning_rate, weight_decay, scheduler, label_smoothing)
        self.save_hyperparameters()
        self.sample_rate = sample_rate
        self.num_samples = int(round(clip_seconds * sample_rate))
        self.verify_threshold = verify_threshold
        self.frontend = LogMelFrontend(sample_rate, n_mels, noise_snr_db=noise_snr_db, freq_mask=freq_mask, time_mask=time_mask)
        self.network = SpeakerCNN(len(labels), channels, dropout)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.network(self.frontend(waveform))

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """L2-normalised speaker embeddings; cosine similarity is their dot product."""
        return nn.functional.normalize(self.network.embed(self.frontend(waveform)), dim=1)


class SpeakerHeads(nn.Module):
    """The CNN with both outputs the tasks need: class probabilities and L2-normalised embeddings, from the
    log-mel (`from_power=False`) or, with `frontend`, from the power spectrogram (what the release exports)."""

    def __init__(self, network: SpeakerCNN, frontend: LogMelFrontend | None = None):
        super().__init__()
        self.network, self.frontend = network, frontend

    def forward(self, spectrogram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.frontend is not None:
            spectrogram = self.frontend.from_power(spectrogram)
        embedding = self.network.embed(spectrogram)
        probabilities = torch.softmax(self.network.classifier(embedding), dim=1)
        return probabilities, nn.functional.normalize(embedding, dim=1)
