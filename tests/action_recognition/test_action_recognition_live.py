"""The `action` stage of the root webcam_demo.py: driven by the same sliding window as `predict --timeline`, it gives
the same window answers on a stream as the timeline gives on the file; `unknown` below the threshold; one answer
per hop, the last one held in between."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import webcam_demo
from action_recognition.predict import Sliding, predict
from action_recognition.synthetic import write_video
from action_recognition.timeline import UNKNOWN, window_label
from action_recognition.unknown import read_threshold
from tests.action_recognition.test_action_recognition_stream import diving_then_rowing_video


def changing_scenes(seconds: int, fps: int = 30, size: tuple[int, int] = (160, 120)):
    """A new random scene of coloured blocks every second, drifting: windows see different pictures."""
    rng = np.random.default_rng(3)
    width, height = size
    for second in range(seconds):
        blocks = rng.integers(0, 255, (height // 20, width // 20, 3), dtype=np.uint8)
        scene = np.repeat(np.repeat(blocks, 20, axis=0), 20, axis=1)
        for k in range(fps):
            yield np.roll(scene, 2 * k, axis=1)


def file_windows(video: Path, length: float, hop: float, threshold: float | None) -> list[tuple]:
    """(start, end, label, best probability) of every window `predict --timeline` scores on the file."""
    window = Sliding(length, hop)
    labels, loaded, _ = predict([str(video)], window=window)
    results, _ = loaded.timelines[str(video)]
    return [(r.start, r.end, window_label(r.probabilities, labels, threshold), float(r.probabilities.max()))
            for r in results]


def stream_windows(video: Path, tmp_path: Path, *options: str) -> tuple[pd.DataFrame, list[tuple]]:
    """The demo's log with the action stage alone on the video as a stream, and each window answer once."""
    code = webcam_demo.main(["--source", str(video), "--tasks", "action", "--output", str(tmp_path / "live.mp4"),
                             "--threads", "1", "--no-skip", *options])
    assert code == 0
    log = pd.read_csv(tmp_path / "live.csv", keep_default_na=False)
    answered = log[log["action"] != ""]
    windows = answered.drop_duplicates(["action_start", "action_end"])
    return log, [(float(w.action_start), float(w.action_end), w.action, float(w.action_p)) for w in windows.itertuples()]


def assert_same_windows(stream: list[tuple], file: list[tuple]) -> None:
    # a stream never ends, so the file's last window (scored when the file ends) may have no stream counterpart
    assert len(file) - 1 <= len(stream) <= len(file)
    for (s0, s1, s_label, s_p), (f0, f1, f_label, f_p) in zip(stream, file):
        assert (s0, s1, s_label) == pytest.approx((f0, f1, f_label)) and s_p == pytest.approx(f_p, abs=1e-3)


def test_the_stream_gives_the_window_answers_of_the_file_timeline(tmp_path):
    video = write_video(tmp_path / "scenes.mp4", changing_scenes(8), fps=30)
    threshold = read_threshold()
    file = file_windows(video, 2.0, 1.0, threshold)
    log, stream = stream_windows(video, tmp_path)
    assert_same_windows(stream, file)
    assert len(stream) >= 6 and len({label for _, _, label, _ in stream}) >= 2   # the scenes are told apart
    # the first answer comes with the frame after the first window's last sampled frame (at 5/6 of its 2 s), the
    # next ones once per hop, each held in between
    first = log.index[log["action"] != ""][0]
    assert 2.0 * 5 / 6 < log.loc[first, "time"] <= 2.0 * 5 / 6 + 1 / 30 + 1e-6 and (log["action"][:first] == "").all()
    assert log["action_start"][first:].replace("", np.nan).astype(float).diff().fillna(0).isin([0.0, 1.0]).all()


def test_window_and_hop_options_and_the_threshold_reach_the_stage(tmp_path):
    video = write_video(tmp_path / "scenes.mp4", changing_scenes(5), fps=30)
    file = file_windows(video, 1.0, 0.5, 0.999)
    _, stream = stream_windows(video, tmp_path, "--action-window", "1", "--action-hop", "0.5",
                               "--action-unknown-threshold", "0.999")
    assert_same_windows(stream, file)
    assert {label for _, _, label, _ in stream} == {UNKNOWN}   # nothing is that sure


@pytest.mark.real_data
def test_on_joined_val_clips_the_stream_names_both_classes_as_the_file_does(tmp_path):
    video = diving_then_rowing_video(tmp_path)
    file = file_windows(video, 1.0, 1.0, read_threshold())
    _, stream = stream_windows(video, tmp_path, "--action-window", "1", "--action-hop", "1")
    assert_same_windows(stream, file)
    labels = [label for _, _, label, _ in stream]
    assert labels[:6] == ["Diving"] * 6 and set(labels[6:]) == {"Rowing"}
