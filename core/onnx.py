"""ONNX export and onnxruntime sessions for CPU inference.

Small CNNs run several times faster in onnxruntime than in eager PyTorch on a CPU (conv + BatchNorm +
ReLU are fused, no Python per layer). Tasks export a network once from its Lightning checkpoint into a
cache file keyed by the checkpoint's path, size and time, so a retrained checkpoint gets a new export.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping, Sequence

from core.env import CACHE_DIR
from core.io import atomic_path


def export_onnx(network, example_input, target: str | Path, input_names: Sequence[str],
                output_names: Sequence[str], metadata: Mapping[str, str] | None = None, opset: int = 17) -> Path:
    """Write `network` (eval mode, CPU) as ONNX with a dynamic batch axis on every input and output;
    `metadata` goes into the file's metadata_props so it describes itself."""
    import onnx
    import torch

    network = network.eval().cpu()
    dynamic_axes = {name: {0: "batch"} for name in (*input_names, *output_names)}
    with atomic_path(target) as tmp:
        with torch.no_grad():
            torch.onnx.export(network, example_input, str(tmp), input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=opset,
                              dynamo=False)
        model = onnx.load(str(tmp))
        for key, value in (metadata or {}).items():
            model.metadata_props.add(key=key, value=str(value))
        onnx.save(model, str(tmp))
    return Path(target)


def cached_export_path(checkpoint: str | Path, task: str, suffix: str = "") -> Path:
    """Where the ONNX export of `checkpoint` is cached (.cache/<task>/onnx/); changes when the checkpoint does."""
    checkpoint = Path(checkpoint)
    stat = checkpoint.stat()
    key = hashlib.sha1(f"{checkpoint.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{suffix}".encode()).hexdigest()[:16]
    return CACHE_DIR / task / "onnx" / f"{checkpoint.stem}-{key}.onnx"


def onnx_session(path: str | Path, threads: int = 2):
    """A CPU onnxruntime session using `threads` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
