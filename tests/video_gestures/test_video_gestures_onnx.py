"""The ONNX export of the sequence model (the released weights/video_gestures/points.onnx): the checkpoint's
answers, any batch, clear errors. (That the committed export is a fresh export (same graph and weights), and that a
one-input predict imports no PyTorch, tests/test_released_weights.py checks for every task.)"""
import numpy as np
import pytest

from core.io import InputError
from core.weights import weights_path
from video_gestures.data import point_history_features
from video_gestures.inference import load_model
from video_gestures.model import load_sequence_model, predict_with_attention


def fingertip_walks(count: int, seed: int = 0) -> np.ndarray:
    """(count, 16, 2) random fingertip walks as offsets from their first point (image fractions)."""
    steps = np.random.default_rng(seed).normal(scale=0.02, size=(count, 16, 2))
    walks = steps.cumsum(axis=1)
    return (walks - walks[:, :1]).astype(np.float32)


def test_the_released_onnx_answers_as_the_released_checkpoint():
    checkpoint = load_sequence_model(str(weights_path("video_gestures", "checkpoint")))
    exported = load_model(weights_path("video_gestures", "points"))
    assert exported.labels == checkpoint.labels and exported.input_config == checkpoint.input_config
    sequences = point_history_features(fingertip_walks(64), checkpoint.input_config["point_features"])
    for ours, theirs in zip(exported.predict_with_attention(sequences), predict_with_attention(checkpoint, sequences)):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 5])
def test_the_export_takes_any_batch_and_names_a_wrong_sequence_shape(quick_points_onnx, batch):
    model = load_model(quick_points_onnx)
    probabilities, time_attention, channel_attention = model.predict_with_attention(np.zeros((batch, 16, 3, 2)))
    assert probabilities.shape == (batch, 4) and time_attention.shape == (batch, 16)
    assert channel_attention.shape == (batch, 16, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match=r"expected \(batch, 16, 3, 2\)"):
        model.predict_with_attention(np.zeros((batch, 8, 3, 2)))


def test_an_onnx_file_without_the_metadata_is_a_clear_error(tmp_path):
    import torch

    from core.onnx import export_onnx

    path = export_onnx(torch.nn.Linear(2, 2), torch.zeros(1, 2), tmp_path / "other.onnx", ["x"], ["y"],
                       task="video_gestures")
    with pytest.raises(InputError, match="not a video_gestures ONNX export"):
        load_model(path)
