import numpy as np
import pytest

from core.io import InputError, write_audio
from speaker_id.data import (Clip, WaveformDataset, assign_splits, detect_layout, fix_length, load_clips, read_clips,
                             read_manifest, time_shift)


def test_fsdd_layout_uses_official_split(fsdd_like):
    assert detect_layout(fsdd_like) == "fsdd"
    clips = load_clips(fsdd_like)
    assert len(clips) == 28
    test = [c for c in clips if c.split == "test"]
    assert len(test) == 2 * 2 * 5 and all(int(c.path.stem.split("_")[2]) < 5 for c in test)
    assert {c.speaker for c in clips} == {"ann", "bob"}


def test_speaker_folders_layout(voices_dir):
    assert detect_layout(voices_dir) == "folders"
    clips = load_clips(voices_dir)
    assert {c.speaker for c in clips} == {"ada", "bruno", "chen", "dora", "emil"}
    assert all(c.split == "" for c in clips)
    split = assign_splits(clips, test_fraction=0.25, seed=0)
    for speaker in {c.speaker for c in clips}:
        own = [c for c in split if c.speaker == speaker]
        assert sum(c.split == "test" for c in own) == 5 and sum(c.split == "train" for c in own) == 15
    assert assign_splits(clips, 0.25, seed=0) == split, "splits must be reproducible"


def test_manifest_layout_with_and_without_split(tmp_path, voices_dir):
    a, b = sorted((voices_dir / "ada").glob("*.wav"))[:2]
    (tmp_path / "m.csv").write_text(f"path,speaker,split\n{a},ada,train\n{b},ada,test\n")
    assert detect_layout(tmp_path / "m.csv") == "manifest"
    assert [c.split for c in read_manifest(tmp_path / "m.csv")] == ["train", "test"]
    (tmp_path / "rel.csv").write_text("path,speaker\nx/one.wav,zed\n")
    assert read_manifest(tmp_path / "rel.csv") == [Clip(tmp_path / "x" / "one.wav", "zed", "")]


@pytest.mark.parametrize("text, reason", [("file,who\na.wav,x\n", "missing column"), ("path,speaker\n", "no rows"),
                                          ("path,speaker,split\na.wav,x,dev\n", "unknown split")])
def test_bad_manifest(tmp_path, text, reason):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(InputError, match=reason):
        read_manifest(tmp_path / "m.csv")


def test_folder_without_audio_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing")
    with pytest.raises(InputError, match="no audio found"):
        load_clips(tmp_path)


def test_speaker_with_one_clip_is_named_and_skipped(tmp_path):
    clips = [Clip(tmp_path / "a1.wav", "ann"), Clip(tmp_path / "a2.wav", "ann"), Clip(tmp_path / "solo.wav", "solo")]
    with pytest.warns(UserWarning, match="speaker 'solo' has only one clip"):
        split = assign_splits(clips)
    assert {c.speaker for c in split} == {"ann"}


def test_bad_files_are_skipped_and_listed(tmp_path, voices_dir):
    good = sorted((voices_dir / "ada").glob("*.wav"))[0]
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "garbage.wav").write_bytes(b"definitely not audio" * 10)
    write_audio(tmp_path / "short.wav", np.zeros(100, np.float32), 8000)  # 12.5 ms
    clips = [Clip(good, "ada"), *(Clip(tmp_path / n, "x") for n in ("empty.wav", "garbage.wav", "short.wav"))]
    with pytest.warns(UserWarning, match="skipped 3"):
        loaded = read_clips(clips, 8000, progress=False)
    assert loaded.clips == [clips[0]]
    reasons = dict((p.name, r) for p, r in loaded.skipped)
    assert reasons["empty.wav"].startswith("empty file") and "decode" in reasons["garbage.wav"]
    assert reasons["short.wav"].startswith("too short")


def test_fix_length_random_in_training_centred_in_evaluation():
    wave = np.arange(1, 11, dtype=np.float32)
    assert fix_length(wave, 4, None).tolist() == [4, 5, 6, 7]
    padded = fix_length(wave[:2], 6, None)
    assert padded.tolist() == [0, 0, 1, 2, 0, 0]
    rng = np.random.default_rng(0)
    starts = {fix_length(wave, 4, rng)[0] for _ in range(50)}
    assert len(starts) > 3, "training crops should start at random positions"


def test_time_shift_fills_with_silence():
    rng = np.random.default_rng(3)
    wave = np.ones(100, dtype=np.float32)
    shifted = [time_shift(wave, 10, rng) for _ in range(20)]
    assert all(s.sum() >= 90 for s in shifted) and any(s.sum() < 100 for s in shifted)


def test_waveform_dataset_fixed_length():
    dataset = WaveformDataset([np.ones(50, np.float32), np.ones(500, np.float32)], [0, 1], num_samples=200, train=True, max_shift=5)
    assert [tuple(dataset[i][0].shape) for i in range(2)] == [(200,), (200,)]
    assert dataset[1][1] == 1
