"""`CropClassifier`: a CNN on the hand crop, a LightningModule trained with `core.training.fit`: ImageNet
MobileNetV2 fine-tuned (weights shipped offline, `core.pretrained`) or any timm model from scratch
(`tf_efficientnetv2_b0`, `mobilenetv3_small_100`, ...). Same interface as model.py's classifiers:
`probabilities(crops) -> (N, n_classes)` over `labels`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.io import InputError
from core.models import load_lightning_checkpoint
from core.onnx import cached_onnx_session, export_onnx
from core.training import ClassificationModule
from gesture_detection.model import softmax


def build_backbone(name: str, num_classes: int, pretrained: bool = True) -> torch.nn.Module:
    """`mobilenet_v2`: torchvision ImageNet weights (offline); any other name: a timm model from scratch."""
    if name == "mobilenet_v2":
        from torchvision.models import mobilenet_v2

        from core.pretrained import imagenet_mobilenet_v2

        network = imagenet_mobilenet_v2() if pretrained else mobilenet_v2()
        network.classifier[-1] = torch.nn.Linear(network.classifier[-1].in_features, num_classes)
        return network
    import timm

    if name not in timm.list_models():
        raise ValueError(f"unknown model {name!r}: use mobilenet_v2 or a timm model name")
    return timm.create_model(name, pretrained=False, num_classes=num_classes)


class CropClassifier(ClassificationModule):
    """A CNN on hand crops of `image_size` px, normalised with the ImageNet statistics."""

    def __init__(self, labels: Sequence[str], backbone: str = "mobilenet_v2", image_size: int = 128,
                 pretrained: bool = True, mediapipe_box_scale: float = 1.25, freeze_blocks: int = 0, optimizer: str = "adamw", learning_rate: float = 1e-3,
                 weight_decay: float = 1e-4, scheduler: str = "cosine", label_smoothing: float = 0.1):
        super().__init__(labels, optimizer, learning_rate, weight_decay, scheduler, label_smoothing)
        self.save_hyperparameters()
        self.image_size = image_size
        self.mediapipe_box_scale = mediapipe_box_scale  # landmark box -> the training boxes' style
        # the checkpoint holds the trained weights, so a reload needs no ImageNet file
        self.network = build_backbone(backbone, len(self.labels), pretrained=pretrained)
        self.freeze_blocks = freeze_blocks
        for block in list(getattr(self.network, "features", []))[:freeze_blocks]:
            # the first ImageNet blocks (edges, textures) stay as they are: training is several times cheaper
            block.requires_grad_(False)

    def train(self, mode: bool = True) -> "CropClassifier":
        super().train(mode)
        for block in list(getattr(self.network, "features", []))[:self.freeze_blocks]:
            block.eval()  # frozen blocks keep their ImageNet batch-norm statistics
        return self

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = "auto") -> "CropClassifier":
        """A trained checkpoint for prediction. `backend`: `onnx` runs the network in onnxruntime
        (exported once into .cache/gesture_detection/onnx/; 4-5 ms a crop here against 15-110 ms in
        eager PyTorch on the busy 2-core host), `torch` keeps PyTorch, `auto` takes onnx when it imports."""
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "no crop classifier; train one with `python -m gesture_detection.train --classifier crop`")
        module = load_lightning_checkpoint(cls, path, "gesture_detection", pretrained=False)
        module._onnx = cached_onnx_session(path, "gesture_detection", module._export_onnx, torch.get_num_threads(), backend,
                                           key=f"crop{module.image_size}")
        return module

    def _export_onnx(self, target: Path) -> None:
        export_onnx(self.network, torch.zeros(1, 3, self.image_size, self.image_size), target, ["crops"], ["logits"],
                    {"labels": ",".join(self.labels), "image_size": self.image_size}, task="gesture_detection")

    def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """RGB crops of any size -> (N, 3, size, size) float32, resized (bilinear) and ImageNet-normalised:
        the evaluation half of `data.crop_transform`, without the per-image albumentations overhead."""
        import cv2

        from core.normalisation import IMAGENET_MEAN, IMAGENET_STD

        size = self.image_size
        batch = np.stack([cv2.resize(np.ascontiguousarray(c), (size, size), interpolation=cv2.INTER_LINEAR) for c in crops])
        batch = (batch.astype(np.float32) / 255.0 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Softmax over `labels` for RGB crops of any size."""
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        batch = self.preprocess(crops)
        if getattr(self, "_onnx", None) is not None:
            return softmax(self._onnx.run(None, {"crops": batch})[0]).astype(np.float32)
        with torch.inference_mode():
            return torch.softmax(self.eval()(torch.from_numpy(batch)), dim=1).numpy()
