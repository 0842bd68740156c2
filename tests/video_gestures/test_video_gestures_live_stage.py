"""video_gestures' live-demo stage: the shared hands' fingertip into the sliding window, only fresh frames."""
from __future__ import annotations

import numpy as np
import pytest

from core.live import LiveFrame
from gesture_detection.detect import Detection
from gesture_detection.live import LiveHands


class CirclingHands:
    """One hand whose index fingertip circles; `calls` counts MediaPipe runs."""

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb):
        self.calls += 1
        points = np.zeros((21, 3), np.float32)
        angle = self.calls / 4
        points[8, :2] = (320 + 100 * np.cos(angle), 240 + 100 * np.sin(angle))
        return [Detection(np.array([0, 0, 50, 50], np.float32), 0.9, points, "Right")]


@pytest.mark.parametrize("model", ["quick_points_checkpoint", "quick_points_onnx"])
def test_dynamic_stage_predicts_once_a_window_is_full_and_pushes_only_fresh_frames(model, request):
    from video_gestures.live import DynamicGestureStage

    hands = CirclingHands()
    stage = DynamicGestureStage(request.getfixturevalue(model), LiveHands(detector=hands), stride=4, threads=1)
    rgb = np.zeros((480, 640, 3), np.uint8)
    answers = [stage(LiveFrame(i, i / 30, rgb)) for i in range(16)]
    assert all(a.prediction is None for a in answers[:15]) and answers[15].prediction is not None
    assert answers[15].prediction.smoothed_label in stage.labels and len(answers[15].trail) == 16
    for i in range(16, 24):  # light: MediaPipe on even frames only, and only those enter the window
        stage(LiveFrame(i, i / 30, rgb, light=True))
    assert hands.calls == 20 and stage.recognizer.seen == 20
    assert len(stage.timeline) == 24 and stage.row(answers[15])["dynamic"] in stage.labels
    canvas = rgb.copy()
    stage.draw(canvas, answers[15])
    assert canvas[-5:].any()  # the timeline strip
    stage.close()
