"""pose_smoothing.live: the live skeleton stage on a real photo, the fixed-lag delay, and the live command."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.io import read_image
from core.live import LiveFrame
from tests.conftest import write_photo_video


@pytest.fixture(scope="module")
def person():
    from emotion.synthetic import package_photos

    photo = next((p for p in package_photos() if p.name == "zidane.jpg" and p.is_file()), None)
    if photo is None:
        pytest.skip("ultralytics' zidane.jpg is not installed")
    import cv2

    return cv2.resize(read_image(photo), (320, 180))


def test_pose_stage_follows_a_person_and_smooths(person):
    from pose_smoothing.live import PoseStage

    stage = PoseStage(fps=30, method="kalman")
    answers = [stage(LiveFrame(i, i / 30, np.roll(person, i, axis=1))) for i in range(4)]
    stage.close()
    assert all(a.person for a in answers) and answers[-1].visible >= 10
    assert np.isfinite(answers[-1].image[:, :2]).sum() >= 20 and answers[-1].world.shape == (33, 3)
    canvas = person.copy()
    stage.draw(canvas, answers[-1])
    assert (canvas != person).any()  # the skeleton is drawn


def test_light_frames_track_the_body_on_even_frames_and_reuse_it_on_odd_ones(person):
    from pose_smoothing.live import PoseStage

    stage = PoseStage(fps=30, method="kalman")
    answers = [stage(LiveFrame(i, i / 30, np.roll(person, i, axis=1), light=i >= 2)) for i in range(6)]
    stage.close()
    assert answers[3] is answers[2] and answers[5] is answers[4]  # odd light frames: the last skeleton
    assert answers[1] is not answers[0] and answers[4] is not answers[2] and answers[4].person


def test_fixed_lag_answers_late_and_nobody_is_a_gap():
    from pose_smoothing.live import PoseStage

    stage = PoseStage(fps=30, method="fixed-lag", lag_frames=2)
    answers = [stage(LiveFrame(i, i / 30, np.zeros((96, 128, 3), np.uint8))) for i in range(4)]
    stage.close()
    assert [a.image is None for a in answers] == [True, True, False, False]  # 2 frames late
    assert not any(a.person for a in answers) and np.isnan(answers[-1].image).all()
    assert "nobody" in stage.summary(answers[-1])


def test_live_command_writes_a_video_and_a_log(tmp_path, person, capsys):
    from pose_smoothing import live

    video = write_photo_video(tmp_path / "v.mp4", person, frames=5)
    assert live.main(["--source", str(video), "--output", str(tmp_path / "o.mp4"), "--log", str(tmp_path / "l.csv"),
                      "--filter", "one-euro", "--threads", "1"]) == 0
    log = pd.read_csv(tmp_path / "l.csv")
    assert len(log) == 5 and log["pose_person"].iloc[-2:].all()  # found within a few frames of the stretched photo
    assert "5 frames" in capsys.readouterr().out
