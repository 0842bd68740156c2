"""Per-frame CNN features: the ImageNet backbones, frame preprocessing, and a disk cache.

Training heads on frozen features computed once is what keeps this task fast on a CPU: the UCF101
mini set's 30,000 frames go through the CNN once, then every head trains in seconds. The cache
(`ClipCache`) stores features per clip source, in one file per backbone, image size and flip, so
subsets of a data set share it and only new clips are computed.

Backbones with offline ImageNet weights: torchvision's MobileNetV2 and timm's EfficientNet-Lite0/1/2
(`core.pretrained`). Both are laid out the same way here, as one sequence of *feature blocks*: block 0
is the stem convolution, then every inverted-residual block in order (for EfficientNet the blocks of
all its stages, flattened), and the last is the 1x1 convolution to 1,280 channels; global average
pooling follows. MobileNetV2 has 19 such blocks, EfficientNet-Lite0 18, Lite1 and Lite2 23 each
(`FEATURE_BLOCKS`). Each backbone gets the input scaling it was trained with (`INPUT_STATISTICS`).

Partial fine-tuning (`first_trained` = K > 0) splits the feature blocks in two: blocks 0..K-1 (the
*stem*, where most of the CPU time goes at these sizes) stay frozen, and their output maps are cached
per clip for a few fixed augmented *views* of each training clip (`augment_clip`: random resized crop,
flip, colour jitter, the same for every frame of a clip); blocks K.. (the *tail*) and the head train
on those maps, so an epoch costs a fraction of a full backward pass.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from core.env import CACHE_DIR
from core.io import atomic_path
from core.normalisation import IMAGENET_MEAN, IMAGENET_STD
from core.onnx import onnx_bytes, onnx_session
from core.pretrained import EFFICIENTNET_LITE_LEVELS, EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD

EFFICIENTNET_LITE_BACKBONES = tuple(f"efficientnet_lite{level}" for level in EFFICIENTNET_LITE_LEVELS)
BACKBONES = ("mobilenet_v2", *EFFICIENTNET_LITE_BACKBONES, "resnet18")
CACHE_ROOT = CACHE_DIR / "action_recognition"
FEATURE_CACHE = CACHE_ROOT / "features"
# Feature blocks (stem conv, inverted residuals, 1x1 conv): what partial fine-tuning and the temporal shift work on.
FEATURE_BLOCKS = {"mobilenet_v2": 19, "efficientnet_lite0": 18, "efficientnet_lite1": 23, "efficientnet_lite2": 23}
INPUT_STATISTICS = {"mobilenet_v2": (IMAGENET_MEAN, IMAGENET_STD), "resnet18": (IMAGENET_MEAN, IMAGENET_STD),
                    **{name: (EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD) for name in EFFICIENTNET_LITE_BACKBONES}}


class TemporalShift(nn.Module):
    """Temporal Shift Module (Lin et al., ICCV 2019): of (N*T, C, H, W) maps of N clips of T frames,
    1/`fold_div` of the channels move one frame forward in time, as many one frame back (zeros at the
    ends), the rest stay: a block after it mixes neighbouring frames at no extra cost. `segments` (T)
    is set per batch by the module that knows the clip length."""

    def __init__(self, fold_div: int = 8):
        super().__init__()
        self.fold_div, self.segments = fold_div, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] % self.segments:
            raise ValueError(f"{x.shape[0]} frames do not split into clips of {self.segments}")
        clips = x.view(x.shape[0] // self.segments, self.segments, *x.shape[1:])
        fold = x.shape[1] // self.fold_div
        shifted = torch.zeros_like(clips)
        shifted[:, 1:, :fold] = clips[:, :-1, :fold]                     # channels from the frame before
        shifted[:, :-1, fold:2 * fold] = clips[:, 1:, fold:2 * fold]     # channels from the frame after
        shifted[:, :, 2 * fold:] = clips[:, :, 2 * fold:]
        return shifted.view_as(x)


class FrameEncoder(nn.Module):
    """uint8 frames (N, H, W, 3) or float (N, 3, H, W) in [0, 1] -> pooled backbone features (N, D).

    Frames are resized to `image_size` (the UCF101 frames are 64 px; ImageNet networks want more)
    and normalised with the statistics the backbone was trained with."""

    def __init__(self, backbone: str = "mobilenet_v2", image_size: int = 112, allow_download: bool = False,
                 first_trained: int = 0, temporal_shift: bool = False):
        super().__init__()
        if (first_trained or temporal_shift) and backbone not in FEATURE_BLOCKS:   # both work on feature blocks
            what = "partial fine-tuning (first_trained)" if first_trained else "the temporal shift"
            raise ValueError(f"{what} needs one of {', '.join(FEATURE_BLOCKS)}, not {backbone}")
        block_count = FEATURE_BLOCKS.get(backbone, 0)
        if first_trained and not 0 < first_trained < block_count:
            raise ValueError(f"first_trained must be in 1..{block_count - 1} ({backbone} has {block_count} feature "
                             f"blocks; 0 = no split), got {first_trained}")
        self.backbone_name, self.image_size, self.first_trained = backbone, image_size, first_trained
        self.body, self.dim = build_backbone(backbone, allow_download)
        mean, std = INPUT_STATISTICS[backbone]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if first_trained:
            blocks = self.body[0]                                   # the feature blocks
            self.stem_blocks, self.tail_blocks = blocks[:first_trained], blocks[first_trained:]
            self.stem_blocks.requires_grad_(False)
            self.tail_blocks.to(memory_format=torch.channels_last)   # 1.3-1.6x faster training on this CPU
        self.shifts: list[TemporalShift] = []
        if temporal_shift:   # TSM's residual shift: in the trained residual blocks, before their branch
            for block in (self.tail_blocks if first_trained else self.body[0]):
                shift = TemporalShift()
                if shift_residual_branch(block, shift):
                    self.shifts.append(shift)

    def set_clip_length(self, frames: int) -> None:
        """Frames per clip in the batches to come (for the temporal shifts)."""
        for shift in self.shifts:
            shift.segments = frames

    def train(self, mode: bool = True) -> "FrameEncoder":
        super().train(mode)
        if self.first_trained:
            self.stem_blocks.eval()       # frozen stem: batch-norm statistics stay ImageNet's
        return self

    def stem(self, frames: torch.Tensor) -> torch.Tensor:
        """Frozen early-block maps (N, C, h, w) of frames (needs `first_trained`)."""
        with torch.no_grad():
            return self.stem_blocks(self.prepare(frames))

    def onnx_stem(self):
        """The frozen stem as an onnxruntime session (frames -> maps as numpy), or None without onnxruntime.
        For filling the cache: on this CPU it runs MobileNetV2's early blocks about 5x faster than eager torch."""
        try:
            session = onnx_session(onnx_bytes(self.stem_blocks, torch.zeros(1, 3, self.image_size, self.image_size),
                                              ["x"], ["y"]), torch.get_num_threads())
        except ImportError:
            return None
        return lambda frames: torch.from_numpy(session.run(None, {"x": self.prepare(frames).numpy()})[0])

    def tail(self, maps: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, D) from stem maps: the trained last blocks."""
        return self.body[2](self.body[1](self.tail_blocks(maps.float().contiguous(memory_format=torch.channels_last))))

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dtype == torch.uint8:
            frames = frames.permute(0, 3, 1, 2).float() / 255.0
        if frames.shape[-1] != self.image_size or frames.shape[-2] != self.image_size:
            frames = nn.functional.interpolate(frames, size=(self.image_size, self.image_size), mode="bilinear",
                                               align_corners=False, antialias=frames.shape[-1] > self.image_size)
        return (frames - self.mean) / self.std

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.first_trained:
            return self.tail(self.stem(frames))
        return self.body(self.prepare(frames))


def shift_residual_branch(block: nn.Module, shift: TemporalShift) -> bool:
    """Put `shift` in front of the residual branch of an inverted-residual block with a skip connection
    (the identity path keeps the frame's own channels, as in TSM); False, and nothing changed, for others."""
    if getattr(block, "use_res_connect", False):                      # torchvision MobileNetV2: branch `conv`
        block.conv = nn.Sequential(shift, block.conv)
    elif getattr(block, "has_skip", False) and hasattr(block, "conv_pwl"):   # timm InvertedResidual: from `conv_pw`
        block.conv_pw = nn.Sequential(shift, block.conv_pw)
    else:
        return False
    return True


def build_backbone(name: str, allow_download: bool = False) -> tuple[nn.Module, int]:
    """(module mapping normalised images to pooled features, feature size).

    mobilenet_v2, efficientnet_lite0/1/2: ImageNet weights from the offline loaders in core.pretrained,
    as Sequential(feature blocks, average pool, flatten) (see the module docstring).
    resnet18: ImageNet weights only with `allow_download` (they do not ship offline); otherwise random
    initialisation, which is only useful with fine-tuning."""
    if name == "mobilenet_v2":
        from core.pretrained import imagenet_mobilenet_v2

        network = imagenet_mobilenet_v2(allow_download)
        return nn.Sequential(network.features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), network.last_channel
    if name in EFFICIENTNET_LITE_BACKBONES:
        from core.pretrained import imagenet_efficientnet_lite

        network = imagenet_efficientnet_lite(int(name[-1]), allow_download)
        blocks = nn.Sequential(nn.Sequential(network.conv_stem, network.bn1),
                               *(block for stage in network.blocks for block in stage),
                               nn.Sequential(network.conv_head, network.bn2))
        return nn.Sequential(blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten()), network.num_features
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
    --no-cache) after editing data in place. One writer per file: two processes adding clips to the
    same file at once each write back what they read, and the later one drops the other's clips."""

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


