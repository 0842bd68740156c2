"""Face detection at every distance, the face tracker, the highlight finder, the content cut and the timeline CLI."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from core.io import AtomicVideoWriter, video_info
from emotion.faces import FaceBox, FaceDetector, iou, merge_boxes, plausible_face, tile_windows
from emotion.timeline import FaceTracker, Track, cut_clips, edit_list, find_highlights
from tests.conftest import shared_data_path, write_faststart_mp4


def _astronaut_face() -> np.ndarray:
    photo = skimage_data.astronaut()
    # the head with some surroundings, down to the chin: below it the suit's collar is a known false face (a tile
    # box of score 0.71 that the confirmation windows keep)
    return np.ascontiguousarray(photo[20:230, 130:330])


def _scene(width=640, height=480) -> np.ndarray:
    rng = np.random.default_rng(1)
    return cv2.GaussianBlur(rng.integers(60, 200, (height, width, 3), dtype=np.uint8), (0, 0), 6)


@pytest.fixture(scope="module")
def detector():
    found = FaceDetector("mediapipe", min_face=40)
    yield found
    found.close()


# ----------------------------------------------------------------------------------------- detection
def test_close_up_and_far_face_are_both_found_and_merged(detector):
    """A close-up that fills the frame (short-range model) and a small face far off (full range or tiles) in one
    picture: both found, one box each."""
    face = _astronaut_face()
    picture = _scene()
    big = cv2.resize(face, (400, 420))
    picture[20:440, 0:400] = big
    small = cv2.resize(face, (80, 84))
    picture[300:384, 520:600] = small
    boxes = detector.detect(picture)
    assert len(boxes) == 2, boxes
    assert boxes[0].w > 150 and boxes[0].x < 400
    assert boxes[1].w < 80 and boxes[1].x > 500
    assert {b.detector for b in boxes} <= {"mediapipe_short", "mediapipe_full", "mediapipe_tile"}


def test_short_and_full_range_models_see_different_distances():
    """The reason both run: the short-range model alone misses a small face that the full pass set finds."""
    face = _astronaut_face()
    picture = _scene()
    picture[200:263, 300:360] = cv2.resize(face, (60, 63))
    whole_only = FaceDetector("mediapipe", min_face=0)
    tiles = FaceDetector("mediapipe", min_face=28)
    try:
        short = whole_only._run(whole_only._short, picture, "mediapipe_short", min_score=0.7)
        assert not short
        assert tiles.detect(picture), "the tiles find the 60 px face"
    finally:
        whole_only.close()
        tiles.close()


def test_merge_keeps_one_box_per_face():
    a = FaceBox(100, 100, 80, 80, 0.9, detector="mediapipe_short")
    b = FaceBox(104, 98, 78, 84, 0.8, detector="mediapipe_full")     # the same face, other model
    c = FaceBox(120, 120, 30, 30, 0.75, detector="mediapipe_tile")   # part of it, from a tile
    d = FaceBox(400, 100, 60, 60, 0.7, detector="mediapipe_tile")    # another face
    merged = merge_boxes([b, c, a, d])
    assert merged == [a, d]


def test_keypoint_layout_rejects_what_is_not_a_face():
    eyes = ((40.0, 50.0), (60.0, 50.0))
    good = FaceBox(25, 30, 50, 60, 0.9, eyes, keypoints=(*eyes, (50.0, 60.0), (50.0, 70.0), (28.0, 55.0), (72.0, 55.0)))
    upside_down = FaceBox(25, 30, 50, 60, 0.9, eyes, keypoints=(*eyes, (50.0, 40.0), (50.0, 30.0), (28.0, 55.0), (72.0, 55.0)))
    eyes_together = FaceBox(25, 30, 50, 60, 0.9, eyes, keypoints=((49.0, 50.0), (51.0, 50.0), (50.0, 60.0), (50.0, 70.0),
                                                                  (28.0, 55.0), (72.0, 55.0)))
    assert plausible_face(good) and not plausible_face(upside_down) and not plausible_face(eyes_together)


def test_tiles_cover_the_picture_down_to_the_smallest_face():
    windows = tile_windows(640, 480, 30)
    assert min(side for _, _, side in windows) * 0.6 >= 30 * 0.99
    assert min(side for _, _, side in windows) * 0.3 <= 30
    for x, y, side in windows:
        assert 0 <= x and x + side <= 640 and 0 <= y and y + side <= 480
    assert tile_windows(640, 480, 0) == []


def test_haar_only_when_asked_and_verified(detector):
    """Haar boxes are kept only where MediaPipe confirms a face; the default detector never runs Haar."""
    haar = FaceDetector("haar")
    try:
        photo = skimage_data.astronaut()
        boxes = haar.detect(photo)
        assert len(boxes) == 1 and boxes[0].detector == "haar" and boxes[0].keypoints is not None
        assert iou(boxes[0], detector.detect(photo)[0]) > 0.5
        assert haar.detect(_scene()) == []
    finally:
        haar.close()
    assert detector._haar is None


def test_no_box_on_a_torso():
    """The shared walking video's torso (where the old Haar fallback put a 244x244 'face'): no box, by any detector."""
    from emotion.detection_sets import torso_crops

    shared_data_path("pose_smoothing", "assemblyai_walking.mp4")
    crops = [crop for name, crop in torso_crops(every=24, limit=4) if name.startswith("assemblyai")]
    assert crops
    for backend in ("mediapipe", "haar"):
        found = FaceDetector(backend, min_face=32)
        try:
            assert all(found.detect(crop) == [] for crop in crops), backend
        finally:
            found.close()


