"""The `action` stage of the root webcam_demo.py: the current action (or `unknown`), updated once per hop.

The stage pushes every frame to the same `timeline.ActionTimeline` that `predict --timeline` drives with a
file's frames, so a stream and a file give the same window answers: a window of `length` seconds every `hop`
seconds, scored by the clip model as soon as its last frame has passed, and labelled `unknown` below the open-set
threshold (for the released model, the one calibrated by unknown.py). Until the first window is complete the
stage says it is waiting.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from action_recognition.timeline import UNKNOWN, ActionTimeline, WindowResult, window_label
from core.live import LiveFrame, LiveStage, put_label

ACTION_COLOUR, UNKNOWN_COLOUR = (255, 200, 40), (200, 200, 200)


@dataclass
class ActionAnswer:
    label: str            # a class, or `unknown`
    probability: float    # the best known class's
    best_known: str
    start: float          # the window's span in source seconds
    end: float


def clip_scorer(checkpoint: str | Path, threads: int = 2) -> tuple[list[str], int, int | None, Callable]:
    """(labels, frames per clip, frame size, score(frames) -> (C,) probabilities) of an action_recognition model:
    an ONNX export runs in onnxruntime (no PyTorch), a Lightning checkpoint in PyTorch, as `predict` runs them."""
    from core.models import ONNX, checked_model

    if checked_model(checkpoint, "action_recognition").format == ONNX:
        from action_recognition.released import ReleasedModel

        model = ReleasedModel.load(checkpoint, threads)
        return model.labels, model.num_frames, model.frame_size, model.clip_probabilities
    import torch

    from action_recognition.data import Clip, LoadedClips
    from action_recognition.inference import load_model, predict_probabilities

    torch.set_num_threads(threads)
    module = load_model(checkpoint)
    hp = module.hparams
    return (list(module.labels), hp.num_frames, hp.frame_size,
            lambda frames: predict_probabilities(module, LoadedClips([Clip("window", "")], [frames]), use_cache=False)[0])


class ActionStage(LiveStage):
    """Frames -> `ActionTimeline` (windows of `length` s every `hop` s) -> the last window's answer."""

    name = "action"

    def __init__(self, checkpoint: str | Path, threshold: float | None = None, length: float = 2.0, hop: float = 1.0,
                 threads: int = 2):
        self.labels, num_frames, frame_size, score = clip_scorer(checkpoint, threads)
        self.threshold = threshold or None   # 0 turns `unknown` off
        self.timeline = ActionTimeline(score, num_frames, frame_size, length, hop, keep_results=False)
        self.last: ActionAnswer | None = None

    def answer(self, result: WindowResult) -> ActionAnswer:
        best = int(np.argmax(result.probabilities))
        return ActionAnswer(window_label(result.probabilities, self.labels, self.threshold),
                            float(result.probabilities[best]), self.labels[best], result.start, result.end)

    def __call__(self, frame: LiveFrame) -> ActionAnswer | None:
        new = self.timeline.push(frame.rgb, frame.seconds)
        if new:
            self.last = self.answer(new[-1])
        return self.last

    def draw(self, canvas: np.ndarray, answer: ActionAnswer | None) -> None:
        if answer is not None:
            colour = UNKNOWN_COLOUR if answer.label == UNKNOWN else ACTION_COLOUR
            put_label(canvas, f"{answer.label} {answer.probability:.2f}", (8, canvas.shape[0] - 24), colour, 0.7)

    def summary(self, answer: ActionAnswer | None) -> str:
        if answer is None:
            return f"action: waiting for the first {self.timeline.sampler.length:g} s window"
        nearest = f" (nearest {answer.best_known})" if answer.label == UNKNOWN else ""
        return f"action: {answer.label} {answer.probability:.2f}{nearest}"

    def row(self, answer: ActionAnswer | None) -> dict:
        if answer is None:
            return {"action": "", "action_p": float("nan"), "action_best_known": "", "action_start": float("nan"),
                    "action_end": float("nan")}
        return {"action": answer.label, "action_p": round(answer.probability, 4), "action_best_known": answer.best_known,
                "action_start": round(answer.start, 4), "action_end": round(answer.end, 4)}