# ------------------------------------------------------------------ partial fine-tuning: views and stem maps
def augment_clip(frames: np.ndarray, seed: int, scale: tuple[float, float] = (0.5, 1.0)) -> np.ndarray:
    """One random view of a clip (T, H, W, 3) uint8, the same for every frame: random resized crop
    (back to H x W), left-right flip, colour jitter (albumentations, seeded)."""
    import albumentations as A

    height, width = frames.shape[1:3]
    transform = A.Compose([A.RandomResizedCrop(size=(height, width), scale=scale, ratio=(0.75, 4 / 3)),
                           A.HorizontalFlip(p=0.5),
                           A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=0.8)], seed=seed)
    return transform(images=np.ascontiguousarray(frames))["images"]


def view_seed(source: str, view: str, seed: int) -> int:
    """A seed per clip and view that does not depend on the other clips (cache entries stay valid)."""
    return int.from_bytes(hashlib.sha1(f"{seed}:{view}:{source}".encode()).digest()[:4], "big")


def view_frames(source: str, frames: np.ndarray, view: str, seed: int = 0) -> np.ndarray:
    """`plain`: as is; `flip`: mirrored; `aug<k>`: the k-th random view (`augment_clip`)."""
    if view == "plain":
        return np.asarray(frames)
    if view == "flip":
        return np.ascontiguousarray(np.asarray(frames)[:, :, ::-1])
    if view.startswith("aug"):
        return augment_clip(np.asarray(frames), view_seed(source, view, seed))
    raise ValueError(f"unknown view {view!r}: plain, flip or aug<k>")


