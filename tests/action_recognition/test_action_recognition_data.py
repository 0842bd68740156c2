"""Clip readers (UCF zip, frame folders, video folders) and the Kinetics CSV reader with class selection."""
from __future__ import annotations

import numpy as np
import pytest

from action_recognition import data
from action_recognition.data import (assign_splits, even_indices, find_clips, load_clips, read_clips, read_frame_folders,
                                     read_kinetics_csv, read_ucf_zip, read_video_folders, select_classes)
from action_recognition.synthetic import write_action_video
from core.io import InputError, write_image
from tests.conftest import shared_data_path

KINETICS_HEADER = "label,youtube_id,time_start,time_end,split\n"


@pytest.fixture
def small_zip(ucf_zip):
    """2 classes x (2 train + 1 val) clips of 4 frames; clip 2 (Bowling's second train clip) has a broken frame."""
    return ucf_zip(2, 1, broken=(2,))


def test_ucf_zip_reads_members_in_place_and_skips_broken_clips(small_zip):
    loaded = read_ucf_zip(small_zip)
    assert len(loaded) == 5 and loaded.counts() == {"Bowling": 2, "Diving": 3}
    assert all(f.shape == (4, 64, 64, 3) and f.dtype == np.uint8 for f in loaded.frames)
    assert [s for s, _ in loaded.skipped] == [f"{small_zip}::trainClips/00002"]
    assert "cannot decode image" in loaded.skipped[0][1]
    assert {c.split for c in loaded.select("val").clips} == {"val"} and len(loaded.select("val")) == 2


def test_ucf_zip_limit_and_bad_labels(small_zip, tmp_path):
    assert len(read_ucf_zip(small_zip, splits=("train",), limit_per_class=1)) == 2
    (tmp_path / "bad.csv").write_text("clip_dir,label_id\ntrainClips/00001,1\n")
    with pytest.raises(InputError, match="bad.csv: missing column"):
        read_ucf_zip(small_zip, tmp_path / "bad.csv")


def test_finding_clips_decodes_nothing_and_reading_decodes_only_the_clips_given(small_zip, monkeypatch):
    decoded = []
    read_image = data.read_image
    monkeypatch.setattr(data, "read_image", lambda source, name=None: decoded.append(name) or read_image(source, name))
    found = find_clips(small_zip)
    assert len(found) == 6 and not found.skipped and not decoded
    first = found.first_of_each_class(1)          # per class and split: clips 1, 3 (val), 4 and 6 (val)
    assert [c.source.rpartition("/")[2] for c in first.clips] == ["00001", "00003", "00004", "00006"]
    loaded = read_clips(first.select("val"))
    assert len(loaded) == 2 and {name.rpartition("/")[0] for name in decoded} == {c.source for c in loaded.clips}
    assert len(decoded) == 2 * 4                  # 4 frames per clip, nothing else read


@pytest.mark.real_data
def test_real_ucf_zip_has_ten_classes_of_three_64px_frames():
    zip_path = shared_data_path("action_recognition", "ucf101_10class_3frame_clips.zip")
    loaded = read_ucf_zip(zip_path, limit_per_class=2)
    assert len(loaded) == 40 and not loaded.skipped
    assert len(loaded.labels) == 10 and "Nunchucks" in loaded.labels
    assert {f.shape for f in loaded.frames} == {(3, 64, 64, 3)}
    assert sorted({c.split for c in loaded.clips}) == ["train", "val"]


def test_frame_folders_with_and_without_split(tmp_path):
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for label in ("a", "b"):
            for clip in ("c1", "c2"):
                for frame in range(4):
                    write_image(tmp_path / split / label / f"{split}{clip}" / f"f{frame}.png", rng.integers(0, 255, (48, 80, 3), np.uint8))
    (tmp_path / "train" / "a" / "trainc1" / "f9.png").write_bytes(b"")  # empty frame -> clip skipped
    loaded = read_frame_folders(tmp_path, size=32)
    assert len(loaded) == 7 and loaded.skipped and "empty file" in loaded.skipped[0][1]
    assert {f.shape for f in loaded.frames} == {(4, 32, 32, 3)}
    assert loaded.select("val").counts() == {"a": 2, "b": 2}
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no files"):
        read_frame_folders(tmp_path / "empty")


