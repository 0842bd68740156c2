"""Videos of any length: PyAV streaming in every container, frames sampled as they pass (memory flat in the
video's length), the length check only against what the container states, bad files listed beside good
answers, and `--timeline`'s windows and segments."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from action_recognition.data import ClipSampler, checked_video_frames, even_indices
from action_recognition.synthetic import write_video
from action_recognition.timeline import UNKNOWN, WindowResult, WindowSampler, merge_windows
from core.io import iter_video_frames
from tests.conftest import shared_data_path

REPO = Path(__file__).resolve().parents[2]
CONTAINERS = (".mp4", ".mkv", ".avi", ".webm", ".gif", ".mov")


def grey_ramp(count: int, size: tuple[int, int] = (96, 64)) -> list[np.ndarray]:
    """Flat frames whose grey level tells their index (10 + 6 i), so a sampled frame says which it was."""
    width, height = size
    return [np.full((height, width, 3), 10 + 6 * i, np.uint8) for i in range(count)]


def frame_index(frame: np.ndarray) -> int:
    return int(round((float(frame.mean()) - 10) / 6))


@pytest.mark.parametrize("suffix", CONTAINERS)
def test_each_container_streams_every_frame_with_its_own_time(tmp_path, suffix, capsys):
    path = write_video(tmp_path / f"ramp{suffix}", grey_ramp(40), fps=10)
    video = iter_video_frames(path, decoder="av")
    frames = list(video)
    assert [i for i, _, _ in frames] == list(range(40))
    assert np.allclose([s for _, s, _ in frames], np.arange(40) / 10, atol=1e-3)
    assert [frame_index(f) for _, _, f in frames] == list(range(40))
    assert not video.decoded_length.truncated and video.note == ""
    assert "warning" not in capsys.readouterr().err
    # the clip's frames are those even_indices picks from all that decoded, whether or not the header counts frames
    sampled, _ = checked_video_frames(path, 3, 32)
    assert sampled.shape == (3, 32, 32, 3)
    assert [frame_index(f) for f in sampled] == even_indices(40, 3).tolist()


class Lazy:
    """A frame pushed lazily, as core.io.AvFrame is: here the frame is just its index."""

    def __init__(self, index: int):
        self.index = index

    def to_rgb(self) -> np.ndarray:
        return np.full((1, 1, 1), self.index, np.int64)


def test_the_clip_sampler_falls_back_to_nearby_frames_when_fewer_decode_than_the_header_says():
    sampler = ClipSampler(3, None, expected_frames=1000)         # a header promising 1000 frames; 400 decode
    for index in range(400):
        sampler.push(index, Lazy(index))
    picked = [int(f.item()) for f in sampler.frames()]
    assert len(sampler.reserve) <= sampler.capacity
    assert all(abs(p - w) <= sampler.stride // 2 for p, w in zip(picked, even_indices(400, 3)))


def test_the_clip_sampler_is_exact_when_the_header_is_a_few_frames_over():
    sampler = ClipSampler(3, None, expected_frames=1572)         # mgt_dancer.avi: 1572 stated, 1571 decode
    for index in range(1571):
        sampler.push(index, Lazy(index))
    assert [int(f.item()) for f in sampler.frames()] == even_indices(1571, 3).tolist()


def test_a_cut_mp4_is_noted_truncated_and_a_whole_one_never(tmp_path, capsys):
    whole = write_video(tmp_path / "whole.mp4", grey_ramp(60), fps=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    video = iter_video_frames(cut, decoder="av")
    decoded = sum(1 for _ in video)
    assert 0 < decoded < 60
    assert video.decoded_length.truncated and video.note.startswith("truncated: decoded")
    assert "truncated video?" in capsys.readouterr().err


@pytest.mark.real_data
def test_no_false_truncation_warning_on_the_shared_real_videos(capsys):
    videos = [p for folder in ("pose_smoothing", "emotion/videos", "video_gestures")
              for p in sorted(shared_data_path(*folder.split("/")).rglob("*"))
              if p.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv", ".webm")]
    assert len(videos) >= 20
    for path in videos:
        video = iter_video_frames(path, decoder="av")
        for _ in video.lazy_frames():
            pass
        assert not video.decoded_length.truncated, video.decoded_length.warning()
    assert "warning" not in capsys.readouterr().err


PEAK_RSS = """
import resource, sys
from action_recognition.data import checked_video_frames
frames, decoded = checked_video_frames(sys.argv[1], 3, 112)
assert decoded.decoded_frames == int(sys.argv[2]), decoded
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def peak_rss_mb(path: Path, frames: int) -> int:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path), str(frames)], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1])


