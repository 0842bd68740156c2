"""Loaders (competition layout, fer2013.csv, FER+ zip + votes), the clean step and bad image inputs."""
from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.io import InputError
from emotion.data import (CLASS_INDEX, CLASSES, FaceDataset, find_duplicates, list_skillbox_train, list_test_images,
                          load_fer2013_csv, load_ferplus, load_images, load_skillbox_train, majority_label, read_submission)
from emotion.synthetic import draw_face
from tests.conftest import shared_data_path


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)


@pytest.fixture()
def competition(tmp_path):
    rng = np.random.default_rng(0)
    for emotion in ("anger", "happy", "sad"):
        for i in (0, 1, 10, 2):
            _save(tmp_path / "train" / emotion / f"{i}.jpg", draw_face(emotion, 64, rng))
    (tmp_path / "train" / "happy" / "notes.txt").write_text("not an image")
    for i in (0, 1, 2, 10, 11):
        _save(tmp_path / "test_kaggle" / f"{i}.jpg", draw_face("neutral", 64, rng))
    (tmp_path / "test_kaggle" / "readme.md").write_text("x")
    (tmp_path / "sample_submission.csv").write_text("image_path,emotion\n0.jpg,neutral\n1.jpg,neutral\n10.jpg,neutral\n"
                                                    "11.jpg,neutral\n2.jpg,neutral\n")
    return tmp_path


def test_competition_train_layout(competition):
    items = list_skillbox_train(competition)
    assert len(items) == 12  # the .txt file is skipped
    assert [p.name for p, _ in items[:4]] == ["0.jpg", "1.jpg", "2.jpg", "10.jpg"]  # natural order per folder
    assert {label for _, label in items} == {CLASS_INDEX["anger"], CLASS_INDEX["happy"], CLASS_INDEX["sad"]}
    faces = load_skillbox_train(competition, size=32)
    assert faces.images.shape == (12, 32, 32) and faces.images.dtype == np.uint8
    assert faces.class_counts()["happy"] == 4 and faces.class_counts()["fear"] == 0


def test_unknown_class_folder_is_an_error(competition):
    (competition / "train" / "angry").mkdir()
    with pytest.raises(InputError, match="unknown class folders"):
        list_skillbox_train(competition)


def test_test_folder_order_and_sample_submission(competition):
    names, skipped = list_test_images(competition / "test_kaggle")
    assert names == ["0.jpg", "1.jpg", "2.jpg", "10.jpg", "11.jpg"] and skipped == ["readme.md"]
    names, _ = list_test_images(competition / "test_kaggle", competition / "sample_submission.csv")
    assert names == ["0.jpg", "1.jpg", "10.jpg", "11.jpg", "2.jpg"]  # the sample's (lexicographic) order wins


@pytest.mark.parametrize("text, error", [
    ("id,emotion\n0.jpg,happy\n", "header"),
    ("image_path,emotion\n0.jpg,happy\n0.jpg,sad\n", "duplicate"),
    ("image_path,emotion\n0.jpg,joy\n", "unknown emotions"),
    ("image_path,emotion\n0.jpg\n", "2 columns"),
])
def test_submission_reader_rejects_bad_files(tmp_path, text, error):
    path = tmp_path / "submission.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=error):
        read_submission(path)


@pytest.mark.real_data
def test_real_submission_example_is_valid():
    submission = read_submission(shared_data_path("emotion", "skillbox_submission_example.csv"))
    assert len(submission["image_path"]) == 5000 and set(submission["emotion"]) <= set(CLASSES)


def test_fer2013_csv(fer2013_csv):
    path = fer2013_csv([(0, "Training"), (3, "Training"), (6, "PublicTest"), (5, "PrivateTest")])
    faces = load_fer2013_csv(path)
    assert faces.images.shape == (4, 48, 48)
    assert [CLASSES[i] for i in faces.labels] == ["anger", "happy", "neutral", "surprise"]
    assert len(load_fer2013_csv(path, usage=("Training",))) == 2
    with open(path, "a") as handle:
        handle.write("2,1 2 3,Training\n")
    with pytest.raises(InputError, match="line 6: 3 pixels is not a square"):
        load_fer2013_csv(path)


