"""The released frame model's ONNX export (weights/action_recognition/frame.onnx): it answers and describes
itself as the checkpoint does. (That it is a fresh export (same graph and weights), and that the default predict imports no
PyTorch, tests/test_released_weights.py checks for every task.)"""
from __future__ import annotations

import numpy as np
import pytest

from action_recognition.data import Clip, LoadedClips
from action_recognition.inference import load_model, predict_probabilities
from action_recognition.released import ReleasedModel
from core.weights import weights_path


def astronaut_clip(size: int, frames: int = 3) -> np.ndarray:
    """A (frames, size, size, 3) uint8 clip of a real photo panning sideways (not a random texture, so the
    classes are told apart by more than noise)."""
    import cv2
    import skimage

    photo = cv2.resize(skimage.data.astronaut(), (size + 8 * frames, size + 8 * frames), interpolation=cv2.INTER_AREA)
    return np.stack([photo[:size, 8 * k:8 * k + size] for k in range(frames)])


# 112 px: the video frames predict reads (no resizing); 64 px: UCF101 frame folders (enlarged); 160 px: a square
# frame folder larger than the model's input (shrunk with antialiasing, which onnxruntime and PyTorch do slightly
# differently, hence the looser tolerance)
@pytest.mark.parametrize("size, tolerance", [(112, 1e-5), (64, 1e-5), (160, 5e-3)])
@pytest.mark.parametrize("tta_flip", [False, True])
def test_the_released_onnx_gives_the_checkpoint_s_probabilities(size, tolerance, tta_flip):
    noise = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    loaded = LoadedClips([Clip("photo", ""), Clip("noise", "")], [astronaut_clip(size), noise])
    onnx = ReleasedModel.load(weights_path("action_recognition", "frame")).probabilities(loaded, tta_flip)
    torch = predict_probabilities(load_model(weights_path("action_recognition", "checkpoint")), loaded, tta_flip,
                                  use_cache=False)
    np.testing.assert_allclose(onnx, torch, atol=tolerance)
    assert (onnx.argmax(axis=1) == torch.argmax(axis=1)).all()


def test_the_released_onnx_describes_the_checkpoint():
    model = ReleasedModel.load(weights_path("action_recognition", "frame"))
    checkpoint = load_model(weights_path("action_recognition", "checkpoint"))
    assert (model.labels, model.num_frames, model.frame_size) == (list(checkpoint.labels), checkpoint.hparams.num_frames,
                                                                  checkpoint.hparams.frame_size)


def fine_tuned_checkpoint(folder, model: str, temporal_shift: bool):
    """An ActionModule with MobileNetV2's blocks 11-18 fine-tuned (here: the ImageNet weights and a random head,
    the tail's weights nudged so they differ from the frozen ones), saved as train.py saves it."""
    import lightning
    import torch

    from action_recognition.model import ActionModule

    torch.manual_seed(0)
    module = ActionModule(["Bowling", "Diving", "Rowing"], model=model, finetune=True, finetune_from=11,
                          image_size=128, num_frames=3, frame_size=64, temporal_shift=temporal_shift, hidden=0)
    with torch.no_grad():
        for parameter in module.encoder.tail_blocks.parameters():
            parameter.mul_(1 + 0.05 * torch.randn_like(parameter))
    path = folder / f"{model}{'_tsm' * temporal_shift}.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": lightning.__version__}, path)
    return path


@pytest.mark.parametrize("model, temporal_shift", [("tsn", False), ("tsn", True), ("gru", False)])
def test_a_fine_tuned_model_exports_to_onnx_with_the_checkpoint_s_probabilities(tmp_path, model, temporal_shift):
    from action_recognition.released import export_checkpoint

    checkpoint = fine_tuned_checkpoint(tmp_path, model, temporal_shift)
    path = export_checkpoint(checkpoint, tmp_path / "fine_tuned.onnx")
    released_model, module = ReleasedModel.load(path, threads=1), load_model(checkpoint)
    for size in (64, 112):   # UCF101 frame folders, and the frames predict takes from a video
        noise = np.random.default_rng(size).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
        loaded = LoadedClips([Clip("photo", ""), Clip("noise", "")], [astronaut_clip(size), noise])
        onnx = released_model.probabilities(loaded, tta_flip=True)
        torch = predict_probabilities(module, loaded, tta_flip=True, use_cache=False)
        np.testing.assert_allclose(onnx, torch, atol=1e-4)
        assert (onnx.argmax(axis=1) == torch.argmax(axis=1)).all() and np.abs(onnx[0] - onnx[1]).max() > 1e-3
    assert (released_model.labels, released_model.num_frames, released_model.frame_size) == (["Bowling", "Diving", "Rowing"], 3, 64)
