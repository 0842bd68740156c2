"""Model files checked before they are loaded: one place that says what a file is and whose model it is.

    checked_model(path, "emotion", (CHECKPOINT, ONNX))   # -> ModelFile(path, format, task, labels)
    onnx_model_session(path, "emotion", threads)          # -> (onnxruntime session, metadata)
    load_lightning_checkpoint(EmotionModule, path, "emotion", pretrained=False)

A user may pass any file as a model: a text file named `.onnx`, another task's checkpoint, a truncated
download. Each is an `InputError` naming the file and the reason ("is an emotion model, not an
action_recognition model", "is not a model file (text)"), so `core.cli.run_main` ends with status 2.
The format comes from the first bytes, not the extension; for a PyTorch checkpoint the task and labels are
read from its pickle without PyTorch (`_StubUnpickler`: no code runs, tensors are skipped), so a wrong file
is refused in milliseconds instead of after the seconds PyTorch takes to import.

Every model file says which task it belongs to: Lightning checkpoints get `task` and `labels` keys
(`core.training.ClassificationModule.on_save_checkpoint`), ONNX exports `task` and `labels` metadata
(`core.onnx.export_onnx`), landmark classifiers a `task` entry. Files from before that carry none and are
judged by whether they load.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from core.io import InputError

CHECKPOINT, ONNX, JOBLIB, NPZ = "checkpoint", "onnx", "joblib", "npz"
DESCRIPTIONS = {CHECKPOINT: "a PyTorch checkpoint", ONNX: "an ONNX file", JOBLIB: "a joblib / pickle file",
                NPZ: "a numpy .npz archive"}
# torch.save's legacy (non-zip) format starts with this pickled magic number
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ": "xz", b"\x78\x9c": "zlib", b"\x78\x01": "zlib",
               b"\x78\xda": "zlib", b"ZF": "zlib"}  # joblib.dump(..., compress=...) writes one of these


@dataclass(frozen=True)
class ModelFile:
    path: Path
    format: str
    task: str | None = None          # None: the file does not say (made before files said it)
    labels: list[str] | None = None
    metadata: dict = field(default_factory=dict)


def sniff_format(path: str | os.PathLike) -> str:
    """CHECKPOINT, ONNX, JOBLIB or NPZ from the file's first bytes; an InputError saying what else it is."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder, not a model file")
    if not path.is_file():
        raise InputError(path, "model file not found")
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise InputError(path, "empty file (0 bytes), not a model")
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(path)
    if head.startswith(_LEGACY_TORCH_MAGIC):
        return CHECKPOINT
    if head[:1] == b"\x80" or any(head.startswith(magic) for magic in _COMPRESSED):
        return JOBLIB
    # an ONNX ModelProto starts with its ir_version (field 1, a small varint)
    if len(head) > 2 and head[0] == 0x08 and 1 <= head[1] <= 32 and not _looks_like_text(head):
        return ONNX
    if _looks_like_text(head):
        raise InputError(path, "is not a model file (text)")
    raise InputError(path, "is not a model file this project reads (not a checkpoint, ONNX, joblib or npz file)")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(path, f"damaged or truncated file (a broken zip archive: {error})") from None
    if any(name.endswith("data.pkl") for name in names):
        return CHECKPOINT
    if names and all(name.endswith(".npy") for name in names):
        return NPZ
    raise InputError(path, "is a zip archive, not a model file")


class _Stub(dict):
    """Whatever class or function a checkpoint's pickle names: built from nothing, so no code runs."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


class _StubUnpickler(pickle.Unpickler):
    """Reads a checkpoint's top-level dict (task, labels, hyperparameters) without PyTorch: every class is a
    `_Stub`, every tensor's storage (a persistent id) is None."""

    SAFE = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.SAFE:
            return super().find_class(module, name)
        return _Stub

    def persistent_load(self, pid: Any) -> None:
        return None


