"""Clip classifiers over per-frame inputs (B, T, D), and the LightningModule that trains them.

Models (`--model` in train.py):
  frame     one classifier applied to each frame on its own, trained on single frames (every frame
            carries its clip's label); a clip's probabilities are the mean over its frames.
  tsn       Temporal Segment Network consensus: the same per-frame head, but its class scores are
            averaged over the T segments *before* the loss, so training sees the clip as a whole.
  gru       a GRU over the per-frame features, batch-first (B, T, D), time as the sequence axis;
            the clip is classified from the last hidden state (both directions when bidirectional).
  keypoint  the same GRU over normalised body keypoints per frame (see keypoints.py).
Inputs are frozen CNN features (features.py) unless `finetune` is set: then the module holds the
backbone and takes frames (B, T, H, W, 3) uint8, and the backbone is trained too. With `finetune_from`
= k > 0 only the backbone's feature blocks k.. train (features.py says how they are counted); the module then also takes the frozen blocks'
cached output maps (B, T, C, h, w) float (any float input is read as such maps), which is how it trains.
`temporal_shift` (TSM) shifts channels between neighbouring frames inside the fine-tuned residual
blocks, so the per-frame features of frame and tsn see the frames around them too.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from core.training import ClassificationModule, mixup, soft_cross_entropy

MODELS = ("frame", "tsn", "gru", "keypoint")


class FrameHead(nn.Module):
    """Per-frame scores (B, T, C): dropout, an optional hidden layer, a linear classifier."""

    def __init__(self, input_dim: int, num_classes: int, hidden: int = 0, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(input_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or input_dim, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GRUClassifier(nn.Module):
    """GRU over time (batch_first: input (B, T, D)), then a linear classifier on the last hidden state."""

    def __init__(self, input_dim: int, num_classes: int, hidden: int = 128, layers: int = 1,
                 dropout: float = 0.3, bidirectional: bool = True, input_dropout: float = 0.2):
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.norm = nn.LayerNorm(input_dim)
        self.gru = nn.GRU(input_dim, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                          dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden = self.gru(self.norm(self.input_dropout(x)))           # hidden: (layers * dirs, B, H)
        directions = 2 if self.gru.bidirectional else 1
        last = hidden[-directions:].transpose(0, 1).reshape(x.shape[0], -1)  # last layer, all directions
        return self.classifier(self.dropout(last))


class ActionModule(ClassificationModule):
    """A clip classifier over (B, T, input_dim) features, or over frames when `finetune` is set.

    `forward` returns clip logits whose softmax is the clip's class probabilities; for the frame
    model these are log mean per-frame probabilities, so the softmax *is* the frame average."""

    def __init__(self, labels: Sequence[str], model: str = "tsn", input_dim: int = 1280, hidden: int = 0,
                 layers: int = 1, dropout: float = 0.5, bidirectional: bool = True,
                 backbone: str = "mobilenet_v2", image_size: int = 112, finetune: bool = False,
                 allow_download: bool = False, num_frames: int = 3, frame_size: int | None = None,
                 optimizer: str = "adamw", learning_rate: float = 1e-3, weight_decay: float = 1e-2,
                 scheduler: str = "cosine", label_smoothing: float = 0.1, feature_noise: float = 0.0,
                 finetune_from: int = 0, backbone_lr_scale: float = 0.1, mixup_alpha: float = 0.0,
                 temporal_shift: bool = False):
        super().__init__(labels, optimizer, learning_rate, weight_decay, scheduler, label_smoothing)
        self.save_hyperparameters()
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        self.model_name, self.feature_noise, self.backbone_lr_scale = model, feature_noise, backbone_lr_scale
        self.mixup_alpha = mixup_alpha
        self.encoder = None
        if temporal_shift and not finetune:
            raise ValueError("the temporal shift lives in the fine-tuned CNN: it needs finetune")
        if finetune:
            if model == "keypoint":
                raise ValueError("the keypoint model has no CNN to fine-tune")
            from action_recognition.features import FrameEncoder

            self.encoder = FrameEncoder(backbone, image_size, allow_download, finetune_from, temporal_shift)
            input_dim = self.encoder.dim
        if model in ("frame", "tsn"):
            self.network = FrameHead(input_dim, len(labels), hidden, dropout)
        else:
            self.network = GRUClassifier(input_dim, len(labels), hidden or 128, layers, dropout, bidirectional)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T, D) features: frozen inputs as they are, or frames through the fine-tuned backbone."""
        if self.encoder is None:
            if self.training and self.feature_noise > 0:
                inputs = inputs + self.feature_noise * inputs.std() * torch.randn_like(inputs)
            return inputs
        batch, steps = inputs.shape[:2]
        self.encoder.set_clip_length(steps)
        if self.encoder.first_trained and inputs.is_floating_point():   # cached stem maps (B, T, C, h, w)
            return self.encoder.tail(inputs.flatten(0, 1)).view(batch, steps, -1)
        return self.encoder(inputs.flatten(0, 1)).view(batch, steps, -1)

    def frame_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T, C) per-frame scores (frame and tsn models)."""
        return self.network(self.features(inputs))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.model_name == "frame":
            return torch.log_softmax(self.frame_logits(inputs), dim=-1).exp().mean(dim=1).clamp_min(1e-8).log()
        if self.model_name == "tsn":
            return self.frame_logits(inputs).mean(dim=1)       # segment consensus: average of the scores
        return self.network(self.features(inputs))

    def training_step(self, batch: Any, batch_index: int) -> torch.Tensor:
        inputs, targets = batch
        if self.mixup_alpha > 0:                                # whole clips blended, their labels alike
            inputs, targets = mixup(inputs, targets, len(self.labels), self.mixup_alpha)
        if self.model_name != "frame":
            return self._shared_step((inputs, targets), "train")
        logits = self.frame_logits(inputs)                      # the frame model learns from single frames
        steps = logits.shape[1]
        loss = soft_cross_entropy(logits.flatten(0, 1), targets.repeat_interleave(steps, dim=0), self.label_smoothing)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(targets))
        hard = targets.argmax(dim=1) if targets.dim() == 2 else targets
        accuracy = (logits.mean(dim=1).argmax(dim=1) == hard).float().mean()
        self.log("train_acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(targets))
        return loss

    def configure_optimizers(self) -> Any:
        if self.encoder is None:
            return super().configure_optimizers()
        # fine-tuning: the pretrained backbone moves slower than the new head (backbone_lr_scale)
        from core.training import build_optimizer, build_scheduler

        trained = [p for p in self.encoder.parameters() if p.requires_grad]
        groups = [{"params": trained, "lr": self.learning_rate * self.backbone_lr_scale},
                  {"params": self.network.parameters(), "lr": self.learning_rate}]
        optimizer = build_optimizer(self.optimizer_name, groups, self.learning_rate, self.weight_decay)
        scheduler = build_scheduler(self.scheduler_name, optimizer, self.trainer)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}
