"""Per-frame CNN features: the ImageNet backbones, frame preprocessing, and a disk cache.

Training heads on frozen features computed once is what keeps this task fast on a CPU: the UCF101
mini set's 15,690 frames go through MobileNetV2 once, then every head trains in seconds. The cache
(`ClipCache`) stores features per clip source, in one file per backbone, image size and flip, so
subsets of a data set share it and only new clips are computed.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from core.env import CACHE_DIR
from core.io import atomic_path

BACKBONES = ("mobilenet_v2", "resnet18")
CACHE_ROOT = CACHE_DIR / "action_recognition"
FEATURE_CACHE = CACHE_ROOT / "features"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrameEncoder(nn.Module):
    """uint8 frames (N, H, W, 3) or float (N, 3, H, W) in [0, 1] -> pooled backbone features (N, D).

    Frames are resized to `image_size` (the UCF101 frames are 64 px; ImageNet networks want more)
    and normalised with the ImageNet statistics."""

    def __init__(self, backbone: str = "mobilenet_v2", image_size: int = 112, allow_download: bool = False):
        super().__init__()
        self.backbone_name, self.image_size = backbone, image_size
        self.body, self.dim = build_backbone(backbone, allow_download)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dtype == torch.uint8:
            frames = frames.permute(0, 3, 1, 2).float() / 255.0
        if frames.shape[-1] != self.image_size or frames.shape[-2] != self.image_size:
            frames = nn.functional.interpolate(frames, size=(self.image_size, self.image_size), mode="bilinear",
                                               align_corners=False, antialias=frames.shape[-1] > self.image_size)
        return (frames - self.mean) / self.std

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(frames))


def build_backbone(name: str, allow_download: bool = False) -> tuple[nn.Module, int]:
    """(module mapping normalised images to pooled features, feature size).

    mobilenet_v2: ImageNet weights from the offline resolver in core.pretrained.
    resnet18: ImageNet weights only with `allow_download` (they do not ship offline); otherwise random
    initialisation, which is only useful with fine-tuning."""
    if name == "mobilenet_v2":
        from core.pretrained import imagenet_mobilenet_v2

        network = imagenet_mobilenet_v2(allow_download)
        return nn.Sequential(network.features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), network.last_channel
    if name == "resnet18":
        from torchvision.models import ResNet18_Weights, resnet18

        if not allow_download:
            warnings.warn("resnet18 has no offline ImageNet weights: random initialisation "
                          "(use --finetune, or --allow-download where the network is reachable)")
        network = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if allow_download else None)
        network.fc = nn.Identity()
        return network, 512
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


@torch.inference_mode()
def encode_clips(encoder: FrameEncoder, clips: Sequence[np.ndarray], batch_size: int = 96,
                 flip: bool = False, progress: bool = False) -> np.ndarray:
    """Features (N, T, D) float32 for clips of equal length T; `flip` mirrors every frame left-right."""
    from tqdm import tqdm

    encoder.eval()
    lengths = {len(c) for c in clips}
    if len(lengths) != 1:
        raise ValueError(f"clips must have the same number of frames to stack, got {sorted(lengths)}")
    frames = np.concatenate([np.asarray(c) for c in clips])
    if flip:
        frames = frames[:, :, ::-1]
    outputs = []
    for start in tqdm(range(0, len(frames), batch_size), desc="frame features", unit="batch", disable=not progress):
        batch = torch.from_numpy(np.ascontiguousarray(frames[start:start + batch_size]))
        outputs.append(encoder(batch).numpy())
    return np.concatenate(outputs).reshape(len(clips), lengths.pop(), -1).astype(np.float32)


class ClipCache:
    """Arrays per clip in one .npz, looked up by clip source (a path, or `zip::member`) and computed
    only for the clips not stored yet. The file name carries the settings, so a changed setting gets
    its own file. A source whose file changed on disk keeps its old entry: delete the file (or pass
    --no-cache) after editing data in place."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path is not None else None

    def _load(self) -> dict[str, np.ndarray]:
        if self.path is None or not self.path.is_file():
            return {}
        with np.load(self.path) as stored:
            return {name: stored[name] for name in stored.files}

    def get(self, sources: Sequence[str], compute) -> dict[str, np.ndarray]:
        """Arrays for `sources` in order; `compute(indices)` returns a dict of arrays for those clips."""
        stored = self._load()
        position = {s: i for i, s in enumerate(stored.get("sources", np.array([], dtype=str)).tolist())}
        missing = [i for i, s in enumerate(sources) if s not in position]
        if missing:
            fresh = compute(missing)
            if self.path is not None:
                old = len(position)
                merged = {name: np.concatenate([stored[name], array]) if name in stored else array
                          for name, array in fresh.items()}
                merged["sources"] = np.concatenate([stored.get("sources", np.array([], dtype=str)),
                                                    np.asarray([sources[i] for i in missing])])
                with atomic_path(self.path) as tmp:
                    np.savez(tmp, **merged)
                position.update({sources[i]: old + k for k, i in enumerate(missing)})
                stored = merged
            else:
                return fresh
        rows = [position[s] for s in sources]
        return {name: array[rows] for name, array in stored.items() if name != "sources"}


def cached_clip_features(sources: Sequence[str], clips: Sequence[np.ndarray], backbone: str = "mobilenet_v2",
                         image_size: int = 112, flip: bool = False, cache_dir: Path | None = FEATURE_CACHE,
                         progress: bool = False, encoder: FrameEncoder | None = None) -> np.ndarray:
    """`encode_clips` through a ClipCache in `cache_dir` (one file per backbone, size, flip and clip
    length); None = no cache."""
    lengths = sorted({len(c) for c in clips})
    name = f"{backbone}_{image_size}px{'_flip' if flip else ''}_{'-'.join(map(str, lengths))}frames.npz"
    cache = ClipCache(Path(cache_dir) / name if cache_dir is not None else None)

    def compute(indices: list[int]) -> dict[str, np.ndarray]:
        model = encoder or FrameEncoder(backbone, image_size)
        return {"features": encode_clips(model, [clips[i] for i in indices], flip=flip, progress=progress)}

    return cache.get(list(sources), compute)["features"]
