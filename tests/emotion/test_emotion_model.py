"""The emotion networks: the EfficientNet-Lite backbones load offline, see the input scaling they were
trained with although every face reaches them ImageNet-normalised, and export to ONNX like the others."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.onnx import onnx_session
from emotion.data import CLASSES, faces_to_tensor
from emotion.model import EmotionModule, build_network
from emotion.recognizer import export_onnx


def _faces(count: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size), dtype=np.uint8)


@pytest.mark.parametrize("pretrained", [True, False])
def test_efficientnet_lite_gets_tflite_scaling_from_imagenet_normalised_faces(pretrained):
    network = build_network("efficientnet_lite0", len(CLASSES), pretrained=pretrained).eval()
    seen = {}
    network.network.register_forward_pre_hook(lambda _, inputs: seen.update(x=inputs[0]))
    faces = _faces(2, 48)
    with torch.no_grad():
        logits = network(faces_to_tensor(faces))
    assert logits.shape == (2, len(CLASSES))
    # TF-Lite EfficientNets were trained on (x - 0.5) / 0.5 of the 0..1 image, the same value in each gray channel
    expected = torch.from_numpy(faces.astype(np.float32) / 255 * 2 - 1)[:, None].expand(-1, 3, -1, -1)
    torch.testing.assert_close(seen["x"], expected, atol=1e-5, rtol=0)
    assert network.network.drop_rate == 0.2


def test_pretrained_efficientnet_lite_starts_from_the_imagenet_weights():
    from core.pretrained import imagenet_efficientnet_lite

    imagenet = imagenet_efficientnet_lite(0).state_dict()
    ours = build_network("efficientnet_lite0", len(CLASSES)).network.state_dict()
    body = [name for name in imagenet if not name.startswith("classifier")]
    assert body and all(torch.equal(ours[name], imagenet[name]) for name in body)
    assert ours["classifier.weight"].shape == (len(CLASSES), 1280)


def test_efficientnet_lite_joint_model_exports_to_onnx_with_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    module = EmotionModule(architecture="efficientnet_lite0", head="joint", input_size=48, pretrained=False).eval()
    faces = faces_to_tensor(_faces(3, 48, seed=1))
    with torch.no_grad():
        outputs = module(faces)
        probabilities, va = module.class_scores(outputs), module.valence_arousal(outputs)
    session = onnx_session(export_onnx(module, tmp_path / "effl0.onnx"))
    onnx_probabilities, onnx_va = session.run(None, {"faces": faces.numpy()})
    assert onnx_probabilities.shape == (3, len(CLASSES)) and onnx_va.shape == (3, 2)
    np.testing.assert_allclose(onnx_probabilities, probabilities.numpy(), atol=1e-4)
    np.testing.assert_allclose(onnx_va, va.numpy(), atol=1e-4)
