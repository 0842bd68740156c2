"""Models over time (the GRU runs over time, not over the batch), frame averaging, fusion, keypoint
normalisation and the per-clip cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from action_recognition.features import ClipCache, FrameEncoder, TemporalShift, cached_stem_maps, view_frames
from action_recognition.fusion import fuse, tune_weight
from action_recognition.keypoints import FEATURES_PER_FRAME, normalise_pose
from action_recognition.model import ActionModule
from core.training import mixup, soft_cross_entropy
from pose_smoothing.data import NUM_LANDMARKS

LABELS = ["a", "b", "c"]


def _module(kind: str, dim: int = 16) -> ActionModule:
    torch.manual_seed(0)
    return ActionModule(LABELS, kind, input_dim=dim, hidden=8, dropout=0.0).eval()


def test_gru_runs_over_time_not_over_the_batch():
    module = _module("gru")
    x = torch.randn(4, 6, 16)
    out = module(x)
    assert out.shape == (4, 3)
    shuffled = x[:, torch.tensor([5, 2, 0, 4, 1, 3])]
    assert not torch.allclose(module(shuffled), out, atol=1e-4)       # order in time matters
    other_batch = x.clone()
    other_batch[1:] = torch.randn(3, 6, 16)
    assert torch.allclose(module(other_batch)[0], out[0], atol=1e-6)  # other clips in the batch do not
    assert torch.allclose(module(x[:1]), out[:1], atol=1e-6)


def test_keypoint_model_is_the_gru_over_keypoints():
    module = _module("keypoint", FEATURES_PER_FRAME)
    x = torch.randn(2, 3, FEATURES_PER_FRAME)
    assert not torch.allclose(module(x.flip(1)), module(x), atol=1e-4)


def test_frame_model_averages_per_frame_probabilities_and_tsn_ignores_order():
    frame, tsn = _module("frame"), _module("tsn")
    x = torch.randn(5, 3, 16)
    per_frame = torch.softmax(frame.frame_logits(x), dim=-1).mean(dim=1)
    assert torch.allclose(torch.softmax(frame(x), dim=1), per_frame, atol=1e-5)
    assert torch.allclose(tsn(x.flip(1)), tsn(x), atol=1e-5)
    assert torch.allclose(tsn(x), tsn.frame_logits(x).mean(dim=1), atol=1e-6)


def test_frame_model_trains_on_single_frames():
    module = ActionModule(LABELS, "frame", input_dim=4, dropout=0.0)
    module.log = lambda *args, **kwargs: None
    x, y = torch.randn(6, 3, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    loss = module.training_step((x, y), 0)
    expected = torch.nn.functional.cross_entropy(module.frame_logits(x).flatten(0, 1), y.repeat_interleave(3), label_smoothing=0.1)
    assert torch.isclose(loss, expected)


@pytest.mark.parametrize("kind", ["frame", "tsn"])
def test_mixup_trains_on_blended_clips_and_soft_labels(kind):
    module = ActionModule(LABELS, kind, input_dim=4, dropout=0.0, label_smoothing=0.0, mixup_alpha=0.4)
    module.log = lambda *args, **kwargs: None
    x, y = torch.randn(6, 3, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(1)
    loss = module.training_step((x, y), 0)
    torch.manual_seed(1)
    mixed, soft = mixup(x, y, 3, 0.4)
    logits = module.frame_logits(mixed)
    if kind == "frame":
        expected = soft_cross_entropy(logits.flatten(0, 1), soft.repeat_interleave(3, dim=0))
    else:
        expected = soft_cross_entropy(logits.mean(dim=1), soft)
    assert torch.isclose(loss, expected)
    assert not torch.isclose(loss, soft_cross_entropy(module(x), y))   # not the loss on the plain clips


def test_unknown_model_and_keypoint_finetune_are_errors():
    with pytest.raises(ValueError, match="unknown model"):
        ActionModule(LABELS, "lstm")
    with pytest.raises(ValueError, match="no CNN to fine-tune"):
        ActionModule(LABELS, "keypoint", finetune=True)


def test_fusion_weighting_and_tuning():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    frame = np.full((300, 3), 0.2)
    frame[np.arange(300), truth] = 0.6                      # right everywhere except class 2, where it says 0
    frame[truth == 2] = [0.5, 0.3, 0.2]
    keypoint = np.full((300, 3), 1 / 3)
    keypoint[truth == 2] = [0.1, 0.1, 0.8]                  # only knows class 2
    assert np.allclose(fuse(frame, keypoint, 1.0), frame)
    no_person = np.zeros(300, bool)
    assert np.allclose(fuse(frame, keypoint, 0.3, no_person), frame)
    weight, curve = tune_weight(frame, keypoint, truth)
    assert 0 < weight < 1 and curve[weight] == 1.0 and curve[1.0] < 0.8
    fused = fuse(frame, keypoint, weight)
    assert np.allclose(fused.sum(axis=1), 1.0)


def test_pose_normalisation_ignores_position_and_scale():
    rng = np.random.default_rng(1)
    image = np.concatenate([rng.uniform(0.3, 0.5, (3, NUM_LANDMARKS, 2)), np.zeros((3, NUM_LANDMARKS, 1))], axis=2)
    visibility = np.ones((3, NUM_LANDMARKS))
    moved = image.copy()
    moved[..., :2] = 0.2 + 1.5 * image[..., :2]
    visibility[2] = 0.0                                     # nobody in the last frame
    a, b = normalise_pose(image, visibility), normalise_pose(moved, visibility)
    assert a.shape == (3, FEATURES_PER_FRAME) and np.allclose(a, b, atol=1e-5)
    assert not a[2].any() and np.abs(a[0]).max() <= 1.0 + 1e-6


def test_clip_cache_computes_only_new_clips(tmp_path):
    calls = []

    def compute(indices):
        calls.append(list(indices))
        return {"features": np.array([[float(i)] for i in indices])}

    cache = ClipCache(tmp_path / "c.npz")
    first = cache.get(["x", "y"], compute)["features"]
    second = cache.get(["y", "z", "x"], lambda idx: {"features": np.array([[9.0] for _ in idx])})["features"]
    assert calls == [[0, 1]] and first.ravel().tolist() == [0.0, 1.0]
    assert second.ravel().tolist() == [1.0, 9.0, 0.0]
    assert ClipCache(None).get(["q"], compute)["features"].tolist() == [[0.0]]


def test_finetune_module_takes_frames_and_resnet18_warns_without_weights():
    module = ActionModule(LABELS, "tsn", finetune=True, backbone="mobilenet_v2", image_size=32).eval()
    frames = torch.randint(0, 255, (2, 2, 24, 24, 3), dtype=torch.uint8)
    assert module(frames).shape == (2, 3)
    assert any(p.requires_grad for p in module.encoder.parameters())
    with pytest.warns(UserWarning, match="no offline ImageNet weights"):
        ActionModule(LABELS, "gru", finetune=True, backbone="resnet18", image_size=32)


def test_partial_finetune_freezes_the_stem_and_reads_cached_maps(tmp_path):
    torch.manual_seed(0)
    module = ActionModule(LABELS, "tsn", finetune=True, image_size=32, finetune_from=14).train()
    encoder = module.encoder
    assert not any(p.requires_grad for p in encoder.stem_blocks.parameters())
    assert all(p.requires_grad for p in encoder.tail_blocks.parameters())
    assert not encoder.stem_blocks.training and encoder.tail_blocks.training   # stem batch-norm stays ImageNet's
    module.eval()
    clips = np.random.default_rng(0).integers(0, 255, (2, 3, 24, 24, 3), dtype=np.uint8)
    maps = cached_stem_maps(["x", "y"], list(clips), encoder, "plain", cache_dir=tmp_path)
    assert maps.shape[:2] == (2, 3) and maps.dtype == np.float16
    with torch.no_grad():       # the same clip logits from frames (prediction) and from cached maps (training)
        assert torch.allclose(module(torch.from_numpy(clips)), module(torch.from_numpy(maps.astype(np.float32))), atol=1e-2)
    mirrored = cached_stem_maps(["x"], [clips[0]], encoder, "flip", cache_dir=tmp_path)
    assert not np.allclose(mirrored[0], maps[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilenet_v2_32px_stem14_flip_3frames.npz",
                                                         "mobilenet_v2_32px_stem14_plain_3frames.npz"]
    with pytest.raises(ValueError, match="first_trained must be in 1..18"):
        FrameEncoder("mobilenet_v2", 32, first_trained=19)
    with pytest.raises(ValueError, match="needs one of mobilenet_v2"):
        FrameEncoder("resnet18", 32, first_trained=3)


def test_temporal_shift_moves_a_quarter_of_the_channels_between_neighbouring_frames():
    shift = TemporalShift(fold_div=4)
    shift.segments = 3
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(6, 8, 1, 1) + 1     # 2 clips of 3 frames, 8 channels
    clips, out = x.view(2, 3, 8), shift(x).view(2, 3, 8)
    assert torch.equal(out[:, 1:, :2], clips[:, :-1, :2]) and (out[:, 0, :2] == 0).all()        # from the frame before
    assert torch.equal(out[:, :-1, 2:4], clips[:, 1:, 2:4]) and (out[:, -1, 2:4] == 0).all()    # from the frame after
    assert torch.equal(out[:, :, 4:], clips[:, :, 4:])                                          # the rest stays
    with pytest.raises(ValueError, match="do not split into clips of 3"):
        shift(torch.zeros(4, 8, 1, 1))


def test_tsn_with_temporal_shift_sees_the_order_of_frames():
    torch.manual_seed(0)
    module = ActionModule(LABELS, "tsn", finetune=True, image_size=32, finetune_from=11, temporal_shift=True).eval()
    assert len(module.encoder.shifts) == 4            # in blocks 12, 13, 15 and 16: the residual ones after 11
    frames = torch.randint(0, 255, (2, 3, 24, 24, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert not torch.allclose(module(frames[:, [2, 0, 1]]), module(frames), atol=1e-4)
        assert torch.allclose(module(frames[:1]), module(frames)[:1], atol=1e-5)   # other clips do not leak in
    plain = ActionModule(LABELS, "tsn", finetune=True, image_size=32, finetune_from=11).eval()
    with torch.no_grad():
        assert torch.allclose(plain(frames[:, [2, 0, 1]]), plain(frames), atol=1e-5)
    with pytest.raises(ValueError, match="needs finetune"):
        ActionModule(LABELS, "tsn", input_dim=4, temporal_shift=True)


def test_augmented_view_is_the_same_for_every_frame_and_fixed_by_its_seed():
    frame = np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    clip = np.stack([frame] * 3)
    view = view_frames("clip-1", clip, "aug0")
    assert view.shape == clip.shape and view.dtype == np.uint8
    assert (view[0] == view[1]).all() and (view[0] == view[2]).all()       # one transform per clip
    assert (view_frames("clip-1", clip, "aug0") == view).all()             # reproducible: the cache stays valid
    others = [view_frames("clip-1", clip, f"aug{k}") for k in range(1, 4)] + [view_frames("clip-2", clip, "aug0")]
    assert all(not np.array_equal(o, view) for o in others)
    assert (view_frames("c", clip, "flip") == clip[:, :, ::-1]).all() and view_frames("c", clip, "plain") is not None
    with pytest.raises(ValueError, match="unknown view"):
        view_frames("c", clip, "zoom")


def test_onnx_stem_matches_the_torch_stem():
    """The cache filler's onnxruntime stem gives the maps of the torch stem it was exported from."""
    encoder = FrameEncoder("mobilenet_v2", 32, first_trained=4).eval()
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    onnx_stem = encoder.onnx_stem()
    assert onnx_stem is not None
    np.testing.assert_allclose(onnx_stem(frames).numpy(), encoder.stem(frames).numpy(), atol=1e-4)
