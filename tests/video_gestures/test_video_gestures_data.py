import warnings

import numpy as np
import pytest

from core.io import InputError, write_image
from tests.conftest import shared_data_path
from video_gestures.data import (ClipWarning, VideoClipDataset, grouped_stratified_split, point_history_features,
                                 read_clip, read_clips, read_frame_folders, read_jester, read_label_csv,
                                 read_point_history, read_video_folders, sample_indices, stratified_split)


def frame(value: int, size: int = 24) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def make_frame_folders(root, videos=(("swipe", "v1", 5), ("swipe", "v2", 3), ("zoom", "v3", 4))):
    for label, video, count in videos:
        for n in range(count):
            write_image(root / label / f"{video}_frame_{n}.jpg", frame(10 * n))
    return root


def test_sampler_is_uniform_and_pads_with_the_last_frame():
    assert sample_indices(64, 32).tolist() == np.linspace(0, 63, 32).round().astype(int).tolist()
    assert sample_indices(32, 32).tolist() == list(range(32))
    assert sample_indices(3, 6).tolist() == [0, 1, 2, 2, 2, 2]
    assert sample_indices(1, 4).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="at least one frame"):
        sample_indices(0, 4)


def test_original_layout_groups_frames_by_video_in_numeric_order(tmp_path):
    root = make_frame_folders(tmp_path)
    write_image(root / "zoom" / "v3_frame_10.jpg", frame(200))  # 10 sorts after 9, not after 1
    for n in range(4, 10):
        write_image(root / "zoom" / f"v3_frame_{n}.jpg", frame(100))
    clips = read_frame_folders(root)
    assert [(c.label, c.video_id, len(c.frames)) for c in clips.items] == [("swipe", "v1", 5), ("swipe", "v2", 3), ("zoom", "v3", 11)]
    assert clips.items[2].frames[-1].name == "v3_frame_10.jpg"
    clip = read_clip(clips.items[1], num_frames=5)
    assert clip.shape == (5, 24, 24, 3)
    assert np.allclose(clip[:, 0, 0, 0].astype(int), [0, 10, 20, 20, 20], atol=3)  # padded with the last frame


def test_gap_in_frame_numbers_is_skipped_with_the_reason(tmp_path):
    root = make_frame_folders(tmp_path)
    (root / "swipe" / "v1_frame_2.jpg").unlink()
    with pytest.warns(ClipWarning, match="v1: gap in frame numbers: missing 2"):
        clips = read_frame_folders(root)
    assert "v1" not in {c.video_id for c in clips.items}
    assert clips.skipped and "gap" in clips.skipped[0][1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_frame_folders(root, allow_gaps=True).items) == 3


def test_empty_class_folder_and_unreadable_frame_are_clear_errors(tmp_path):
    root = make_frame_folders(tmp_path)
    (root / "empty").mkdir()
    with pytest.raises(InputError, match="empty: empty class folder"):
        read_frame_folders(root)
    (root / "empty").rmdir()
    (root / "zoom" / "v3_frame_1.jpg").write_bytes(b"not a jpeg")
    clip = read_frame_folders(root).items[2]
    with pytest.raises(InputError, match="v3_frame_1.jpg: cannot decode image"):
        read_clip(clip, 4)
    (root / "zoom" / "v3_frame_1.jpg").unlink()
    (root / "zoom" / "v3_frame_1.jpg").mkdir()  # listed but not a file: a gap
    with pytest.warns(ClipWarning, match="gap"):
        read_frame_folders(root)


def test_jester_layout_with_label_csv(tmp_path):
    for video, count in (("101", 4), ("102", 2)):
        for n in range(1, count + 1):
            write_image(tmp_path / "frames" / video / f"{n:05d}.jpg", frame(n))
    (tmp_path / "labels.csv").write_text("101;Swiping Left\n102;Zooming In\n103;Zooming In\n")
    assert read_label_csv(tmp_path / "labels.csv") == {"101": "Swiping Left", "102": "Zooming In", "103": "Zooming In"}
    with pytest.warns(ClipWarning, match="103: video folder listed in the CSV is missing"):
        clips = read_jester(tmp_path / "frames", tmp_path / "labels.csv")
    assert [(c.video_id, c.label, len(c.frames)) for c in clips.items] == [("101", "Swiping Left", 4), ("102", "Zooming In", 2)]
    (tmp_path / "header.csv").write_text("video_id,label\n101,a\n")
    assert read_label_csv(tmp_path / "header.csv") == {"101": "a"}
    (tmp_path / "bad.csv").write_text("101\n")
    with pytest.raises(InputError, match="line 1: expected video_id"):
        read_label_csv(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="needs a label CSV"):
        read_clips(tmp_path / "frames", layout="jester")


def test_video_files_in_class_folders(tmp_path):
    from core.io import AtomicVideoWriter

    for label, shade in (("left", 40), ("right", 200)):
        with AtomicVideoWriter(tmp_path / label / "a.mp4", fps=10, size=(32, 32)) as writer:
            for _ in range(6):
                writer.write(frame(shade, 32))
    clips = read_clips(tmp_path)  # auto-detects the video layout
    assert [(c.video_id, c.label) for c in clips.items] == [("left/a", "left"), ("right/a", "right")]
    dataset = VideoClipDataset(clips.items, ["left", "right"], num_frames=8, size=16)
    tensor, target = dataset[1]
    assert tensor.shape == (8, 3, 16, 16) and target == 1 and tensor.mean() > 0.6
    (tmp_path / "left" / "a.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        read_clip(read_video_folders(tmp_path).items[0], 4)


def test_grouped_split_is_stratified_and_keeps_videos_whole():
    labels = np.repeat(["a", "b", "a", "b"], [40, 40, 40, 40])
    groups = np.array([f"v{i // 4}" for i in range(160)])  # 4 frames per video
    held = grouped_stratified_split(labels, groups, 0.25, seed=0)
    for group in set(groups):
        assert len(set(held[groups == group])) == 1  # a video is on one side only
    for label in ("a", "b"):
        assert held[labels == label].mean() == pytest.approx(0.25, abs=0.05)
    assert np.array_equal(held, grouped_stratified_split(labels, groups, 0.25, seed=0))
    assert not np.array_equal(held, grouped_stratified_split(labels, groups, 0.25, seed=1))


@pytest.mark.real_data
def test_point_history_file_and_features():
    history = read_point_history(shared_data_path("video_gestures", "mediapipe_point_history", "point_history.csv"))
    assert history.sequences.shape == (5296, 16, 2)
    assert history.labels == ["Stop", "Clockwise", "Counter Clockwise", "Move"]
    assert np.bincount(history.targets).tolist() == [1481, 1234, 1279, 1302]
    x = point_history_features(history.sequences)
    assert x.shape == (5296, 16, 3, 2)  # position, velocity, offset
    assert np.abs(x[:, :, 0]).max() <= 1.0 + 1e-6
    assert np.allclose(x[:, :, 2], history.sequences * 10)
    assert np.allclose(x[:, 1:, 1], np.diff(x[:, :, 0], axis=1)) and not x[:, 0, 1].any()
    held = stratified_split(history.targets, 0.25, seed=0)
    assert held.sum() == 1324
    with pytest.raises(ValueError, match="unknown point-history features"):
        point_history_features(history.sequences, ["speed"])
