"""ONNX export and onnxruntime sessions for CPU inference.

Small CNNs run several times faster in onnxruntime than in eager PyTorch on a CPU (conv + BatchNorm +
ReLU are fused, no Python per layer). Tasks export a network once from its Lightning checkpoint into a
cache file keyed by the checkpoint's path, size and time, so a retrained checkpoint gets a new export.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

from core.env import CACHE_DIR
from core.io import atomic_path

BACKENDS = ("auto", "onnx", "torch")  # auto = onnxruntime when it is installed, else PyTorch


def onnx_bytes(network, example_input, input_names: Sequence[str], output_names: Sequence[str], opset: int = 17,
               dynamic_axes: Mapping[str, Mapping[int, str]] | None = None) -> bytes:
    """`network` (eval mode, CPU) as an in-memory ONNX model; `dynamic_axes` (name -> {axis: label}) says which
    axes may vary, by default the batch axis of every input and output."""
    import torch

    buffer = io.BytesIO()
    dynamic_axes = dynamic_axes or {name: {0: "batch"} for name in (*input_names, *output_names)}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(network.eval().cpu(), example_input, buffer, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False)
    return buffer.getvalue()


def export_onnx(network, example_input, target: str | Path, input_names: Sequence[str],
                output_names: Sequence[str], metadata: Mapping[str, str] | None = None, opset: int = 17,
                dynamic_axes: Mapping[str, Mapping[int, str]] | None = None, *, task: str) -> Path:
    """Write `network` as an ONNX file (atomically); `metadata` goes into the file's metadata_props so it
    describes itself, with the `task` it belongs to (core.models refuses it for another task).
    `dynamic_axes` as in `onnx_bytes`."""
    import onnx

    model = onnx.load_from_string(onnx_bytes(network, example_input, input_names, output_names, opset, dynamic_axes))
    for key, value in {"task": task, **(metadata or {})}.items():
        model.metadata_props.add(key=key, value=str(value))
    with atomic_path(target) as tmp:
        onnx.save(model, str(tmp))
    return Path(target)


def cached_export_path(checkpoint: str | Path, task: str, key: str = "") -> Path:
    """Where the ONNX export of `checkpoint` is cached (.cache/<task>/onnx/); changes when the checkpoint does."""
    checkpoint = Path(checkpoint)
    stat = checkpoint.stat()
    key = hashlib.sha1(f"{checkpoint.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{key}".encode()).hexdigest()[:16]
    return CACHE_DIR / task / "onnx" / f"{checkpoint.stem}-{key}.onnx"


def onnx_session(model: str | Path | bytes, threads: int = 2):
    """A CPU onnxruntime session, from a file or from `onnx_bytes`, using `threads` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=["CPUExecutionProvider"])


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def cached_onnx_session(checkpoint: str | Path, task: str, export: Callable[[Path], object], threads: int,
                        backend: str = "auto", key: str = ""):
    """The onnxruntime session of `checkpoint`'s ONNX export, made once by `export(path)` into the cache
    (`key` separates exports of one checkpoint made with other settings). None for backend "torch", and
    for "auto" when onnx or onnxruntime is not installed; "onnx" then raises the ImportError."""
    check_backend(backend)
    if backend == "torch":
        return None
    try:
        import onnxruntime  # noqa: F401  (no export when the runtime is missing)

        path = cached_export_path(checkpoint, task, key)
        if not path.is_file():
            export(path)
        return onnx_session(path, threads)
    except ImportError:
        if backend == "onnx":
            raise
        return None
