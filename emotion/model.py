"""Emotion networks and their LightningModule.

Backbones: ImageNet MobileNetV2 or EfficientNet-Lite0/1/2 from core.pretrained (offline, fine-tuned), a
compact CNN trained from scratch, or any timm model (`timm:<name>`, random init offline). Heads on top of the backbone:
- `class`: 9 logits, soft cross-entropy (hard labels, FER+ vote distributions, label smoothing);
- `va`:    2 outputs, (valence, arousal) regressed to the expected VA of the target distribution and
           decoded to a class by the nearest class centre (emotion.va);
- `joint`: both, loss = cross-entropy + va_weight * MSE.
Inputs are (N, 3, S, S) gray faces repeated on 3 channels with ImageNet normalisation (emotion.data).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.models import load_lightning_checkpoint
from core.normalisation import IMAGENET_MEAN, IMAGENET_STD
from core.training import ClassificationModule, soft_cross_entropy
from core.pretrained import (EFFICIENTNET_LITE_LEVELS, EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD,
                             imagenet_efficientnet_lite)
from emotion.data import CLASSES, faces_to_tensor
from emotion.va import CENTRES

HEADS = ("class", "va", "joint")
EFFICIENTNET_LITE_ARCHITECTURES = tuple(f"efficientnet_lite{level}" for level in EFFICIENTNET_LITE_LEVELS)
ARCHITECTURES = ("mobilenet_v2", *EFFICIENTNET_LITE_ARCHITECTURES, "compact_cnn", "timm:<name>")


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class CompactCNN(nn.Module):
    """A VGG-style CNN for 48-96 px faces (about 0.7 M parameters), trained from scratch."""

    def __init__(self, n_outputs: int, widths: Sequence[int] = (24, 48, 96, 192), dropout: float = 0.3):
        super().__init__()
        layers, c_in = [], 3
        for width in widths:
            layers.append(_conv_block(c_in, width))
            c_in = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Renormalised(nn.Module):
    """Maps the ImageNet-normalised faces every model here receives (emotion.data.faces_to_array) to the
    input statistics `network` was trained with, inside the graph, so the ONNX export and the recognizer
    need not know which backbone they run."""

    def __init__(self, network: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.network = network
        imagenet_mean, imagenet_std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        mean, std = torch.tensor(mean), torch.tensor(std)
        # x_net = (x * imagenet_std + imagenet_mean - mean) / std = x * scale + shift
        self.register_buffer("scale", (imagenet_std / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((imagenet_mean - mean) / std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x * self.scale + self.shift)


def build_network(architecture: str, n_outputs: int, pretrained: bool = True, dropout: float = 0.2) -> nn.Module:
    if architecture == "mobilenet_v2":
        if pretrained:
            from core.pretrained import imagenet_mobilenet_v2

            network = imagenet_mobilenet_v2()
        else:
            from torchvision.models import mobilenet_v2

            network = mobilenet_v2(weights=None)
        network.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(network.last_channel, n_outputs))
        return network
    if architecture in EFFICIENTNET_LITE_ARCHITECTURES:
        level = int(architecture[-1])
        if pretrained:
            network = imagenet_efficientnet_lite(level)
        else:
            import timm

            network = timm.create_model(f"tf_efficientnet_lite{level}", pretrained=False)
        network.reset_classifier(n_outputs)
        network.drop_rate = dropout
        return Renormalised(network, EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD)
    if architecture == "compact_cnn":
        return CompactCNN(n_outputs, dropout=max(dropout, 0.3))
    if architecture.startswith("timm:"):
        import timm

        # timm's pretrained weights come from the Hugging Face hub, which is offline here: random init.
        return timm.create_model(architecture.split(":", 1)[1], pretrained=False, num_classes=n_outputs, drop_rate=dropout)
    raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")


class EmotionModule(ClassificationModule):
    """Classifier / VA regressor / joint model over the nine classes; targets are (N, 9) distributions."""

    def __init__(self, labels: Sequence[str] = CLASSES, architecture: str = "mobilenet_v2", head: str = "class",
                 input_size: int = 64, optimizer: str = "adamw", learning_rate: float = 1e-3, weight_decay: float = 1e-4,
                 scheduler: str = "onecycle", label_smoothing: float = 0.0, va_weight: float = 1.0, dropout: float = 0.2,
                 pretrained: bool = True):
        super().__init__(labels, optimizer, learning_rate, weight_decay, scheduler, label_smoothing)
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
        self.save_hyperparameters()
        self.head = head
        self.input_size = input_size
        self.va_weight = va_weight
        self.n_classes = len(self.labels)
        n_outputs = {"class": self.n_classes, "va": 2, "joint": self.n_classes + 2}[head]
        self.network = build_network(architecture, n_outputs, pretrained=pretrained, dropout=dropout)
        self.register_buffer("centres", torch.from_numpy(CENTRES.copy()), persistent=False)

    def split(self, outputs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(class logits or None, VA or None) from the raw network output."""
        if self.head == "class":
            return outputs, None
        if self.head == "va":
            return None, outputs
        return outputs[:, : self.n_classes], outputs[:, self.n_classes:]

    def class_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """Probabilities over the classes; a VA-only head scores classes by distance to the centres."""
        logits, va = self.split(outputs)
        if logits is not None:
            return torch.softmax(logits, dim=1)
        distances = ((va[:, None, :] - self.centres[None]) ** 2).sum(dim=-1)
        return torch.softmax(-distances / 0.1, dim=1)

    def valence_arousal(self, outputs: torch.Tensor) -> torch.Tensor:
        logits, va = self.split(outputs)
        return va if va is not None else torch.softmax(logits, dim=1) @ self.centres

    def _shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        inputs, targets = batch
        outputs = self(inputs)
        logits, va = self.split(outputs)
        loss = outputs.new_zeros(())
        if logits is not None:
            loss = loss + soft_cross_entropy(logits, targets, self.label_smoothing if stage == "train" else 0.0)
        if va is not None:
            loss = loss + self.va_weight * F.mse_loss(va, targets @ self.centres)
        accuracy = (self.class_scores(outputs).argmax(dim=1) == targets.argmax(dim=1)).float().mean()
        self.log(f"{stage}_loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=len(inputs))
        self.log(f"{stage}_acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(inputs))
        return loss

    def predict_step(self, batch: Any, batch_index: int) -> torch.Tensor:
        inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.class_scores(self(inputs))


def load_module(checkpoint: str, map_location: str = "cpu") -> EmotionModule:
    """A trained EmotionModule in eval mode (the ImageNet weights are not reloaded: the checkpoint has them)."""
    return load_lightning_checkpoint(EmotionModule, checkpoint, "emotion", map_location=map_location, pretrained=False)


@torch.inference_mode()
def predict_faces(module: EmotionModule, faces: np.ndarray, batch_size: int = 256, tta: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (N, 9) and VA (N, 2) for gray faces (N, S, S) already at the model's input size.

    `tta` averages the prediction with that of the horizontally flipped face."""
    module.eval()
    probabilities, va = [], []
    for start in range(0, len(faces), batch_size):
        x = faces_to_tensor(faces[start:start + batch_size]).to(module.device)
        outputs = module(x)
        scores, coords = module.class_scores(outputs), module.valence_arousal(outputs)
        if tta:
            flipped = module(torch.flip(x, dims=[3]))
            scores = (scores + module.class_scores(flipped)) / 2
            coords = (coords + module.valence_arousal(flipped)) / 2
        probabilities.append(scores.cpu().numpy())
        va.append(coords.cpu().numpy())
    if not probabilities:
        return np.zeros((0, len(module.labels)), np.float32), np.zeros((0, 2), np.float32)
    return np.concatenate(probabilities), np.concatenate(va)


__all__ = ["EmotionModule", "CompactCNN", "Renormalised", "build_network", "load_module", "predict_faces", "HEADS"]
