"""Face preparation on a real photo (scikit-image's astronaut): MediaPipe's eye keypoints level a tilted face."""
import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from emotion.faces import FaceBox, FaceDetector


def _tilted(degrees: float) -> np.ndarray:
    photo = skimage_data.astronaut()
    centre = (photo.shape[1] / 2, photo.shape[0] / 2)
    return cv2.warpAffine(photo, cv2.getRotationMatrix2D(centre, degrees, 1.0), photo.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def detector():
    found = FaceDetector("mediapipe")
    yield found
    found.close()


def test_eye_keypoints_measure_the_tilt(detector):
    upright, tilted = (detector.detect(_tilted(a))[0] for a in (0, 15))
    assert abs(upright.eye_angle) < 8   # the astronaut's head leans a few degrees (5.4 by the short-range model)
    # cv2 turns counter-clockwise for positive angles: the eye line now rises to the right by ~15 degrees more.
    assert tilted.eye_angle - upright.eye_angle == pytest.approx(-15, abs=4)


def test_aligned_crop_of_a_tilted_face_looks_like_the_upright_one(detector):
    def gray48(rgb):
        return cv2.resize(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), (48, 48)).astype(float)

    def similarity(a, b):
        return float(np.corrcoef(gray48(a).ravel(), gray48(b).ravel())[0, 1])

    upright_photo, tilted = _tilted(0), _tilted(15)
    upright = detector.square_crop(upright_photo, detector.detect(upright_photo)[0])
    box = detector.detect(tilted)[0]
    aligned = detector.square_crop(tilted, box)
    assert aligned.shape[0] == aligned.shape[1] >= max(box.w, box.h)
    detector.align = False
    try:
        unaligned = detector.square_crop(tilted, box)
    finally:
        detector.align = True
    # Crops of the upright and the levelled photo differ in position by a few pixels; the tilted one differs more.
    # (0.748 with the short-range model's tighter box, which leaves less context around the face than the
    # full-range box this was first measured with)
    assert similarity(aligned, upright) > 0.7 and similarity(aligned, upright) > similarity(unaligned, upright) + 0.15


def test_box_without_eyes_is_cropped_as_is():
    image = np.arange(100 * 100 * 3, dtype=np.uint8).reshape(100, 100, 3)
    crop = FaceDetector("none").square_crop(image, FaceBox(40, 40, 20, 20, 1.0))
    np.testing.assert_array_equal(crop, image[37:62, 37:62])


def test_onet_second_opinion_on_a_face_and_on_texture(detector):
    """MTCNN's O-Net (facenet-pytorch's weights through onnxruntime) says face on the astronaut's face and not on
    a blurred texture beside it."""
    photo = skimage_data.astronaut()
    face = detector.detect(photo)[0]
    assert detector.onet_score(photo, face) > 0.9
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8), (0, 0), 3)
    assert detector.onet_score(texture, FaceBox(50, 50, 100, 100, 0.6)) < 0.1
    # a box half outside the picture is padded black, not an error
    assert 0.0 <= detector.onet_score(photo, FaceBox(-40, -40, 90, 90, 0.6)) <= 1.0


def test_a_box_under_the_score_is_kept_only_with_the_second_opinion():
    """With a score bar no MediaPipe box reaches, the face is kept only through O-Net, and says so."""
    photo = skimage_data.astronaut()
    strict = FaceDetector("mediapipe", min_confidence=0.999, second_opinion=None)
    helped = FaceDetector("mediapipe", min_confidence=0.999)
    assert strict.detect(photo) == []
    kept = helped.detect(photo)
    assert len(kept) == 1 and kept[0].detector.endswith("+onet") and kept[0].score < 0.999 and kept[0].onet > 0.9
    strict.close()
    helped.close()


def test_a_placed_face_matches_its_box_inside_the_square_not_a_part_of_it():
    from emotion.detection_sets import matches_placed_face

    square = (100, 100, 96, 96)
    assert matches_placed_face(FaceBox(100, 100, 90, 90, 0.9), square)        # IoU >= 0.5
    assert matches_placed_face(FaceBox(118, 125, 60, 60, 0.9), square)        # the face proper inside the square
    assert not matches_placed_face(FaceBox(110, 120, 30, 30, 0.9), square)    # an eye
    assert not matches_placed_face(FaceBox(160, 160, 60, 60, 0.9), square)    # half outside


@pytest.mark.real_data
def test_a_shirt_print_beside_a_face_is_kept_only_if_o_net_agrees():
    """A HandsDataset test photo: with tiles down to 28 px faces, the short-range model finds the man's face and,
    in a tile, the print on his shirt, under TILE_SURE_SCORE but confirmed in both windows. A tile box under it
    needs O-Net too, which does not take the print for a face: only the face is kept. Taken from score 0.7
    without O-Net, as before, the print was a second face."""
    from core.io import read_image
    from emotion.faces import ONET_SCORE, TILE_SURE_SCORE, iou
    from tests.conftest import shared_data_path

    photo = read_image(shared_data_path("gesture_detection", "hands_dataset_subhih", "images", "test", "996_pic00060.jpg"))
    default, from_07 = FaceDetector("mediapipe", min_face=28), FaceDetector("mediapipe", min_face=28, tile_sure_score=0.7)
    faces = default.detect(photo)
    assert len(faces) == 1 and iou(faces[0], (173, 48, 85, 85)) > 0.5  # the box in people_faces.csv
    both = from_07.detect(photo)
    assert len(both) == 2
    (print_box,) = [b for b in both if iou(b, faces[0]) < 0.3]
    assert print_box.detector == "mediapipe_tile" and print_box.score < TILE_SURE_SCORE
    assert default.onet_score(photo, print_box) < ONET_SCORE
    default.close()
    from_07.close()


@pytest.mark.real_data
def test_the_people_photos_have_one_face_box_inside_the_photo_or_none():
    from tests.conftest import shared_data_path

    shared_data_path("gesture_detection")
    shared_data_path("video_gestures")
    from emotion.detection_sets import people_photos

    people = people_photos()
    assert len(people) == 168 and sum(box is not None for _, _, box in people) == 122  # 26 of them video frames
    for name, photo, box in people:
        if box is not None:
            x, y, w, h = box
            assert 0 <= x and 0 <= y and x + w <= photo.shape[1] and y + h <= photo.shape[0] and w >= 40, name
