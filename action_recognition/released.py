"""The released model as one ONNX file: uint8 clips in, class probabilities out.

`make weights` writes weights/action_recognition/frame.onnx from frame.ckpt (`export_checkpoint`): the
ImageNet backbone with its frame resizing and normalisation (features.FrameEncoder) and the trained head,
computing what inference.predict_probabilities computes from the checkpoint. A fine-tuned model (TSN, TSM or
GRU with `finetune`) exports the same way, its own backbone (frozen stem, fine-tuned blocks, temporal shifts)
inside the file; a TSM file takes clips of the length it was trained on only (the shift is built for it). Its metadata_props say what
predict needs (labels, frames per clip, frame size). `ReleasedModel` runs it with onnxruntime alone, so a
one-clip predict starts without importing PyTorch, torchvision or Lightning (seconds instead of ~11 s).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from action_recognition.data import LoadedClips
from core.io import atomic_path
from core.models import onnx_model_session
from core.onnx import export_onnx

INPUT, OUTPUT = "clips", "probabilities"
# clips (N, T, H, W, 3): clip count, length and frame size may all vary (square image folders keep their size)
DYNAMIC_AXES = {INPUT: {0: "clips", 1: "frames", 2: "height", 3: "width"}, OUTPUT: {0: "clips"}}
OPSET = 18   # Resize's antialias attribute (opset 18) is how the graph shrinks large frames as FrameEncoder does


def clip_probabilities_network(module):
    """An nn.Module mapping uint8 clips (N, T, H, W, 3) to the class probabilities (N, C) of `module` (an
    ActionModule over frozen frame features, or fine-tuned over frames), as inference.predict_probabilities
    computes them."""
    import torch

    from action_recognition.features import FrameEncoder

    hp = module.hparams
    if hp.model == "keypoint":
        raise ValueError("the keypoint model reads body keypoints, not frames: it does not export to one ONNX file")

    class FineTunedClipProbabilities(torch.nn.Module):   # the module holds its backbone and reads the frames itself
        def __init__(self):
            super().__init__()
            self.module = module

        def forward(self, clips: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.module(clips), dim=1)

    if hp.finetune:
        return FineTunedClipProbabilities().eval()

    class ClipProbabilities(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.module = FrameEncoder(hp.backbone, hp.image_size), module

        def forward(self, clips: torch.Tensor) -> torch.Tensor:
            clips_count, frames = clips.shape[:2]
            features = self.encoder(clips.flatten(0, 1)).view(clips_count, frames, -1)
            return torch.softmax(self.module(features), dim=1)

    return ClipProbabilities().eval()


def antialias_resizes(path: Path) -> None:
    """Set antialias on the file's Resize nodes: the TorchScript exporter drops interpolate's antialias, which
    FrameEncoder uses when it shrinks frames (with it, onnxruntime shrinks as PyTorch does; enlarging is unchanged)."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.op_type == "Resize":
            node.attribute.append(onnx.helper.make_attribute("antialias", 1))
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def export_checkpoint(checkpoint: str | Path, target: str | Path) -> Path:
    """The ONNX file of a frame-based checkpoint, frozen features or fine-tuned (what `make weights` releases)."""
    import torch

    from action_recognition.inference import load_model

    module = load_model(checkpoint)
    hp = module.hparams
    # traced on frames of another size than image_size, so the graph resizes every input (FrameEncoder skips
    # resizing frames that already have the size, and a trace keeps only the branch it took)
    example = torch.zeros(1, hp.num_frames, hp.image_size // 2, hp.image_size // 2, 3, dtype=torch.uint8)
    shift = bool(getattr(hp, "temporal_shift", False))
    metadata = {"labels": json.dumps(list(module.labels)), "num_frames": hp.num_frames, "frame_size": hp.frame_size,
                "image_size": hp.image_size, "backbone": hp.backbone, "model": hp.model,
                "finetune": bool(hp.finetune), "temporal_shift": shift, "exported_from": Path(checkpoint).name}
    # the temporal shift splits the batch into clips of num_frames frames: that length is fixed in the graph
    axes = {INPUT: {k: v for k, v in DYNAMIC_AXES[INPUT].items() if k != 1}, OUTPUT: DYNAMIC_AXES[OUTPUT]} \
        if shift else DYNAMIC_AXES
    path = export_onnx(clip_probabilities_network(module), example, target, [INPUT], [OUTPUT], metadata, OPSET,
                       axes, task="action_recognition")
    antialias_resizes(path)
    return path


@dataclass
class ReleasedModel:
    """The released ONNX file, run with onnxruntime: its metadata and `probabilities` for clips."""

    session: object
    labels: list[str]
    num_frames: int
    frame_size: int | None

    @classmethod
    def load(cls, path: str | Path, threads: int = 2) -> "ReleasedModel":
        session, metadata = onnx_model_session(path, "action_recognition", threads, ("labels", "num_frames", "frame_size"))
        frame_size = metadata["frame_size"]
        return cls(session, json.loads(metadata["labels"]), int(metadata["num_frames"]),
                   None if frame_size == "None" else int(frame_size))

    def clip_probabilities(self, frames: np.ndarray) -> np.ndarray:
        """(C,) class probabilities of one clip (T, H, W, 3) uint8."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(frames, dtype=np.uint8)[None]})[0][0]

    def probabilities(self, loaded: LoadedClips, tta_flip: bool = False) -> np.ndarray:
        """(N, C) class probabilities; `tta_flip` averages them with those of the left-right mirrored clips.
        One clip per run, so clips of different lengths or frame sizes need no stacking."""
        if not loaded.frames:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        probabilities = np.stack([self.clip_probabilities(frames) for frames in loaded.frames])
        if tta_flip:
            mirrored = np.stack([self.clip_probabilities(np.asarray(frames)[:, :, ::-1]) for frames in loaded.frames])
            probabilities = (probabilities + mirrored) / 2
        return probabilities
