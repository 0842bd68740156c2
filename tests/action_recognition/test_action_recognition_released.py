"""The released frame model's ONNX export (weights/action_recognition/frame.onnx): it answers as the checkpoint
does, it is what the export writes today, and the default predict runs it without PyTorch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from action_recognition.data import Clip, LoadedClips
from action_recognition.inference import load_model, predict_probabilities
from action_recognition.released import ReleasedModel, export_checkpoint
from core.env import REPO_ROOT
from core.weights import weights_path
from tests.conftest import write_faststart_mp4


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
    onnx = ReleasedModel.load(weights_path("action_recognition", "frame_onnx")).probabilities(loaded, tta_flip)
    torch = predict_probabilities(load_model(weights_path("action_recognition", "frame")), loaded, tta_flip,
                                  use_cache=False)
    np.testing.assert_allclose(onnx, torch, atol=tolerance)
    assert (onnx.argmax(axis=1) == torch.argmax(axis=1)).all()


def test_the_released_onnx_is_what_the_export_writes(tmp_path):
    """Byte for byte: the export is deterministic, and the committed file is up to date with the export code
    (a difference after a library upgrade means: run `python -m core.release --only action_recognition`)."""
    exported = export_checkpoint(weights_path("action_recognition", "frame"), tmp_path / "frame.onnx")
    assert exported.read_bytes() == weights_path("action_recognition", "frame_onnx").read_bytes()
    model = ReleasedModel.load(exported)
    checkpoint = load_model(weights_path("action_recognition", "frame"))
    assert (model.labels, model.num_frames, model.frame_size) == (list(checkpoint.labels), checkpoint.hparams.num_frames,
                                                                  checkpoint.hparams.frame_size)


def test_the_default_predict_does_not_import_pytorch(tmp_path):
    write_faststart_mp4(tmp_path / "clip.mp4", frames=12)
    script = ("import sys; from action_recognition import predict; "
              f"predict.main([{str(tmp_path / 'clip.mp4')!r}, '-o', {str(tmp_path / 'out.csv')!r}]); "
              "print(sorted({'torch', 'torchvision', 'lightning'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert Path(tmp_path / "out.csv").read_text().startswith("path,label,probability")