def _ferplus_fixture(root, rows):
    header = ["image", "fer_usage", "split", "votes_neutral", "votes_happiness", "votes_surprise", "votes_sadness",
              "votes_anger", "votes_disgust", "votes_fear", "votes_contempt", "votes_unknown", "votes_NF",
              "ferplus_majority", "skillbox_class"]
    rng = np.random.default_rng(2)
    with zipfile.ZipFile(root / "ferplus_images.zip", "w") as archive, open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, (split, votes) in enumerate(rows):
            name = f"FER2013{split.title()}/fer{i:07d}.png"
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(buffer, format="PNG")
            archive.writestr(name, buffer.getvalue())
            writer.writerow([name, "x", split, *votes, "", ""])


def test_ferplus_votes_to_hard_and_soft_labels(tmp_path):
    _ferplus_fixture(tmp_path, [
        ("train", [6, 0, 0, 0, 0, 0, 0, 0, 2, 2]),   # neutral majority; NF votes ignored
        ("train", [0, 5, 5, 0, 0, 0, 0, 0, 0, 0]),   # tie happy/surprise
        ("test", [0, 0, 0, 0, 0, 0, 0, 7, 3, 0]),    # contempt with unknown votes
        ("test", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),   # NF only: no label
    ])
    faces = load_ferplus(tmp_path, cache=False)
    assert [CLASSES[i] for i in faces.labels] == ["neutral", "contempt"]  # tie and NF-only dropped
    np.testing.assert_allclose(faces.soft[0, CLASS_INDEX["neutral"]], 6 / 8)
    np.testing.assert_allclose(faces.soft[1, CLASS_INDEX["uncertain"]], 0.3)
    np.testing.assert_allclose(faces.soft.sum(axis=1), 1.0)
    kept = load_ferplus(tmp_path, splits=("train",), drop_ties=False, cache=False)
    assert list(kept.labels) == [CLASS_INDEX["neutral"], -1]
    targets = FaceDataset(kept).targets
    np.testing.assert_allclose(targets[1, [CLASS_INDEX["happy"], CLASS_INDEX["surprise"]]], [0.5, 0.5])
    assert list(kept.strata()) == [CLASS_INDEX["neutral"], CLASS_INDEX["happy"]], "a tie samples as its first top class"
    assert majority_label(np.array([3, 3, 0])) == -1 and majority_label(np.zeros(3)) == -1


def test_train_keeps_tied_faces_only_when_asked(tmp_path):
    from emotion import train

    _ferplus_fixture(tmp_path, [("train", [6, 0, 0, 0, 0, 0, 0, 0, 2, 2]), ("train", [0, 5, 5, 0, 0, 0, 0, 0, 0, 0]),
                                ("valid", [0, 4, 4, 0, 0, 0, 0, 0, 0, 0]), ("valid", [0, 9, 0, 0, 0, 0, 0, 0, 0, 0]),
                                ("test", [0, 0, 0, 8, 0, 0, 0, 0, 0, 0])])
    common = ["--data-root", str(tmp_path), "--input-size", "48"]
    default = train.load_splits(train.build_parser().parse_args(common))
    with_ties = train.load_splits(train.build_parser().parse_args([*common, "--keep-ties"]))
    assert len(default["train"]) == 1 and len(with_ties["train"]) == 2
    assert len(with_ties["val"]) == 1, "scoring leaves ties out"


def test_ferplus_missing_member(tmp_path):
    _ferplus_fixture(tmp_path, [("train", [1, 0, 0, 0, 0, 0, 0, 0, 0, 0])])
    with open(tmp_path / "labels.csv", "a") as handle:
        handle.write("FER2013Train/missing.png,x,train,3,0,0,0,0,0,0,0,0,0,,\n")
    with pytest.raises(InputError, match="missing.png is missing"):
        load_ferplus(tmp_path, cache=False)


@pytest.mark.real_data
def test_real_ferplus_counts():
    faces = load_ferplus(shared_data_path("emotion", "ferplus"), splits=("test",))
    assert len(faces) == 3573 - 174  # ties excluded
    assert faces.class_counts()["neutral"] == 1160 and faces.class_counts()["contempt"] == 27
    assert faces.images.shape[1:] == (48, 48)