def moving_bars(count: int, size: tuple[int, int] = (320, 240)):
    width, height = size
    columns = np.arange(width)
    for t in range(count):
        row = (((columns + 4 * t) // 16) % 2 * 200 + 30).astype(np.uint8)
        yield np.repeat(np.repeat(row[None, :, None], height, axis=0), 3, axis=2)


def test_memory_stays_flat_on_a_long_generated_video(tmp_path):
    short = write_video(tmp_path / "short.mp4", moving_bars(150), fps=30)      # 5 s
    long = write_video(tmp_path / "long.mp4", moving_bars(3600), fps=30)      # 2 minutes: 830 MB of decoded frames
    short_mb, long_mb = peak_rss_mb(short, 150), peak_rss_mb(long, 3600)
    assert long_mb - short_mb < 40, (short_mb, long_mb)


# ----------------------------------------------------------------------------------------- timeline
def test_windows_pick_what_a_clip_of_the_same_length_picks():
    frames = grey_ramp(40)
    sampler = WindowSampler(num_frames=3, size=None, length=4.0, hop=4.0)
    windows = []
    for index, frame in enumerate(frames):
        windows += sampler.push(frame, index / 10)
    windows += sampler.finish(4.0)
    assert [(w.start, w.end) for w in windows] == [(0.0, 4.0)]
    assert [frame_index(f) for f in windows[0].frames] == even_indices(40, 3).tolist()


def test_windows_slide_by_the_hop_and_none_runs_past_the_end():
    sampler = WindowSampler(num_frames=2, size=None, length=2.0, hop=0.5)
    windows = []
    for index, frame in enumerate(grey_ramp(50)):      # 5 s at 10 fps
        windows += sampler.push(frame, index / 10)
    windows += sampler.finish(5.0)
    assert [w.start for w in windows] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    # 2 frames per 2 s window: those shown at 0.5 s and 1.5 s into it
    assert [[frame_index(f) for f in w.frames] for w in windows][:2] == [[5, 15], [10, 20]]


def test_neighbouring_windows_with_one_label_merge_into_segments():
    labels = ["a", "b"]
    p = {"a": np.array([0.9, 0.1]), "b": np.array([0.2, 0.8]), "?": np.array([0.55, 0.45])}
    sequence = ["a", "a", "a", "b", "b", "?", "b"]
    results = [WindowResult(k, k + 2.0, p[name]) for k, name in enumerate(sequence)]
    segments = merge_windows(results, labels, end_seconds=9.0)
    assert [(s.label, s.start, s.end, s.windows) for s in segments] == [
        ("a", 0.0, 3.5, 3), ("b", 3.5, 5.5, 2), ("a", 5.5, 6.5, 1), ("b", 6.5, 9.0, 1)]
    assert segments[0].confidence == pytest.approx(0.9)
    with_unknown = merge_windows(results, labels, end_seconds=9.0, threshold=0.6)
    assert [s.label for s in with_unknown] == ["a", "b", UNKNOWN, "b"]


def predict_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "action_recognition.predict", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def diving_then_rowing_video(folder: Path) -> Path:
    """Val clips of two classes (each clip's 3 frames shown for 1/3 s, 128 px, 30 fps) joined into one 12 s video:
    6 Diving clips then 6 Rowing clips that the released model names confidently."""
    from action_recognition.data import read_ucf_zip
    from action_recognition.released import ReleasedModel
    from core.weights import released

    loaded = read_ucf_zip(shared_data_path("action_recognition", "ucf101_10class_3frame_clips.zip"), splits=("val",))
    model = ReleasedModel.load(released("action_recognition", "frame"))
    chosen = {}
    for name in ("Diving", "Rowing"):   # 6 clips the released model names confidently, 2 videos apart
        own = [i for i, c in enumerate(loaded.clips) if c.label == name]
        sure = [i for i in own if model.clip_probabilities(loaded.frames[i])[model.labels.index(name)] > 0.9]
        chosen[name] = sure[::max(1, len(sure) // 6)][:6]
    frames = [np.repeat(np.repeat(frame, 2, axis=0), 2, axis=1)            # 128 px
              for name in chosen for i in chosen[name] for frame in loaded.frames[i] for _ in range(10)]
    return write_video(folder / "diving_then_rowing.mp4", frames, fps=30)


@pytest.mark.real_data
def test_the_timeline_of_two_joined_classes_finds_both_in_order(tmp_path):
    """Val clips of two classes joined into one video: 1 s windows every second see one clip each, and the
    segments name the first class, then the second."""
    video = diving_then_rowing_video(tmp_path)
    result = predict_cli(str(video), "-o", str(tmp_path / "clips.csv"), "--timeline", str(tmp_path / "timeline.csv"),
                         "--window", "1", "--hop", "1", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    segments = read_rows(tmp_path / "timeline.csv")
    assert [s["label"] for s in segments] == ["Diving", "Rowing"]
    assert float(segments[0]["start"]) == 0 and float(segments[1]["end"]) == pytest.approx(12.0, abs=0.05)
    assert float(segments[0]["end"]) == pytest.approx(6.0, abs=0.01)
    assert list(segments[0])[:5] == ["input", "start", "end", "label", "score"]  # core.timeline's shape
    assert {"label_2", "probability_2", "windows"} <= set(segments[0])
    assert (tmp_path / "timeline.png").stat().st_size > 0
    assert len(read_rows(tmp_path / "clips.csv")) == 1     # the clip answer is still one row


def test_a_folder_of_good_and_bad_videos_answers_the_good_and_lists_the_bad(tmp_path):
    folder = tmp_path / "videos"
    for suffix in (".mp4", ".gif", ".webm", ".mkv"):
        write_video(folder / f"good{suffix}", moving_bars(30, (128, 96)), fps=10)
    whole = write_video(tmp_path / "whole.mp4", moving_bars(60, (128, 96)), fps=10)
    (folder / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.avi").write_text("not a video")
    write_video(folder / "short.mp4", moving_bars(3, (128, 96)), fps=10)
    result = predict_cli(str(folder), "-o", str(tmp_path / "out.csv"), "--timeline", str(tmp_path / "timeline.csv"))
    assert result.returncode == 1, result.stderr                  # some inputs skipped
    rows = {Path(r["path"]).name: r for r in read_rows(tmp_path / "out.csv")}
    assert set(rows) == {"good.mp4", "good.gif", "good.webm", "good.mkv", "cut.mp4", "short.mp4"}
    assert rows["cut.mp4"]["note"].startswith("truncated")
    assert "skipped" in result.stderr and "empty.mp4" in result.stderr and "text.avi" in result.stderr
    timeline = read_rows(tmp_path / "timeline.csv")
    assert {Path(r["input"]).name for r in timeline} == set(rows)
    short = [r for r in timeline if r["input"].endswith("short.mp4")]
    assert short[0]["note"].startswith("shorter than one window")


def test_nothing_readable_is_an_error_with_no_output(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    result = predict_cli(str(tmp_path / "empty.mp4"), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 2 and "error:" in result.stderr
    assert not (tmp_path / "out.csv").exists()
