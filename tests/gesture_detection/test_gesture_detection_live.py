"""gesture_detection.live: the shared hands run once per frame (and every other frame when light), each
hand's gesture with its probability, and the live command on a video."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.io import read_image
from core.live import LiveFrame
from gesture_detection.live import GestureStage, LiveHands
from gesture_detection.synthetic import synthetic_detections
from tests.conftest import shared_data_path, write_photo_video


class CountingHands:
    """A detector that returns one generated 'stop' hand and counts its calls."""

    def __init__(self):
        self.calls = 0
        self.hand = synthetic_detections(1, seed=3, gestures=("stop",))[0][0]

    def __call__(self, rgb):
        self.calls += 1
        return [self.hand]


def frame(index: int, light: bool = False) -> LiveFrame:
    return LiveFrame(index, index / 30, np.zeros((480, 640, 3), np.uint8), light)


def test_hands_run_once_per_frame_for_every_stage_and_every_other_frame_when_light():
    detector = CountingHands()
    hands = LiveHands(detector=detector)
    for i in range(4):
        assert hands.detect(frame(i)).fresh and hands.detect(frame(i)).fresh  # two stages ask, one run
    assert detector.calls == 4
    fresh = [hands.detect(frame(i, light=True)).fresh for i in range(4, 10)]
    assert fresh == [True, False, True, False, True, False] and detector.calls == 7
    assert hands.detect(frame(5, light=True)).detections == [detector.hand]  # reused, not lost


def test_gesture_stage_answers_each_hand_with_its_probability(quick_landmark_model):
    stage = GestureStage(quick_landmark_model, LiveHands(detector=CountingHands()), threshold=0.5, hold=0)
    answer = stage(frame(0))
    assert len(answer.hands) == 1 and answer.hands[0].landmarks.shape == (21, 3)
    assert answer.gesture == answer.hands[0].label == "stop" and 0.5 <= answer.probability <= 1.0
    row = stage.row(answer)
    assert row["gesture"] == "stop" and row["gesture_hands"] == 1 and ":stop:" in row["gesture_each"]
    stage.draw(np.zeros((480, 640, 3), np.uint8), answer)
    assert stage(frame(1, light=True)) is answer  # hands reused: the last answer, not classified again
    strict = GestureStage(quick_landmark_model, LiveHands(detector=CountingHands()), threshold=1.01)
    assert strict(frame(0)).hands[0].label == "no_gesture"


@pytest.mark.real_data
def test_gesture_stage_on_a_real_photo_with_mediapipe(quick_landmark_model):
    photos = sorted(shared_data_path("gesture_detection", "linto_multi_hand_gesture", "images", "test").glob("*.jpg"))
    stage = GestureStage(quick_landmark_model, LiveHands(max_hands=2))
    found = [len(stage(LiveFrame(i, i / 30, read_image(p))).hands) for i, p in enumerate(photos[:3])]
    stage.close()
    assert max(found) >= 1  # MediaPipe Hands in tracking mode finds the hands of LinTO photos


def test_live_command_on_a_video(tmp_path, quick_landmark_model, capsys):
    from gesture_detection import live

    video = write_photo_video(tmp_path / "v.mp4", np.full((240, 320, 3), 128, np.uint8), frames=6)
    assert live.main(["--source", str(video), "--output", str(tmp_path / "o.mp4"), "--gesture-model",
                      str(quick_landmark_model), "--threads", "1"]) == 0
    log = pd.read_csv(tmp_path / "o.csv")
    assert len(log) == 6 and (log["gesture"] == "no_gesture").all() and (log["gesture_hands"] == 0).all()
    assert "6 frames" in capsys.readouterr().out


class BlinkingHands(CountingHands):
    """The 'stop' hand in the frames listed, no hand in the others."""

    def __init__(self, frames):
        super().__init__()
        self.frames = set(frames)

    def __call__(self, rgb):
        self.calls += 1
        return [self.hand] if self.calls - 1 in self.frames else []


def test_a_static_gesture_is_reported_once_it_is_held(quick_landmark_model):
    """A moving hand passes through gesture-like poses for a frame or two (the dancer video: 45 such blips a
    minute); a gesture is reported once it has been the answer for `hold` seconds (0.3 s: 9 frames at 30 fps)."""
    from gesture_detection.live import HOLD_SECONDS

    blips = [1, 2, 5, 6] + list(range(10, 30))   # two 2-frame blips, then a gesture held for 20 frames
    stage = GestureStage(quick_landmark_model, LiveHands(detector=BlinkingHands(blips)), threshold=0.5)
    assert stage.hold == HOLD_SECONDS == 0.3
    answers = [stage(frame(i)) for i in range(32)]
    reported = [i for i, a in enumerate(answers) if a.gesture == "stop"]
    assert reported == list(range(19, 30))   # from 0.3 s after frame 10 to the last frame with the hand
    assert answers[1].gesture == "no_gesture" and answers[1].pending == "stop" and "held <" in stage.summary(answers[1])
    assert answers[19].pending == "" and answers[30].pending == ""
    at_once = GestureStage(quick_landmark_model, LiveHands(detector=BlinkingHands(blips)), threshold=0.5, hold=0)
    assert [i for i in range(32) if at_once(frame(i)).gesture == "stop"] == blips
    with pytest.raises(ValueError, match="hold"):
        GestureStage(quick_landmark_model, LiveHands(detector=CountingHands()), hold=-1)


def test_a_run_of_frames_with_one_gesture_is_one_occurrence():
    from gesture_detection.false_triggers import gesture_runs

    answers = ["no_gesture", "hello", "hello", "no_gesture", "hello", "stop", "stop", "no_gesture"]
    assert gesture_runs(answers, "no_gesture") == [("hello", 1, 2), ("hello", 4, 4), ("stop", 5, 6)]
    assert gesture_runs(["no_gesture"] * 3, "no_gesture") == []