# ----------------------------------------------------------------------------------------- tracking
def _two_face_video(path: Path, frames: int = 30) -> Path:
    face = cv2.resize(_astronaut_face(), (150, 158))
    with AtomicVideoWriter(path, 10, (640, 480)) as writer:
        for i in range(frames):
            picture = _scene()
            picture[60:218, 40 + 3 * i:190 + 3 * i] = face
            picture[260:418, 440 - 2 * i:590 - 2 * i] = face[:, ::-1]
            writer.write(picture)
    return path


def test_tracker_keeps_one_identity_per_face(tmp_path, detector):
    from core.io import iter_video_frames

    video = _two_face_video(tmp_path / "two.mp4")
    tracker = FaceTracker(detector, detect_every=1.0)
    seen = []
    for index, seconds, rgb in iter_video_frames(video):
        seen.append({face.viewer: face.box for face in tracker.push(rgb, seconds)})
    assert seen[0] == {}   # a new track is reported from its second look on
    seen = seen[1:]
    assert all(len(faces) == 2 for faces in seen)
    assert {tuple(sorted(faces)) for faces in seen} == {(1, 2)}
    # viewer 1 is the face moving right at the top, viewer 2 the one moving left at the bottom, all along
    top = [faces[1].y < faces[2].y for faces in seen]
    assert all(top) or not any(top)
    first = 1 if top[0] else 2
    assert seen[-1][first].x > seen[0][first].x


# ----------------------------------------------------------------------------------------- highlights
def test_highlights_are_peaks_spaced_and_thresholded():
    seconds = np.arange(60)
    strength = np.full(60, 0.05)
    strength[10:13] = [0.4, 0.8, 0.5]     # peak at 11
    strength[15] = 0.6                    # too close to 11 (spacing 10)
    strength[30:32] = [0.2, 0.25]         # below the minimum strength
    strength[40:43] = [0.5, 0.7, 0.3]     # peak at 41
    strength[50:55] = np.nan              # no face: never a highlight
    highlights = find_highlights(seconds, strength, top=5, spacing=10, min_strength=0.3)
    assert [h["peak"] for h in highlights] == [11.0, 41.0]
    assert highlights[0]["rank"] == 1 and highlights[0]["start"] == 10 and highlights[0]["end"] == 13
    assert len(find_highlights(seconds, strength, top=1, spacing=10, min_strength=0.3)) == 1
    assert find_highlights(seconds, np.full(60, np.nan)) == []


