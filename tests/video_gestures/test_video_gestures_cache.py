import numpy as np
import pytest

from core.io import InputError
from video_gestures.data import VideoItem
from video_gestures.embeddings import (FrameEmbedder, StaleCacheError, build_cache, frame_views, make_backbone,
                                       read_cache)


class FakeBackbone:
    """Mean colour of each view, repeated: fast and checkable."""

    def __init__(self, name="fake", dim=5):
        self.name, self.dim = name, dim
        self.config = {"name": name, "dim": dim}
        self.calls = 0

    def __call__(self, frames):
        self.calls += 1
        return np.repeat(frames.reshape(len(frames), -1).mean(axis=1, keepdims=True), self.dim, axis=1).astype(np.float32)


def clip_reader(item, num_frames):
    value = int(item.video_id[1:])
    clip = np.zeros((num_frames, 8, 8, 3), np.uint8)
    clip[:, :, :4] = value  # left half carries the id, right half is black
    return clip


ITEMS = [VideoItem(f"v{i}", "ab"[i % 2]) for i in range(6)]


def test_channel_layout_chunks_and_zero_pads():
    embedder = FrameEmbedder([FakeBackbone("a", 5), FakeBackbone("b", 3)], views=["whole", "left", "right"], channel_size=3)
    assert embedder.channels == 3 * (2 + 1)  # 5 → 2 chunks of 3, 3 → 1 chunk, for each view
    out = embedder(clip_reader(VideoItem("v9", "a"), 4))
    assert out.shape == (4, 9, 3)
    assert out[0, 1].tolist() == pytest.approx([4.5, 4.5, 0.0])  # second chunk of a: 2 values + padding
    assert out[0, 3, 0] == pytest.approx(9) and out[0, 6, 0] == 0  # left view sees the id, right view black
    assert [v.shape[2] for v in frame_views(np.zeros((2, 4, 7, 3)), ["whole", "left", "right"])] == [7, 3, 4]


def test_original_12_by_768_layout_from_resnext_and_vit_dims():
    embedder = FrameEmbedder([FakeBackbone("resnext50", 2048), FakeBackbone("vit", 768)], channel_size=768)
    assert embedder.channels == 12 and embedder.channel_size == 768


def test_round_trip_resume_and_stale_detection(tmp_path):
    path = tmp_path / "cache.h5"
    backbone = FakeBackbone()
    embedder = FrameEmbedder([backbone], views=["whole", "left"])
    first = build_cache(ITEMS, path, embedder, ["a", "b"], num_frames=4, clip_reader=clip_reader, progress=False, stop_after=2)
    assert first == {"clips": 2, "new": 2, "complete": False, "frames_per_second": pytest.approx(first["frames_per_second"])}
    with pytest.raises(InputError, match="incomplete cache \\(2/6 clips\\)"):
        read_cache(path)
    calls = backbone.calls
    second = build_cache(ITEMS, path, embedder, ["a", "b"], num_frames=4, clip_reader=clip_reader, progress=False)
    assert second["new"] == 4 and second["complete"]  # only the missing clips were embedded
    assert backbone.calls - calls == 4 * 2  # 4 clips x 2 views
    cache = read_cache(path)
    assert cache.embeddings.shape == (6, 4, 2, 5)
    assert cache.video_ids.tolist() == [f"v{i}" for i in range(6)]
    assert cache.targets.tolist() == [0, 1, 0, 1, 0, 1]
    assert cache.labels == ["a", "b"] and cache.config["backbones"][0]["name"] == "fake"
    assert cache.embeddings[3, 0, 1, 0] == pytest.approx(3)  # left view of v3
    assert build_cache(ITEMS, path, embedder, ["a", "b"], 4, clip_reader, progress=False)["new"] == 0

    other = FrameEmbedder([FakeBackbone("other")], views=["whole", "left"])
    with pytest.raises(StaleCacheError, match="stale cache: built with other settings"):
        build_cache(ITEMS, path, other, ["a", "b"], 4, clip_reader, progress=False)
    with pytest.raises(StaleCacheError, match="stale cache"):
        build_cache(ITEMS, path, embedder, ["a", "b"], 8, clip_reader, progress=False)  # other frame count
    with pytest.raises(StaleCacheError, match="another clip list"):
        build_cache(ITEMS[:5], path, embedder, ["a", "b"], 4, clip_reader, progress=False)
    rebuilt = build_cache(ITEMS, path, other, ["a", "b"], 4, clip_reader, rebuild=True, progress=False)
    assert rebuilt["new"] == 6 and read_cache(path).config["backbones"][0]["name"] == "other"


def test_truncated_cache_is_rebuilt_not_read(tmp_path):
    path = tmp_path / "cache.h5"
    embedder = FrameEmbedder([FakeBackbone()], views=["whole"])
    build_cache(ITEMS, path, embedder, ["a", "b"], 4, clip_reader, progress=False)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(InputError, match="unreadable cache"):
        read_cache(path)
    with pytest.warns(UserWarning, match="unreadable cache.*rebuilding"):
        result = build_cache(ITEMS, path, embedder, ["a", "b"], 4, clip_reader, progress=False)
    assert result["new"] == 6 and read_cache(path).embeddings.shape == (6, 4, 1, 5)


def test_backbones_build_offline_with_their_dims(tmp_path):
    import torch

    frames = np.random.default_rng(0).integers(0, 255, (2, 40, 50, 3), dtype=np.uint8)
    vit = make_backbone("vit-tiny", image_size=32)
    assert vit(frames).shape == (2, 32)
    torch.save(vit.module.model.state_dict(), tmp_path / "vit.pt")
    reloaded = make_backbone("vit-tiny", image_size=32, checkpoint=tmp_path / "vit.pt")
    assert np.allclose(reloaded(frames), vit(frames), atol=1e-5)
    mobilenet = make_backbone("mobilenet_v2", image_size=64)
    assert mobilenet(frames).shape == (2, 1280) and mobilenet.config["weights"] == "imagenet"
    with pytest.raises(InputError, match="backbone checkpoint not found"):
        make_backbone("vit-tiny", 32, checkpoint=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="unknown backbone"):
        make_backbone("vgg")
