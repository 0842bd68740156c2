"""emotion's live stage: every face with valence-arousal on a real photo, followed by the timeline's tracker."""
from __future__ import annotations

import numpy as np
import pytest

from core.io import read_image
from core.live import LiveFrame


@pytest.fixture(scope="module")
def two_people():
    from emotion.synthetic import package_photos

    photo = next((p for p in package_photos() if p.name == "bus.jpg" and p.is_file()), None)
    if photo is None:
        pytest.skip("ultralytics' bus.jpg is not installed")
    return read_image(photo)


def test_predict_each_gives_every_face_largest_first(two_people, quick_emotion_onnx):
    from emotion.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer(quick_emotion_onnx, threads=1)
    faces = recognizer.predict_each(two_people)
    largest = recognizer.predict(two_people)
    assert len(faces) >= 2 and faces[0].box == largest.box
    assert faces[0].probabilities == pytest.approx(largest.probabilities, abs=1e-5)
    assert all(f.face_found and -1.5 < f.valence < 1.5 for f in faces)
    assert len(recognizer.predict_each(two_people, max_faces=1)) == 1
    assert recognizer.predict_each(np.zeros((64, 64, 3), np.uint8)) == []
    recognizer.close()


def test_emotion_stage_tracks_viewers_and_reuses_its_answer_on_the_other_phase(two_people, quick_emotion_onnx):
    from emotion.webcam_demo import EmotionStage

    stage = EmotionStage(quick_emotion_onnx, threads=1, every=2)
    assert stage(LiveFrame(0, 0.0, two_people)) == []   # a new face is shown from its second frame on
    first = stage(LiveFrame(1, 0.04, two_people))
    assert len(first) >= 2 and sorted(f.viewer for f in first) == list(range(1, len(first) + 1))
    assert stage(LiveFrame(2, 0.08, two_people, light=True)) is first  # even frame, light: faces are phase 1
    # the same viewers on the next frames, each with their own identity
    later = [stage(LiveFrame(i, 0.04 * i, two_people)) for i in (3, 4)]
    assert all([f.viewer for f in faces] == [f.viewer for f in first] for faces in later)
    assert stage.row(first)["emotion_each"].startswith(f"{first[0].viewer}:")
    row = stage.row(first)
    assert row["emotion_faces"] == len(first) and row["emotion"] == first[0].label and "valence" in row
    canvas = two_people.copy()
    stage.draw(canvas, first)
    assert (canvas != two_people).any() and "emotion:" in stage.summary(first)
    assert stage.row([])["emotion"] == "" and stage.summary([]) == "emotion: no face"
    stage.close()


def test_labels_of_different_tasks_never_overlap():
    """A hand at the face: the gesture's label and the emotion's label asked for the same place are stacked."""
    from core.live import _placed_labels, clear_labels, put_label

    canvas = np.zeros((240, 320, 3), np.uint8)
    clear_labels()
    put_label(canvas, "5-hand 0.93", (100, 60), (255, 0, 0))          # the gesture stage's label
    put_label(canvas, "happy 88%", (104, 62), (0, 255, 0), 0.7, 2)    # the emotion stage's, at nearly the same place
    put_label(canvas, "V +0.80 A +0.10", (100, 60), (0, 255, 0), 0.5)
    boxes = list(_placed_labels)
    assert len(boxes) == 3
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    clear_labels()
    assert put_label(canvas, "happy 88%", (104, 62), (0, 255, 0)) == (104, 62)   # a new frame starts empty
