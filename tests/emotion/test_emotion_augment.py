"""emotion.augment: the robust training pipeline and the benchmark's fixed degradations."""
import numpy as np
import pytest
from skimage import data as skimage_data

from emotion.augment import DEGRADATIONS, degrade, robust_augmentation
from emotion.data import to_gray_square, train_augmentation


@pytest.fixture(scope="module")
def faces():
    """Two real 48 px gray faces: scikit-image's astronaut (her face) and a mirrored copy."""
    face = to_gray_square(skimage_data.astronaut()[20:220, 130:330], 48)
    return np.stack([face, face[:, ::-1]])


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_degradations_keep_shape_and_type_and_repeat_with_a_seed(faces, kind):
    degraded = degrade(faces, kind, seed=3)
    assert degraded.shape == faces.shape and degraded.dtype == np.uint8
    np.testing.assert_array_equal(degraded, degrade(faces, kind, seed=3))
    assert not np.array_equal(degraded, faces), "a degradation must change the face"


def test_each_degradation_does_what_it_says(faces):
    import cv2

    # 16 px and back: nothing finer than the 16 px grid survives.
    small = degrade(faces, "downscale16")
    resampled = cv2.resize(cv2.resize(small[0], (16, 16), interpolation=cv2.INTER_AREA), (48, 48))
    assert np.abs(small[0].astype(int) - resampled).mean() < np.abs(faces[0].astype(int) - small[0]).mean()
    # Rotation: 20 degrees one way or the other, the centre pixel stays put.
    turned = degrade(faces, "rotate20", seed=0)
    candidates = [cv2.warpAffine(faces[0], cv2.getRotationMatrix2D((24, 24), a, 1.0), (48, 48), borderMode=cv2.BORDER_REPLICATE)
                  for a in (-20, 20)]
    assert any(np.array_equal(turned[0], c) for c in candidates)
    # JPEG at quality 20 loses detail but keeps the face.
    jpeg = degrade(faces, "jpeg20")
    assert 0 < np.abs(jpeg.astype(int) - faces).mean() < 20
    # Crop: different seeds move the box differently.
    assert not np.array_equal(degrade(faces, "crop15", seed=0), degrade(faces, "crop15", seed=1))
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(faces, "fog")


def test_robust_augmentation_is_seeded_and_keeps_gray_uint8(faces):
    pipeline = robust_augmentation()
    pipeline.set_random_seed(7)
    first = [pipeline(image=faces[0])["image"] for _ in range(5)]
    pipeline.set_random_seed(7)
    again = [pipeline(image=faces[0])["image"] for _ in range(5)]
    assert all(a.shape == (48, 48) and a.dtype == np.uint8 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert len({a.tobytes() for a in first}) == 5, "every draw differs"
    assert train_augmentation("robust") is not None


def test_bench_robustness_rows_score_every_degradation(faces):
    from emotion import bench
    from emotion.data import CLASSES, FaceSet
    from emotion.model import EmotionModule

    module = EmotionModule(CLASSES, "compact_cnn", "class", 48).eval()
    test = FaceSet(faces, np.array([4, 4]), ["a", "b"])
    rows = bench.robustness(module, test)
    assert set(rows) == set(DEGRADATIONS)
    assert all(row["accuracy"] in (0.0, 0.5, 1.0) for row in rows.values())