def test_video_folders_sample_evenly_and_skip_broken_videos(tmp_path):
    for label, action in (("left", "ball_left_to_right"), ("bounce", "square_bouncing")):
        for k in range(2):
            write_action_video(tmp_path / label / f"{k}.mp4", action, seed=k, seconds=2.0)
    (tmp_path / "left" / "zero.mp4").write_bytes(b"")
    (tmp_path / "left" / "junk.mp4").write_bytes(b"\x00" * 500)
    loaded = load_clips(tmp_path, num_frames=5, size=64)
    assert len(loaded) == 4 and {c.split for c in loaded.clips} == {""}
    assert {f.shape for f in loaded.frames} == {(5, 64, 64, 3)}
    reasons = dict(loaded.skipped)
    assert "empty file" in reasons[str(tmp_path / "left" / "zero.mp4")]
    assert str(tmp_path / "left" / "junk.mp4") in reasons
    left = loaded.frames[[c.label for c in loaded.clips].index("left")]
    # the ball moves right: the bright object's centre of mass moves to larger x over the sampled frames
    xs = [np.argwhere(f.max(axis=2) > 150)[:, 1].mean() for f in left]
    assert xs == sorted(xs)
    split = assign_splits(loaded, 0.5, seed=0)
    assert sorted(c.split for c in split.clips) == ["train", "train", "val", "val"]
    with pytest.raises(InputError, match="no readable clips"):
        read_video_folders(_only_broken(tmp_path))


def _only_broken(tmp_path):
    folder = tmp_path / "broken_only" / "cls"
    folder.mkdir(parents=True)
    (folder / "a.mp4").write_bytes(b"")
    return tmp_path / "broken_only"


def test_even_indices():
    assert even_indices(9, 3).tolist() == [1, 4, 7]
    assert even_indices(2, 4).tolist() == [0, 0, 1, 1]


# ----------------------------------------------------------------------------------------- Kinetics
def _kinetics(tmp_path, body: str, header: str = KINETICS_HEADER):
    path = tmp_path / "k.csv"
    path.write_text(header + body)
    return path


def test_kinetics_reader_and_dancing_selection(tmp_path):
    rows = []
    for label in ("salsa dancing", "tap dancing", "robot dancing", "juggling balls", "Dancing ballet"):
        rows += [f"{label},{label[:3]}{k:08d},{10 * k},{10 * k + 10},train" for k in range(5)]
    rows.append("salsa dancing,valclip0001,0,10,val")
    entries = read_kinetics_csv(_kinetics(tmp_path, "\n".join(rows) + "\n"))
    assert len(entries) == 26 and entries[0].time_end == 10.0
    assert entries[1].clip_name == "sal00000001_000010_000020"
    chosen = select_classes(entries, "dancing", per_class=3)           # the original's selection, one call
    assert sorted({e.label for e in chosen}) == ["Dancing ballet", "robot dancing", "salsa dancing", "tap dancing"]
    assert all(sum(e.label == lab for e in chosen) == 3 for lab in {e.label for e in chosen})
    assert len(select_classes(entries, "dancing", splits=["val"])) == 1
    sampled = select_classes(entries, "^tap", 2, seed=7)
    assert sampled == select_classes(entries, "^tap", 2, seed=7) and len(sampled) == 2
    with pytest.raises(ValueError, match="no class matches"):
        select_classes(entries, "swimming")


@pytest.mark.parametrize("header, body, message", [
    ("label,youtube_id,time_start,split\n", "a,b,1,train\n", "missing column.*time_end"),
    (KINETICS_HEADER, "a,b,x,10,train\n", "line 2: time_start/time_end must be numbers"),
    (KINETICS_HEADER, "a,b,1,10,train\na,c,10,5,train\n", r"line 3: bad time window \[10.0, 5.0\]"),
    (KINETICS_HEADER, "a,b,-1,5,train\n", "bad time window"),
    (KINETICS_HEADER, ",b,1,5,train\n", "line 2: empty label"),
    (KINETICS_HEADER, "", "no rows"),
])
def test_kinetics_bad_csv_is_a_clear_error(tmp_path, header, body, message):
    with pytest.raises(InputError, match=message):
        read_kinetics_csv(_kinetics(tmp_path, body, header))