@torch.inference_mode()
def cached_stem_maps(sources: Sequence[str], clips: Sequence[np.ndarray], encoder: FrameEncoder, view: str = "plain",
                     seed: int = 0, cache_dir: Path | None = FEATURE_CACHE, batch_size: int = 96,
                     progress: bool = False) -> np.ndarray:
    """Frozen stem maps (N, T, C, h, w) float16 of one view of each clip, through a ClipCache (one file
    per backbone, size, split point, view, seed and clip length)."""
    from tqdm import tqdm

    lengths = sorted({len(c) for c in clips})
    if len(lengths) > 1:
        raise ValueError(f"clips must have the same number of frames to stack, got {lengths}")
    seeded = f"_seed{seed}" if view.startswith("aug") else ""
    name = (f"{encoder.backbone_name}_{encoder.image_size}px_stem{encoder.first_trained}_{view}{seeded}_"
            f"{'-'.join(map(str, lengths))}frames.npz")
    cache = ClipCache(Path(cache_dir) / name if cache_dir is not None else None)

    def compute(indices: list[int]) -> dict[str, np.ndarray]:
        encoder.eval()
        stem = (encoder.onnx_stem() if len(indices) > 64 else None) or encoder.stem
        outputs = []
        for start in tqdm(range(0, len(indices), max(1, batch_size // lengths[0])), desc=f"stem maps ({view})",
                          unit="batch", disable=not progress):
            chunk = indices[start:start + max(1, batch_size // lengths[0])]
            frames = np.stack([view_frames(sources[i], clips[i], view, seed) for i in chunk])
            maps = stem(torch.from_numpy(frames.reshape(-1, *frames.shape[2:])))
            outputs.append(maps.view(len(chunk), lengths[0], *maps.shape[1:]).numpy().astype(np.float16))
        return {"maps": np.concatenate(outputs)}

    return cache.get(list(sources), compute)["maps"]