def checkpoint_header(path: str | os.PathLike) -> dict:
    """The top-level entries of a zip-format PyTorch checkpoint, tensors left out; {} for the legacy format."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if member is None:
                return {}
            data = archive.read(member)
        header = _StubUnpickler(io.BytesIO(data)).load()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise InputError(path, f"damaged or truncated checkpoint ({error})") from None
    except pickle.UnpicklingError as error:
        raise InputError(path, f"damaged checkpoint (its pickle does not read: {error})") from None
    if not isinstance(header, dict):
        raise InputError(path, "is a PyTorch file but not a checkpoint (no dict inside)")
    return header


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise EOFError
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def onnx_metadata(path: str | os.PathLike) -> dict:
    """The metadata_props of an ONNX file, read by walking the top-level protobuf fields of its ModelProto (no
    onnx or onnxruntime import: milliseconds even for a large file). A field that runs past the end of the file
    means a truncated download: an InputError."""
    path = Path(path)
    data = path.read_bytes()
    metadata, position = {}, 0
    try:
        while position < len(data):
            tag, position = _varint(data, position)
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                _, position = _varint(data, position)
            elif wire in (1, 5):
                position += 8 if wire == 1 else 4
            elif wire == 2:
                length, position = _varint(data, position)
                if number == 14:   # ModelProto.metadata_props: StringStringEntryProto {key = 1, value = 2}
                    metadata.update([_string_entry(data[position:position + length])])
                position += length
            else:
                raise ValueError(f"wire type {wire}")
            if position > len(data):
                raise EOFError
    except EOFError:
        raise InputError(path, "damaged or truncated ONNX file (it ends inside a field)") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(path, f"damaged ONNX file ({error})") from None
    return metadata


def _string_entry(entry: bytes) -> tuple[str, str]:
    fields, position = {}, 0
    while position < len(entry):
        tag, position = _varint(entry, position)
        if tag & 7 != 2:
            raise ValueError("a metadata entry that is not key and value strings")
        length, position = _varint(entry, position)
        fields[tag >> 3] = entry[position:position + length].decode("utf-8")
        position += length
    return fields.get(1, ""), fields.get(2, "")


def _labels(value: Any) -> list[str] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else None


def checked_model(path: str | os.PathLike, task: str, formats: Iterable[str] = (CHECKPOINT, ONNX)) -> ModelFile:
    """The model file at `path` if it is one of `formats` and, where it says, a model of `task`; else an
    InputError."""
    path = Path(path)
    formats = tuple(formats)
    kind = sniff_format(path)
    if kind not in formats:
        wanted = " or ".join(DESCRIPTIONS[f] for f in formats)
        raise InputError(path, f"is {DESCRIPTIONS[kind]}, but {task} needs {wanted} here")
    if kind == ONNX:
        metadata = onnx_metadata(path)
        _check_task(path, metadata.get("task"), task)
        return ModelFile(path, kind, metadata.get("task"), _labels(metadata.get("labels")), metadata)
    if kind != CHECKPOINT:
        return ModelFile(path, kind)
    header = checkpoint_header(path)
    found = header.get("task")
    if found is None and "state_dict" not in header and header:
        raise InputError(path, "is a PyTorch file but not a Lightning checkpoint (no state_dict)")
    labels = _labels(header.get("labels"))
    _check_task(path, found, task)
    return ModelFile(path, kind, found, labels, {k: v for k, v in header.items() if k in ("hyper_parameters",)})


def _check_task(path: Path, found: str | None, task: str) -> None:
    if found is not None and found != task:
        raise InputError(path, f"is {_a(found)} model, not {_a(task)} model")


def _a(name: str) -> str:
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def onnx_model_session(path: str | os.PathLike, task: str, threads: int = 2,
                       required: Iterable[str] = ()) -> tuple[Any, dict]:
    """(onnxruntime session, metadata) of an ONNX model of `task`; its metadata must hold `required` keys."""
    from core.onnx import onnx_session

    path = Path(path)
    checked_model(path, task, (ONNX,))
    try:
        session = onnx_session(path, threads)
    except Exception as error:  # onnxruntime raises its own InvalidProtobuf / Fail / InvalidGraph types
        raise InputError(path, f"damaged or unreadable ONNX file ({str(error).splitlines()[0][:200]})") from None
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    _check_task(path, metadata.get("task"), task)
    missing = [key for key in required if key not in metadata]
    if missing:
        raise InputError(path, f"is not {_a(task)} ONNX export (no {', '.join(missing)} in its metadata)")
    return session, metadata


def load_lightning_checkpoint(module_class: Any, path: str | os.PathLike, task: str, **kwargs: Any) -> Any:
    """`module_class.load_from_checkpoint(path, **kwargs)` in eval mode, after `checked_model`; a checkpoint
    that does not fit (another network, missing hyperparameters) is an InputError, not a traceback."""
    path = Path(path)
    checked_model(path, task, (CHECKPOINT,))
    kwargs.setdefault("map_location", "cpu")
    try:
        return module_class.load_from_checkpoint(str(path), **kwargs).eval()
    except (RuntimeError, KeyError, TypeError, AttributeError, ValueError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise InputError(path, f"is not {_a(task)} checkpoint this code can load ({reason})") from None