def test_edit_list_and_content_cut(tmp_path):
    content = tmp_path / "episode.mp4"
    with AtomicVideoWriter(content, 10, (64, 48)) as writer:
        for i in range(200):   # 20 s
            writer.write(np.full((48, 64, 3), i, np.uint8))
    highlights = [{"peak": 15.0, "rank": 1}, {"peak": 3.0, "rank": 2}, {"peak": 17.0, "rank": 3}]
    clips = edit_list(highlights, 20.0, before=2.0, after=2.0)
    # in content order; 15 and 17 overlap and are merged; clipped to the content's end
    assert [(c["start"], c["end"], c["highlights"]) for c in clips] == [(1.0, 6.0, "2"), (13.0, 20.0, "1 3")]
    written = cut_clips(content, clips, tmp_path / "clips", tmp_path / "clips" / "trailer.mp4")
    assert [p.name for p in written] == ["clip_01.mp4", "clip_02.mp4", "trailer.mp4"]
    durations = [video_info(p).duration_seconds for p in written]
    assert durations[0] == pytest.approx(5.0, abs=0.3) and durations[1] == pytest.approx(7.0, abs=0.3)
    assert durations[2] == pytest.approx(12.0, abs=0.5)
    assert not list((tmp_path / "clips").glob(".*"))   # no temporary files left


# ----------------------------------------------------------------------------------------- CLI
def _run(argv):
    from core.cli import run_main
    from emotion import timeline

    with pytest.raises(SystemExit) as exit_info:
        run_main(timeline.main, argv)
    return exit_info.value.code


