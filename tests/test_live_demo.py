"""The root live demo (webcam_demo.py): every task on one stream, headless, with one log row per frame;
a subset of tasks; a bad source is status 2 with the message; heavy libraries load only for the tasks
asked for. Models: the quick stand-ins of tests/conftest.py (the released weights may not exist yet)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import run_main
from core.env import REPO_ROOT
from core.io import read_image, video_info, write_image
from core.live import LiveFrame, chained_sources, open_live_source
from tests.conftest import shared_data_path, write_photo_video

import webcam_demo


def model_arguments(landmark, emotion, points) -> list[str]:
    return ["--gesture-model", str(landmark), "--emotion-weights", str(emotion), "--dynamic-model", str(points)]


@pytest.fixture(scope="module")
def people_video(tmp_path_factory) -> Path:
    """12 frames of a real photo with two people (ultralytics' zidane.jpg), drifting."""
    from emotion.synthetic import package_photos

    photo = next((p for p in package_photos() if p.name == "zidane.jpg" and p.is_file()), None)
    if photo is None:
        pytest.skip("ultralytics' zidane.jpg is not installed")
    return write_photo_video(tmp_path_factory.mktemp("video") / "people.mp4", read_image(photo), frames=12)


def decoded_frames(path: Path) -> int:
    import cv2

    capture, count = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_importing_the_demo_loads_no_heavy_library():
    code = ("import sys, webcam_demo; webcam_demo.build_parser().parse_args([]); "
            "print(sorted(m for m in ('mediapipe', 'torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_task_headless_writes_the_video_and_one_log_row_per_frame(people_video, tmp_path, quick_landmark_model,
                                                                         quick_emotion_onnx, quick_points_checkpoint, capsys):
    output = tmp_path / "out.mp4"
    code = webcam_demo.main(["--source", str(people_video), "--output", str(output), "--threads", "1", "--no-skip",
                             *model_arguments(quick_landmark_model, quick_emotion_onnx, quick_points_checkpoint)])
    assert code == 0
    log = pd.read_csv(tmp_path / "out.csv")  # the default log: beside the output
    assert len(log) == 12 and log["frame"].tolist() == list(range(12))
    assert video_info(output).frame_count == 12 and decoded_frames(output) == 12
    for column in ("time", "fps", "pose_person", "gesture", "gesture_p", "emotion", "valence", "arousal", "dynamic", "action"):
        assert column in log.columns
    assert log["pose_person"].sum() >= 6            # MediaPipe Pose follows one of the two men
    assert (log["emotion_faces"] >= 1).sum() >= 6   # and finds faces
    assert log["fps"].gt(0).all() and not log["light"].any()  # --no-skip: every stage on every frame
    assert "12 frames" in capsys.readouterr().out


def test_a_subset_of_tasks_and_a_json_log(people_video, tmp_path, quick_emotion_onnx):
    log = tmp_path / "frames.json"
    code = webcam_demo.main(["--source", str(people_video), "--tasks", "emotion,pose", "--output", str(tmp_path / "o.mp4"),
                             "--log", str(log), "--max-frames", "5", "--emotion-weights", str(quick_emotion_onnx),
                             "--threads", "1"])
    assert code == 0
    document = json.loads(log.read_text())
    assert document["stages"] == ["pose", "emotion"] and len(document["frames"]) == 5
    columns = set(document["frames"][0])
    assert {"pose_person", "emotion"} <= columns and not {"gesture", "dynamic"} & columns
    assert decoded_frames(tmp_path / "o.mp4") == 5


def test_a_folder_of_frames_is_a_source(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        write_image(tmp_path / "frames" / f"{i:03d}.png", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    code = webcam_demo.main(["--source", str(tmp_path / "frames"), "--tasks", "pose", "--output", str(tmp_path / "o.mp4"),
                             "--threads", "1"])
    assert code == 0
    log = pd.read_csv(tmp_path / "o.csv")
    assert len(log) == 4 and log["time"].tolist() == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30], abs=1e-3)
    assert log["pose_person"].sum() == 0  # noise: nobody


@pytest.mark.parametrize("source, message", [("57", "camera 57: cannot open the camera"),
                                             ("{tmp}/missing.mp4", "missing.mp4: video file not found"),
                                             ("{tmp}/junk.mp4", "junk.mp4: cannot open video")])
def test_a_bad_source_is_status_two_with_the_message(source, message, tmp_path, capsys):
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(SystemExit) as exit_info:
        run_main(webcam_demo.main, ["--source", source.format(tmp=tmp_path), "--tasks", "pose",
                                    "--output", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_a_missing_model_is_status_two_naming_it(people_video, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(webcam_demo.main, ["--source", str(people_video), "--tasks", "gestures", "--output", str(tmp_path / "o.mp4"),
                                    "--gesture-model", str(tmp_path / "none.joblib")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "none.joblib: model file not found" in err and "Traceback" not in err


def test_unknown_task_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        webcam_demo.build_parser().parse_args(["--tasks", "pose,dance"])
    assert exit_info.value.code == 2 and "unknown task dance" in capsys.readouterr().err


def test_light_frames_share_the_work_between_hands_and_faces():
    frames = [LiveFrame(i, i / 30, np.zeros((4, 4, 3), np.uint8), light=i >= 2) for i in range(6)]
    assert [f.runs(0) for f in frames] == [True, True, True, False, True, False]
    assert [f.runs(1) for f in frames] == [True, True, False, True, False, True]


def test_a_concurrent_stage_runs_in_the_worker_beside_the_others_and_answers_in_order():
    """The body stage (`concurrent`) runs in a worker thread at the same time as the rest; the answers, the log
    columns and the drawing keep the stages' order."""
    import threading
    import time

    from core.live import LiveSource, LiveStage, run_live

    both_running = threading.Barrier(2, timeout=5)  # passes only when both stages are inside __call__ at once

    class Recorder(LiveStage):
        def __init__(self, name, concurrent):
            self.name, self.concurrent, self.threads = name, concurrent, set()

        def __call__(self, frame):
            self.threads.add(threading.current_thread().name)
            both_running.wait()
            time.sleep(0.01)
            return frame.index

        def row(self, answer):
            return {f"{self.name}_frame": answer}

    body, hands = Recorder("body", True), Recorder("hands", False)
    frames = ((i, i / 30, np.zeros((24, 32, 3), np.uint8)) for i in range(4))
    stats = run_live([body, hands], LiveSource("frames", 30.0, False, frames), skip_work=False)
    assert [(r["body_frame"], r["hands_frame"]) for r in stats.rows] == [(i, i) for i in range(4)]
    assert all(name.startswith("live") for name in body.threads) and hands.threads == {threading.main_thread().name}


def test_chained_sources_keep_counting(tmp_path):
    from tests.conftest import write_faststart_mp4

    first, second = (write_faststart_mp4(tmp_path / f"{n}.mp4", frames=3) for n in ("a", "b"))
    source = chained_sources([open_live_source(first, size=(32, 24)), open_live_source(second, size=(32, 24))])
    frames = list(source.frames)
    assert [i for i, _, _ in frames] == list(range(6)) and frames[0][2].shape == (24, 32, 3)
    seconds = [s for _, s, _ in frames]
    assert seconds == sorted(seconds) and len(set(seconds)) == 6


@pytest.mark.real_data
def test_every_task_on_a_real_gesture_video(tmp_path, quick_landmark_model, quick_emotion_onnx, quick_points_checkpoint):
    video = shared_data_path("video_gestures", "zsgl_demo_videos", "G9_C_ComeHere.mp4")
    code = webcam_demo.main(["--source", str(video), "--size", "320x320", "--output", str(tmp_path / "o.mp4"),
                             "--max-frames", "20", "--threads", "1", "--no-skip", "--stride", "2",
                             *model_arguments(quick_landmark_model, quick_emotion_onnx, quick_points_checkpoint)])
    assert code == 0
    log = pd.read_csv(tmp_path / "o.csv")
    assert len(log) == 20 and decoded_frames(tmp_path / "o.mp4") == 20
    assert log["gesture_hands"].max() >= 1 and log["pose_person"].all()
    assert log["dynamic"].notna().sum() >= 1  # a 16-frame window filled, then every 2 frames


@pytest.mark.slow
@pytest.mark.real_data
def test_the_bench_writes_fps_for_all_and_each_task(tmp_path, quick_landmark_model, quick_emotion_onnx,
                                                    quick_points_checkpoint):
    shared_data_path("pose_smoothing")
    target = tmp_path / "live.json"
    webcam_demo.main(["--bench", "--bench-frames", "2", "--bench-output", str(target), "--threads", "1",
                      *model_arguments(quick_landmark_model, quick_emotion_onnx, quick_points_checkpoint)])
    results = json.loads(target.read_text())
    assert set(results["fps"]) == {"all", "pose", "gestures", "emotion", "dynamic", "action"}
    assert all(v > 0 for v in results["fps"].values())
    assert results["threads"] == 1 and results["frames"] == 2 * len(results["videos"])
    assert {"load_average_1min", "date", "command", "frame_size"} <= set(results)
