"""From clips to model inputs to class probabilities, for any trained ActionModule.

A checkpoint knows what it needs (its hyperparameters): frozen features of a named backbone at an
image size, frames for a fine-tuned backbone, or keypoint sequences. `model_inputs` builds them
(through the disk caches), `predict_probabilities` runs the model, optionally averaging with the
left-right mirrored clip (test-time flip; not for keypoints, whose left and right landmarks would swap).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from action_recognition.data import LoadedClips
from action_recognition.features import CACHE_ROOT, FrameEncoder, cached_clip_features, cached_stem_maps
from action_recognition.keypoints import cached_keypoints
from action_recognition.model import ActionModule
from core.io import InputError
from core.models import load_lightning_checkpoint
from core.metrics import ClassificationReport, classification_report


def load_model(checkpoint: str | Path, device: str = "cpu") -> ActionModule:
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise InputError(checkpoint, "checkpoint not found (train one with `python -m action_recognition.train`)")
    return load_lightning_checkpoint(ActionModule, checkpoint, "action_recognition", map_location=device)


def model_inputs(hp, loaded: LoadedClips, flip: bool = False, use_cache: bool | Path = True,
                 progress: bool = False) -> np.ndarray:
    """What a model with hyperparameters `hp` (model, finetune, backbone, image_size: a module's
    `hparams` or a namespace) takes for these clips: (N, T, D) features or keypoints, (N, T, H, W, 3) frames,
    or, for partial fine-tuning with a cache, the frozen stem's maps (N, T, C, h, w).
    `use_cache`: True = the repository's cache, a folder = that cache, False = compute, store nothing."""
    root = CACHE_ROOT if use_cache is True else (Path(use_cache) if use_cache else None)
    sources = [c.source for c in loaded.clips]
    if hp.model == "keypoint":
        return cached_keypoints(sources, loaded.frames, cache_dir=root / "keypoints" if root else None,
                                progress=progress).features
    if hp.finetune and getattr(hp, "finetune_from", 0) and root:   # partial fine-tuning: cached frozen-stem maps
        encoder = FrameEncoder(hp.backbone, hp.image_size, first_trained=hp.finetune_from)
        return cached_stem_maps(sources, loaded.frames, encoder, "flip" if flip else "plain",
                                cache_dir=root / "features", progress=progress)
    if hp.finetune:
        frames = np.stack(loaded.frames)
        return np.ascontiguousarray(frames[:, :, :, ::-1]) if flip else frames
    return cached_clip_features(sources, loaded.frames, hp.backbone, hp.image_size, flip,
                                cache_dir=root / "features" if root else None, progress=progress)


@torch.inference_mode()
def probabilities_from_inputs(model: ActionModule, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    model.eval()
    if len(inputs) == 0:
        return np.zeros((0, len(model.labels)), dtype=np.float32)
    outputs = [torch.softmax(model(torch.from_numpy(inputs[i:i + batch_size]).to(model.device)), dim=1).cpu().numpy()
               for i in range(0, len(inputs), batch_size)]
    return np.concatenate(outputs)


def predict_probabilities(model: ActionModule, loaded: LoadedClips, tta_flip: bool = False, use_cache: bool | Path = True,
                          progress: bool = False) -> np.ndarray:
    """(N, C) class probabilities; `tta_flip` averages them with those of the mirrored clips."""
    probabilities = probabilities_from_inputs(model, model_inputs(model.hparams, loaded, False, use_cache, progress))
    if tta_flip and model.hparams.model != "keypoint":
        mirrored = probabilities_from_inputs(model, model_inputs(model.hparams, loaded, True, use_cache, progress))
        probabilities = (probabilities + mirrored) / 2
    return probabilities


def report(labels: list[str], truth: list[str], probabilities: np.ndarray) -> ClassificationReport:
    return classification_report(truth, [labels[i] for i in probabilities.argmax(axis=1)], labels=labels)
