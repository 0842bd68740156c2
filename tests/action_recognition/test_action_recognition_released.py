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