def test_bad_images_keep_their_rows(tmp_path):
    rng = np.random.default_rng(3)
    face = draw_face("happy", 96, rng)
    _save(tmp_path / "rgb.jpg", face)
    _save(tmp_path / "gray.png", face[..., 0])
    Image.fromarray(face).convert("CMYK").save(tmp_path / "cmyk.jpg")
    _save(tmp_path / "tiny.png", face[:3, :3])
    _save(tmp_path / "huge.jpg", np.zeros((3000, 4200, 3), np.uint8), quality=30)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    names = ["rgb.jpg", "gray.png", "cmyk.jpg", "tiny.png", "huge.jpg", "broken.jpg", "empty.jpg"]
    errors = []
    faces, flags = load_images([tmp_path / n for n in names], 48, on_error=errors.append)
    assert faces.shape == (7, 48, 48)
    assert flags[:3] == ["", "", ""] and flags[4] == ""
    assert flags[3].startswith("unreadable: image too small")
    assert flags[5].startswith("unreadable: cannot decode") and flags[6] == "unreadable: empty file (0 bytes)"
    assert all(str(tmp_path) in str(e) for e in errors) and len(errors) == 3
    # Colour, gray and CMYK versions of the same face give nearly the same gray input.
    assert np.abs(faces[0].astype(int) - faces[2].astype(int)).mean() < 8


def test_clean_finds_duplicates_and_conflicts(tmp_path):
    import cv2

    from emotion.data import FaceSet

    rng = np.random.default_rng(4)
    base = [cv2.cvtColor(draw_face(e, 96, rng), cv2.COLOR_RGB2GRAY) for e in ("happy", "sad", "anger", "fear")]
    near = cv2.resize(cv2.resize(base[1], (60, 60)), (96, 96))  # rescaled copy: a near duplicate
    images = np.stack([base[0], base[0].copy(), base[1], near, base[2], base[3], base[3].copy(), base[3].copy()])
    labels = np.array([CLASS_INDEX[e] for e in ("happy", "happy", "sad", "anger", "anger", "fear", "fear", "sad")])
    faces = FaceSet(images, labels, [f"{i}.jpg" for i in range(8)])
    report = find_duplicates(faces)
    groups = sorted(sorted(g) for g in report.groups)
    assert groups == [[0, 1], [2, 3], [5, 6, 7]]
    assert sorted(sorted(g) for g in report.conflicts) == [[2, 3], [5, 6, 7]]
    # happy pair -> one kept; sad/anger 1:1 conflict -> both dropped; fear 2:1 -> one fear face kept.
    assert report.keep.tolist() == [0, 4, 5]
    rows = report.rows(faces.names, faces.labels)
    assert sum(r["conflict"] for r in rows) == 5 and sum(r["kept"] for r in rows) == 2
    exact = find_duplicates(faces, max_distance=0)
    assert [2, 3] not in [sorted(g) for g in exact.groups]


def test_clean_cli_reports_a_copy_under_another_emotion(competition, tmp_path):
    import shutil

    from emotion import clean

    shutil.copyfile(competition / "train" / "happy" / "0.jpg", competition / "train" / "sad" / "99.jpg")
    report, keep = tmp_path / "report.csv", tmp_path / "keep.txt"
    summary = clean.main(["--data-root", str(competition), "--max-distance", "0", "--report", str(report), "--keep-list", str(keep)])
    assert summary["conflicting_groups"] >= 1 and summary["kept"] + summary["dropped"] == 13
    with open(report, newline="") as handle:
        rows = list(csv.DictReader(handle))
    copy_rows = [r for r in rows if r["image"] in ("train/happy/0.jpg", "train/sad/99.jpg")]
    assert len(copy_rows) == 2 and all(r["conflict"] == "True" and r["kept"] == "False" for r in copy_rows)
    assert "train/sad/99.jpg" not in keep.read_text().split()


def test_near_copies_of_held_out_faces_are_found_across_sets():
    """`train --clean` drops the training faces that repeat a valid/test face (FER2013 repeats some)."""
    import cv2

    from emotion.data import FaceSet, near_copies

    rng = np.random.default_rng(5)
    faces = [cv2.cvtColor(draw_face(e, 96, rng), cv2.COLOR_RGB2GRAY) for e in ("happy", "sad", "anger", "fear")]
    train = FaceSet(np.stack(faces[:3]), np.array([0, 1, 2]), ["a", "b", "c"])
    rescaled = cv2.resize(cv2.resize(faces[1], (60, 60)), (96, 96))
    test = FaceSet(np.stack([rescaled, faces[3]]), np.array([1, 3]), ["t1", "t2"])
    assert near_copies(train, [test]).tolist() == [False, True, False]
    assert near_copies(train, []).tolist() == [False, False, False]
