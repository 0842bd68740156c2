import os

import numpy as np
import pytest
import torch

from core.onnx import cached_export_path, cached_onnx_session, export_onnx, onnx_session


def test_export_runs_in_onnxruntime_with_any_batch_and_metadata(tmp_path):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                  torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    path = export_onnx(network, torch.zeros(1, 1, 8, 8), tmp_path / "net.onnx", ["x"], ["y"], {"labels": "a,b"}, task="demo")
    session = onnx_session(path, threads=1)
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 8)).astype(np.float32)
    (y,) = session.run(None, {"x": x})
    np.testing.assert_allclose(y, network(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    assert session.get_modelmeta().custom_metadata_map["labels"] == "a,b"
    assert session.get_modelmeta().custom_metadata_map["task"] == "demo"
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"], "no temporary file left behind"


def test_cache_path_follows_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "best.ckpt"
    checkpoint.write_bytes(b"one")
    first = cached_export_path(checkpoint, "task")
    assert first == cached_export_path(checkpoint, "task") and first.suffix == ".onnx"
    checkpoint.write_bytes(b"two, longer")
    os.utime(checkpoint, ns=(1, 1))
    assert cached_export_path(checkpoint, "task") != first


def test_cached_session_exports_once_and_honours_the_backend(tmp_path, monkeypatch):
    monkeypatch.setattr("core.onnx.CACHE_DIR", tmp_path / "cache")
    checkpoint = tmp_path / "best.ckpt"
    checkpoint.write_bytes(b"weights")
    network = torch.nn.Linear(3, 2).eval()
    exports = []

    def export(target):
        exports.append(target)
        export_onnx(network, torch.zeros(1, 3), target, ["x"], ["y"], task="demo")

    for _ in range(2):
        session = cached_onnx_session(checkpoint, "task", export, threads=1)
        (y,) = session.run(None, {"x": np.ones((4, 3), np.float32)})
        assert y.shape == (4, 2)
    assert len(exports) == 1, "the second call reuses the cached export"
    assert cached_onnx_session(checkpoint, "task", export, threads=1, backend="torch") is None
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        cached_onnx_session(checkpoint, "task", export, threads=1, backend="gpu")