def test_timeline_cli_end_to_end(tmp_path, capsys):
    video = shared_data_path("emotion", "videos", "single_face.mp4")
    out = tmp_path / "out"
    content = tmp_path / "episode.mp4"
    with AtomicVideoWriter(content, 10, (64, 48)) as writer:
        for i in range(40):
            writer.write(np.full((48, 64, 3), 5 * i, np.uint8))
    status = _run([str(video), "-o", str(out), "--no-progress", "--threads", "1", "--min-strength", "0.1",
                   "--content", str(content), "--trailer", "--before", "1", "--after", "1"])
    assert status == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert {"single_face_frames.csv", "single_face_seconds.csv", "combined_seconds.csv", "highlights.csv",
            "timeline.png", "summary.json", "edit_list.csv", "clips"} <= names
    with open(out / "single_face_frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len({r["frame"] for r in rows}) == 72
    assert sum(r["face"] == "1" for r in rows) >= 60 and all(r["viewer"] in ("1", "") for r in rows)
    with open(out / "highlights.csv", newline="") as handle:
        highlights = list(csv.DictReader(handle))
    assert len(highlights) >= 1 and list(highlights[0])[:5] == ["input", "start", "end", "label", "score"]
    assert highlights[0]["rank"] == "1" and float(highlights[0]["start"]) <= float(highlights[0]["peak"]) < float(highlights[0]["end"])
    assert (out / "trailer.mp4").is_file() and (out / "clips" / "clip_01.mp4").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["videos"][0]["frames_with_face"] >= 60


def test_viewers_of_several_videos_are_combined_in_content_time():
    import pandas as pd

    from emotion.timeline import combine

    labels = ["happy", "neutral"]
    first = pd.DataFrame({"second": [0, 1, 2], "viewer": [1, 1, 1], "happy": [0.1, 0.9, 0.1], "neutral": [0.9, 0.1, 0.9],
                          "valence": [0.0, 0.9, 0.0], "arousal": [0.0, 0.1, 0.0], "strength": [0.0, 1.0, np.nan]})
    second = pd.DataFrame({"second": [1, 2, 3], "viewer": [1, 1, 1], "happy": [0.5, 0.1, 0.1], "neutral": [0.5, 0.9, 0.9],
                           "valence": [0.5, 0.0, 0.0], "arousal": [0.0, 0.0, 0.0], "strength": [0.6, 0.0, 0.0]})
    combined = combine([first, second], labels).set_index("second")
    assert combined.loc[1, "viewers"] == 2 and combined.loc[1, "strength"] == pytest.approx(0.8)
    assert combined.loc[2, "viewers"] == 1 and combined.loc[0, "viewers"] == 1 and combined.loc[3, "viewers"] == 1


def test_timeline_without_a_face_writes_empty_curves_and_exits_1(tmp_path, capsys):
    video = write_faststart_mp4(tmp_path / "noise.mp4", frames=20)
    out = tmp_path / "out"
    assert _run([str(video), "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"skipped {video}: no face in any of its 20 frames" in err
    with open(out / "noise_frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20 and all(r["face"] == "0" and r["happy"] == "" for r in rows)   # gaps, never neutral
    with open(out / "highlights.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == []


def test_timeline_bad_offsets_and_short_content(tmp_path, capsys):
    a = write_faststart_mp4(tmp_path / "a.mp4", frames=20)   # 2 s
    b = write_faststart_mp4(tmp_path / "b.mp4", frames=20)
    out = tmp_path / "out"
    assert _run([str(a), str(b), "--offsets", "0", "10", "-o", str(out)]) == 2
    assert "do not overlap" in capsys.readouterr().err and not out.exists()
    short = write_faststart_mp4(tmp_path / "short.mp4", frames=5)
    assert _run([str(a), "--content", str(short), "-o", str(out)]) == 2
    assert f"error: {short}: the content is" in capsys.readouterr().err and not out.exists()


# ----------------------------------------------------------------------------------------- streaming
class _OneFace:
    """A tracker that sees one face everywhere, and a recognizer whose answer follows the frame's brightness."""

    tracks = [Track(1, FaceBox(8, 8, 32, 32, 0.9))]

    def push(self, rgb, t, look=True):
        from emotion.timeline import TrackedFace

        return [TrackedFace(1, FaceBox(8, 8, 32, 32, 0.9))]


class _Recognizer:
    labels = ["happy", "neutral"]
    input_size = 48
    detector = FaceDetector("none")

    def predict_faces(self, faces):
        happy = faces.mean(axis=(1, 2)) / 255.0
        return np.stack([happy, 1 - happy], axis=1), np.stack([happy, happy * 0], axis=1)


def _grey_video(path, frames, fps=25):
    with AtomicVideoWriter(path, fps, (64, 48)) as writer:
        for i in range(frames):
            writer.write(np.full((48, 64, 3), 200 if (i // fps) % 4 == 3 else 20, np.uint8))
    return path


def test_timeline_rows_are_written_as_they_come_and_memory_stays_flat(tmp_path):
    """Each frame's row leaves before the next frame is read, and the timeline keeps sums per second: a video
    ten times longer takes about the same memory."""
    import tracemalloc

    from emotion import timeline as tl

    def peak(frames):
        video = _grey_video(tmp_path / f"grey{frames}.mp4", frames)
        written = []
        tracemalloc.start()
        result = tl.analyse_video(video, _Recognizer(), _OneFace(), every=1, progress=False,
                                  write_row=lambda row: written.append(row["frame"]))
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert written == list(range(frames)) and result.frames == frames
        return used, result

    peak(50)   # imports and first-call caches
    short, _ = peak(50)
    long, result = peak(1000)
    # 1000 rows of 17 values held as dicts would take about 1.5 MB more than 50
    assert long - short < 300_000, (short, long)
    assert not any(isinstance(v, list) for v in vars(result).values())
    table = tl.seconds_table(result.seconds).set_index("second")
    assert len(table) == 40 and table["face_fraction"].eq(1.0).all()
    # bright seconds (3, 7, ...) are the reactions; the resting face is the dark one
    assert table.loc[3, "strength"] > 0.5 and table.loc[2, "strength"] == pytest.approx(0.0, abs=1e-3)
    assert table.loc[3, "happy"] == pytest.approx(200 / 255, abs=0.02)


def test_emotion_tracker_classifies_on_looks_and_keeps_answers_between(tmp_path):
    """What the timeline and the live stage share: a viewer's first frame is always classified; then only the
    frames that look and classify, the others keep the viewer's last answer."""
    from emotion.timeline import EmotionTracker

    emotions = EmotionTracker(_Recognizer(), _OneFace())
    dark, bright = np.full((48, 64, 3), 20, np.uint8), np.full((48, 64, 3), 200, np.uint8)
    first = emotions.push(dark, 0.0, look=False)   # the viewer is new: classified even without a look
    assert first[0].classified and first[0].viewer == 1
    kept = emotions.push(bright, 0.04, look=True, classify=False)
    assert not kept[0].classified and kept[0].probabilities[0] == pytest.approx(first[0].probabilities[0])
    again = emotions.push(bright, 0.08)
    assert again[0].classified and again[0].probabilities[0] > 0.7
