"""Per-frame embeddings behind one interface, arranged as (time, channels, features) and cached in gzip HDF5.

Backbones (`make_backbone`): `mobilenet_v2` (ImageNet weights from core.pretrained, offline), `resnext50`
(timm, built with pretrained=False; `--checkpoint` loads a local state dict) and `vit` (transformers ViTModel
built from its config; a local `from_pretrained` folder or state dict loads weights). `vit-tiny` is a small
random ViT for tests. Every backbone maps uint8 RGB frames (N, H, W, 3) to (N, dim) float32.

The channel layout: each view (whole frame, left half, right half) and each backbone's vector is cut into
chunks of `channel_size` features, zero-padded. The original (ResNeXt50 2048 → 3 × 768, ViT 768 → 1 × 768,
three views) is `--backbone resnext50,vit --channel-size 768`: 12 channels of 768.

The cache file holds `embeddings` (clips, time, channels, features), `targets`, `video_ids`, `done` and the
configuration (backbones, views, sizes, labels) as JSON in its attributes. Extraction writes clip by clip and
marks each done, so an interrupted run resumes where it stopped; a cache built with other settings is
refused (StaleCacheError) unless rebuilding is asked for; a truncated or unreadable file is rebuilt.
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from core.normalisation import IMAGENET_MEAN, IMAGENET_STD
from core.io import InputError
from video_gestures.data import VideoItem, read_clip, read_clips

CACHE_VERSION = 1
VIEWS = ("whole", "left", "right")
PIXEL_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
PIXEL_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


class StaleCacheError(InputError):
    """The cache on disk was built with another backbone, view set, frame count or clip list."""


class Backbone(Protocol):
    name: str
    dim: int
    config: dict

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


def _to_tensor(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) → ImageNet-normalised float (N, 3, size, size)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x - PIXEL_MEAN) / PIXEL_STD


class TorchBackbone:
    """A torch module that maps normalised images to vectors, run without gradients in batches."""

    def __init__(self, name: str, module: torch.nn.Module, dim: int, image_size: int, config: dict, batch_size: int = 64):
        self.name, self.module, self.dim, self.image_size = name, module.eval(), dim, image_size
        self.config = {"name": name, "dim": dim, "image_size": image_size, **config}
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        outputs = [self.module(_to_tensor(frames[i:i + self.batch_size], self.image_size))
                   for i in range(0, len(frames), self.batch_size)]
        return torch.cat(outputs).float().numpy() if outputs else np.zeros((0, self.dim), np.float32)


class _MobileNetFeatures(torch.nn.Module):
    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.features = network.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)


class _VitCls(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).last_hidden_state[:, 0]


def _load_state_dict(module: torch.nn.Module, checkpoint: str | os.PathLike) -> None:
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(path, "backbone checkpoint not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    missing, unexpected = module.load_state_dict(state, strict=False)
    if len(missing) > len(state) or not state:
        raise InputError(path, f"checkpoint does not fit the backbone ({len(missing)} missing, {len(unexpected)} unexpected keys)")


def make_backbone(name: str, image_size: int = 96, checkpoint: str | os.PathLike | None = None) -> TorchBackbone:
    """`mobilenet_v2` | `resnext50` | `vit` | `vit-tiny`; `checkpoint` is a local weights file (or a
    transformers folder for the ViTs). Nothing is downloaded."""
    source = {"checkpoint": str(checkpoint) if checkpoint else None}
    if name == "mobilenet_v2":
        from core.pretrained import imagenet_mobilenet_v2

        module = _MobileNetFeatures(imagenet_mobilenet_v2())
        if checkpoint:
            _load_state_dict(module, checkpoint)
        return TorchBackbone(name, module, 1280, image_size, {"weights": "imagenet", **source})
    if name == "resnext50":
        import timm

        module = timm.create_model("resnext50_32x4d", pretrained=False, num_classes=0)
        if checkpoint:
            _load_state_dict(module, checkpoint)
        return TorchBackbone(name, module, 2048, image_size, {"weights": "checkpoint" if checkpoint else "random", **source})
    if name in ("vit", "vit-tiny"):
        from transformers import ViTConfig, ViTModel

        if checkpoint and Path(checkpoint).is_dir():
            model = ViTModel.from_pretrained(str(checkpoint), local_files_only=True, add_pooling_layer=False)
            image_size = model.config.image_size
        else:
            tiny = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, patch_size=16)
            model = ViTModel(ViTConfig(image_size=image_size, **(tiny if name == "vit-tiny" else {})), add_pooling_layer=False)
            if checkpoint:
                _load_state_dict(model, checkpoint)
        return TorchBackbone(name, _VitCls(model), model.config.hidden_size, image_size,
                             {"weights": "checkpoint" if checkpoint else "random", **source})
    raise ValueError(f"unknown backbone {name!r}; choose mobilenet_v2, resnext50, vit or vit-tiny")


def frame_views(frames: np.ndarray, views: Sequence[str]) -> list[np.ndarray]:
    """The whole frames and/or their halves (the original used whole, left and right; top and bottom
    give vertical position the same way)."""
    half, middle = frames.shape[2] // 2, frames.shape[1] // 2
    available = {"whole": frames, "left": frames[:, :, :max(half, 1)], "right": frames[:, :, half:],
                 "top": frames[:, :max(middle, 1)], "bottom": frames[:, middle:]}
    unknown = set(views) - set(available)
    if unknown:
        raise ValueError(f"unknown views {sorted(unknown)}; choose from {sorted(available)}")
    return [available[v] for v in views]


class FrameEmbedder:
    """Frames (T, H, W, 3) → (T, channels, channel_size): every view through every backbone, each vector cut
    into zero-padded chunks of `channel_size`."""

    def __init__(self, backbones: Sequence[TorchBackbone], views: Sequence[str] = VIEWS, channel_size: int | None = None):
        self.backbones, self.views = list(backbones), list(views)
        self.channel_size = channel_size or max(b.dim for b in self.backbones)
        self.chunks = [math.ceil(b.dim / self.channel_size) for b in self.backbones]
        self.channel_names = [f"{view}/{b.name}/{k}" for view in self.views for b, n in zip(self.backbones, self.chunks)
                              for k in range(n)]
        self.config = {"backbones": [b.config for b in self.backbones], "views": self.views, "channel_size": self.channel_size}

    @property
    def channels(self) -> int:
        return len(self.channel_names)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import cv2

        out = np.zeros((len(frames), self.channels, self.channel_size), dtype=np.float32)
        views = frame_views(frames, self.views)
        per_backbone = []
        for backbone in self.backbones:
            # All views of all frames in one batch: each view is resized to the backbone's square input first.
            size = getattr(backbone, "image_size", None)
            batch = [np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in view]) if size else view
                     for view in views]
            vectors = backbone(np.concatenate(batch)) if size else np.concatenate([backbone(v) for v in batch])
            per_backbone.append(vectors.reshape(len(views), len(frames), -1))
        channel = 0
        for v in range(len(views)):
            for vectors, chunks in zip(per_backbone, self.chunks):
                for k in range(chunks):
                    piece = vectors[v, :, k * self.channel_size:(k + 1) * self.channel_size]
                    out[:, channel, :piece.shape[1]] = piece
                    channel += 1
        return out


# ----------------------------------------------------------------------------------------- cache
@dataclass
class EmbeddingCache:
    embeddings: np.ndarray  # (clips, time, channels, features)
    targets: np.ndarray
    video_ids: np.ndarray
    labels: list[str]
    channel_names: list[str]
    config: dict


def _open_existing(path: Path):
    """The open file, or None when it is missing or cannot be read (truncated, not HDF5)."""
    import h5py

    if not path.is_file():
        return None
    try:
        handle = h5py.File(path, "a")
        json.loads(handle.attrs["config"])
        for name in ("embeddings", "targets", "video_ids", "done"):
            handle[name].shape  # noqa: B018  (touch every dataset)
        return handle
    except Exception as error:  # h5py raises OSError/KeyError/... for broken files
        warnings.warn(f"{path}: unreadable cache ({type(error).__name__}: {error}); rebuilding it", stacklevel=3)
        try:
            handle.close()  # type: ignore[possibly-undefined]
        except Exception:
            pass
        path.unlink()
        return None


def build_cache(items: Sequence[VideoItem], path: str | os.PathLike, embedder: FrameEmbedder, labels: Sequence[str],
                num_frames: int = 32, clip_reader: Callable[[VideoItem, int], np.ndarray] = read_clip,
                rebuild: bool = False, progress: bool = True, stop_after: int | None = None) -> dict:
    """Embed every clip into `path`, resuming a partial file built with the same settings.

    Returns {"clips": done, "new": embedded now, "frames_per_second": sampled frames per second of this run}.
    `stop_after` embeds at most that many new clips (to test resuming)."""
    import h5py
    from tqdm import tqdm

    path = Path(path)
    labels = list(labels)
    video_ids = [item.video_id for item in items]
    config = {"version": CACHE_VERSION, "num_frames": num_frames, "labels": labels, "channel_names": embedder.channel_names,
              **embedder.config}
    expected = json.dumps(config, sort_keys=True)
    handle = _open_existing(path)
    if handle is not None:
        stored_ids = [v.decode() if isinstance(v, bytes) else v for v in handle["video_ids"][:]]
        stale = None
        if handle.attrs["config"] != expected:
            stale = "built with other settings (backbone, views, frames or labels)"
        elif stored_ids != video_ids:
            stale = "built from another clip list"
        if stale:
            handle.close()
            if not rebuild:
                raise StaleCacheError(path, f"stale cache: {stale}; delete it or pass --rebuild-cache")
            path.unlink()
            handle = None
    if handle is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = h5py.File(path, "w")
        handle.attrs["config"] = expected
        handle.attrs["complete"] = False
        shape = (len(items), num_frames, embedder.channels, embedder.channel_size)
        handle.create_dataset("embeddings", shape=shape, dtype="float32", compression="gzip", compression_opts=4,
                              chunks=(1, *shape[1:]))
        handle.create_dataset("targets", data=np.array([labels.index(item.label) for item in items], dtype=np.int64))
        handle.create_dataset("video_ids", data=np.array(video_ids, dtype=object), dtype=h5py.string_dtype())
        handle.create_dataset("done", data=np.zeros(len(items), dtype=bool))
    new, frames, seconds = 0, 0, 0.0
    try:
        done = handle["done"][:]
        todo = np.flatnonzero(~done)
        for i in tqdm(todo, desc=f"embedding {path.name}", disable=not progress, unit="clip"):
            if stop_after is not None and new >= stop_after:
                break
            clip = clip_reader(items[i], num_frames)
            started = time.perf_counter()
            handle["embeddings"][i] = embedder(clip)
            seconds += time.perf_counter() - started
            handle["done"][i] = True
            handle.flush()  # a crash after this point keeps clip i
            new, frames = new + 1, frames + len(clip)
        complete = bool(handle["done"][:].all())
        handle.attrs["complete"] = complete
        total = int(handle["done"][:].sum())
    finally:
        handle.close()
    return {"clips": total, "new": new, "complete": complete, "frames_per_second": frames / seconds if seconds else float("nan")}


def read_cache(path: str | os.PathLike) -> EmbeddingCache:
    """A complete cache; an incomplete or unreadable one is an error that says how to fix it."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "embedding cache not found")
    try:
        with h5py.File(path, "r") as handle:
            config = json.loads(handle.attrs["config"])
            if not handle.attrs.get("complete", False):
                raise InputError(path, f"incomplete cache ({int(handle['done'][:].sum())}/{len(handle['done'])} clips); "
                                       "run the extraction again to resume it")
            return EmbeddingCache(handle["embeddings"][:], handle["targets"][:],
                                  np.array([v.decode() if isinstance(v, bytes) else v for v in handle["video_ids"][:]]),
                                  config["labels"], config["channel_names"], config)
    except InputError:
        raise
    except Exception as error:
        raise InputError(path, f"unreadable cache ({type(error).__name__}: {error}); delete it to rebuild") from error


