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
    assert stage.occurrences and all(o.label in stage.labels for o in stage.occurrences)  # reported once each
    assert sum(o.windows for o in stage.occurrences) == 2   # the windows ending at frames 15 and 19


class NoHands:
    def __call__(self, rgb):
        return []


@pytest.mark.parametrize("hands_in_window", [0, 8, 11])
def test_a_window_with_too_few_hand_frames_is_no_hand_never_a_gesture(hands_in_window, quick_points_onnx):
    """Frames without a hand used to repeat the last point (zeros at the start): a still, empty window then read
    as a gesture. Now fewer than 3 of 4 hand frames in a window give `no_hand`."""
    from video_gestures.inference import load_model
    from video_gestures.live import NO_HAND, FingertipEncoder, SlidingWindowRecognizer

    model = load_model(quick_points_onnx, threads=1)
    encoder = FingertipEncoder(model.input_config["point_features"], 16, detector=NoHands())
    recognizer = SlidingWindowRecognizer(model, encoder, window=16, stride=1)
    hand = CirclingHands()
    predictions = []
    for i in range(16):
        detections = hand(None) if i >= 16 - hands_in_window else []
        predictions.append(recognizer.push_encoding(encoder.encode_detections(detections, 640, 480), i / 30))
    last = predictions[-1]
    assert last.label == last.smoothed_label == NO_HAND and not last.is_gesture and np.isnan(last.confidence)
    for i in range(16, 32):   # a hand in every frame: the window fills with hand frames and answers
        last = recognizer.push_encoding(encoder.encode_detections(hand(None), 640, 480), i / 30)
        if i >= 27:   # 12 of 16 hand frames and more
            assert last.is_gesture and last.smoothed_label in model.labels


def test_neighbouring_windows_with_one_answer_are_one_occurrence():
    from video_gestures.live import NO_HAND, WindowPrediction, occurrences

    def window(end, label, p=0.9):
        return WindowPrediction(int(end * 10), end, label, p, label, p, end - 1.0)

    found = list(occurrences([window(1.0, "Move", 0.7), window(1.2, "Move", 0.95), window(1.4, NO_HAND, float("nan")),
                              window(1.6, "Stop"), window(1.8, "Move"), window(2.0, "Move")]))
    assert [(o.label, round(o.start, 6), o.end, o.windows) for o in found] == [
        ("Move", 0.0, 1.2, 2), ("Stop", 0.6, 1.6, 1), ("Move", 0.8, 2.0, 2)]
    assert found[0].confidence == 0.95
    assert list(occurrences([window(1.0, NO_HAND), window(1.2, NO_HAND)])) == []


def test_every_gesture_of_a_truncated_video_carries_its_note():
    """The note is known only once the video is read to its end; every occurrence of that input gets it."""
    from video_gestures.live import WindowPrediction
    from video_gestures.predict import live_rows

    class Frames:
        """Like core.io.VideoFrames: the note is set when the frames run out."""
        note = ""

        def __iter__(self):
            yield from [(0, 0.0, None)] * 3
            self.note = "truncated: decoded 14 of 30 frames"

    frames = Frames()

    class Recognizer:
        def run(self, source):  # the frames come through the progress bar
            for (end, label), _ in zip([(1.0, "Move"), (1.2, "Stop"), (1.4, "Stop")], source):
                yield WindowPrediction(int(end * 10), end, label, 0.9, label, 0.9, end - 0.5)
            list(source)

    gestures, windows = live_rows(Recognizer, [("cut.mp4", frames)])
    assert [g["label"] for g in gestures] == ["Move", "Stop"] and len(windows) == 3
    assert all(g["note"] == "truncated: decoded 14 of 30 frames" for g in gestures)
