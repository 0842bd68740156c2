"""The frame encoder's ImageNet backbones (MobileNetV2, EfficientNet-Lite0/1/2): offline loading, the
ImageNet network kept intact, partial fine-tuning, the temporal shift, per-backbone caches and ONNX export."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skimage_data

from action_recognition.features import (FEATURE_BLOCKS, FrameEncoder, cached_clip_features, cached_stem_maps)
from action_recognition.model import ActionModule
from core.onnx import onnx_bytes, onnx_session
from core.pretrained import EFFICIENTNET_LITE_INPUT_SIZE, imagenet_efficientnet_lite

LABELS = ["a", "b", "c"]
EFFICIENTNETS = [name for name in FEATURE_BLOCKS if name.startswith("efficientnet_lite")]


def _frames(count: int, size: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8))


@pytest.mark.parametrize("level", [0, 1, 2])
def test_efficientnet_loads_offline_as_the_imagenet_network_with_its_own_input_scaling(level):
    """The encoder's feature blocks pool to timm's features under TF-Lite scaling, and ImageNet's classifier on
    them still calls scikit-image's coffee photo an espresso or a cup (967, 968)."""
    network = imagenet_efficientnet_lite(level).eval()
    size = EFFICIENTNET_LITE_INPUT_SIZE[level]
    encoder = FrameEncoder(f"efficientnet_lite{level}", size).eval()
    assert len(encoder.body[0]) == FEATURE_BLOCKS[f"efficientnet_lite{level}"]
    photo = torch.from_numpy(skimage_data.coffee())[None]
    with torch.no_grad():
        features = encoder(photo)
        scaled = (encoder.prepare(photo) * encoder.std + encoder.mean - 0.5) / 0.5     # (x - 0.5) / 0.5
        expected = network.forward_head(network.forward_features(scaled), pre_logits=True)
        top5 = network.classifier(features).topk(5).indices[0].tolist()
    assert features.shape == (1, 1280)
    torch.testing.assert_close(features, expected)
    assert {967, 968} & set(top5), top5


def test_efficientnet_partial_finetune_freezes_blocks_before_k_and_reads_cached_maps(tmp_path):
    torch.manual_seed(0)
    module = ActionModule(LABELS, "tsn", finetune=True, backbone="efficientnet_lite0", image_size=32,
                          finetune_from=9).train()
    encoder = module.encoder
    assert len(encoder.stem_blocks) == 9 and len(encoder.tail_blocks) == FEATURE_BLOCKS["efficientnet_lite0"] - 9
    assert not any(p.requires_grad for p in encoder.stem_blocks.parameters())
    assert all(p.requires_grad for p in encoder.tail_blocks.parameters())
    assert not encoder.stem_blocks.training and encoder.tail_blocks.training   # stem batch-norm stays ImageNet's
    module.eval()
    clips = _frames(6).view(2, 3, 24, 24, 3)
    maps = cached_stem_maps(["x", "y"], list(clips.numpy()), encoder, "plain", cache_dir=tmp_path)
    with torch.no_grad():       # the same clip logits from frames (prediction) and from cached maps (training)
        torch.testing.assert_close(module(clips), module(torch.from_numpy(maps.astype(np.float32))), atol=1e-2, rtol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["efficientnet_lite0_32px_stem9_plain_3frames.npz"]
    with pytest.raises(ValueError, match="first_trained must be in 1..17"):
        FrameEncoder("efficientnet_lite0", 32, first_trained=18)
    with pytest.raises(ValueError, match="needs one of mobilenet_v2, efficientnet_lite0"):
        FrameEncoder("resnet18", 32, temporal_shift=True)


def test_efficientnet_temporal_shift_sits_in_the_trained_blocks_with_a_skip():
    torch.manual_seed(0)
    module = ActionModule(LABELS, "tsn", finetune=True, backbone="efficientnet_lite0", image_size=32, finetune_from=9,
                          temporal_shift=True).eval()
    # trained blocks 9..17: 9, 12 and 16 open a stage (new width or stride, no skip), 17 is the 1x1 conv
    shifted = [k for k, block in enumerate(module.encoder.tail_blocks, start=9)
               if isinstance(getattr(block, "conv_pw", None), torch.nn.Sequential)]
    assert shifted == [10, 11, 13, 14, 15] and len(module.encoder.shifts) == 5
    frames = _frames(6).view(2, 3, 24, 24, 3)
    with torch.no_grad():
        assert not torch.allclose(module(frames[:, [2, 0, 1]]), module(frames), atol=1e-4)
        torch.testing.assert_close(module(frames[:1]), module(frames)[:1], atol=1e-5, rtol=0)  # no leak across clips


def test_feature_caches_are_kept_per_backbone(tmp_path):
    clips = list(_frames(4).view(2, 2, 24, 24, 3).numpy())
    mobilenet = cached_clip_features(["x", "y"], clips, "mobilenet_v2", 32, cache_dir=tmp_path)
    efficientnet = cached_clip_features(["x", "y"], clips, "efficientnet_lite0", 32, cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["efficientnet_lite0_32px_2frames.npz", "mobilenet_v2_32px_2frames.npz"]
    assert mobilenet.shape == efficientnet.shape == (2, 2, 1280) and not np.allclose(mobilenet, efficientnet)
    np.testing.assert_array_equal(cached_clip_features(["y"], clips[1:], "efficientnet_lite0", 32, cache_dir=tmp_path),
                                  efficientnet[1:])


@pytest.mark.parametrize("backbone", EFFICIENTNETS)
def test_efficientnet_exports_to_onnx_and_onnxruntime_agrees(backbone):
    """The frozen blocks (the cache filler's onnxruntime stem) and the whole encoder."""
    encoder = FrameEncoder(backbone, 32, first_trained=5).eval()
    frames = _frames(3, 32)
    np.testing.assert_allclose(encoder.onnx_stem()(frames).numpy(), encoder.stem(frames).numpy(), atol=1e-4)
    prepared = frames.permute(0, 3, 1, 2).float() / 255
    session = onnx_session(onnx_bytes(encoder, prepared[:1], ["frames"], ["features"]), threads=1)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"frames": prepared.numpy()})[0], encoder(prepared).numpy(), atol=1e-4)


@pytest.mark.parametrize("kind", ["frame", "tsn", "gru"])
def test_heads_over_a_finetuned_efficientnet_take_frames(kind):
    module = ActionModule(LABELS, kind, finetune=True, backbone="efficientnet_lite0", image_size=32, hidden=8).eval()
    with torch.no_grad():
        assert module(_frames(6).view(2, 3, 24, 24, 3)).shape == (2, 3)