def make_embedder(backbone: str = "mobilenet_v2", image_size: int = 96, views: Sequence[str] = VIEWS,
                  channel_size: int | None = None, checkpoints: Sequence[str | None] = ()) -> FrameEmbedder:
    """`backbone` may list several (`resnext50,vit`); `checkpoints` gives a local weights path per backbone."""
    names = [b for b in backbone.split(",") if b]
    paths = list(checkpoints) + [None] * (len(names) - len(checkpoints))
    return FrameEmbedder([make_backbone(n, image_size, p) for n, p in zip(names, paths)], views, channel_size)


def build_cache_for_folder(root: str | os.PathLike, path: str | os.PathLike, layout: str = "auto",
                           labels_csv: str | os.PathLike | None = None, backbone: str = "mobilenet_v2",
                           num_frames: int = 32, image_size: int = 96, views: Sequence[str] = VIEWS,
                           channel_size: int | None = None, checkpoints: Sequence[str | None] = (), rebuild: bool = False,
                           allow_gaps: bool = False, progress: bool = True) -> dict:
    clips = read_clips(root, layout, labels_csv, allow_gaps)
    if not clips.items:
        raise InputError(root, "no usable clips")
    embedder = make_embedder(backbone, image_size, views, channel_size, checkpoints)
    return build_cache(clips.items, path, embedder, clips.labels, num_frames, rebuild=rebuild, progress=progress)


def embedder_from_config(config: dict) -> FrameEmbedder:
    """Rebuild the embedder a cache (or a model trained on it) was made with."""
    backbones = config["backbones"]
    return make_embedder(",".join(b["name"] for b in backbones), backbones[0]["image_size"], config["views"],
                         config["channel_size"], [b.get("checkpoint") for b in backbones])
