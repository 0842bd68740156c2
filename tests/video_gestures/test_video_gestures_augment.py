import numpy as np

from video_gestures.augment import clip_augmentation


def arrow_clip(frames: int = 5) -> np.ndarray:
    clip = np.zeros((frames, 32, 32, 3), np.uint8)
    clip[:, 10:22, 4:12] = 220  # a bright block on the left: a flip moves it right
    return clip


def test_every_frame_gets_the_same_parameters():
    augment = clip_augmentation(size=24, seed=3)
    clip = arrow_clip()
    changed = 0
    for _ in range(8):
        out = augment(clip)
        assert out.shape == (5, 24, 24, 3) and out.dtype == np.uint8
        assert all(np.array_equal(out[0], frame) for frame in out[1:])  # identical frames stay identical
        changed += not np.array_equal(out[0], augment(clip)[0])
    assert changed > 0  # but clips differ from call to call


def test_flip_switch():
    def flipped_share(augment) -> float:
        outs = [augment(arrow_clip(2)) for _ in range(30)]
        return float(np.mean([o[0, :, 12:].mean() > o[0, :, :12].mean() for o in outs]))

    assert 0.2 < flipped_share(clip_augmentation(size=24, seed=0)) < 0.8
    assert flipped_share(clip_augmentation(size=24, flips=False, seed=0)) == 0.0
