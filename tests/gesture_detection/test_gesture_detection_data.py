"""The four annotation formats, the YOLO converter, box clipping and bad input, on tiny generated files."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from core.io import InputError
from gesture_detection.data import (AnnotationWarning, CropDataset, HandBox, ImageAnnotation, check_class_counts,
                                    class_names_of, crop_items, load_image, read_box_csv, read_class_folders,
                                    read_hagrid, read_yolo_dataset, readable, split_annotations, write_box_csv,
                                    write_yolo_dataset)


def make_image(path, size=(80, 60), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = {"RGB": (200, 150, 120), "L": 128, "RGBA": (10, 20, 30, 0)}[mode]
    Image.new(mode, size, colour).save(path)
    return path


@pytest.fixture()
def box_csv(tmp_path):
    make_image(tmp_path / "images" / "a.jpg")
    make_image(tmp_path / "images" / "b.png")
    (tmp_path / "labels.csv").write_text(
        "image,split,width,height,class,xmin,ymin,xmax,ymax\n"
        "images/a.jpg,train,80,60,like,10,10,30,40\n"
        "images/a.jpg,train,80,60,ok,40,5,75,55\n"      # larger box: the image's label
        "images/b.png,test,80,60,like,5,5,20,20\n")
    return tmp_path / "labels.csv"


def test_box_csv_groups_boxes_per_image_and_labels_by_largest_box(box_csv):
    annotations = read_box_csv(box_csv)
    assert [a.path.name for a in annotations] == ["a.jpg", "b.png"]
    first = annotations[0]
    assert (first.width, first.height, first.split) == (80, 60, "train")
    assert [b.label for b in first.boxes] == ["like", "ok"]
    assert first.label == "ok" and first.gestures == {"like", "ok"}
    assert first.boxes[0] == HandBox("like", 10, 10, 30, 40)
    assert [a.path.name for a in read_box_csv(box_csv, split="test")] == ["b.png"]
    assert class_names_of(annotations) == ["like", "ok"]


def test_box_csv_round_trip(box_csv, tmp_path):
    annotations = read_box_csv(box_csv)
    written = write_box_csv(annotations, tmp_path / "copy.csv")
    again = read_box_csv(written)
    assert [(a.path, a.boxes, a.split) for a in again] == [(a.path, a.boxes, a.split) for a in annotations]


def test_box_outside_the_image_is_clipped_with_a_warning_and_an_empty_box_dropped(tmp_path):
    make_image(tmp_path / "a.jpg")
    (tmp_path / "labels.csv").write_text(
        "image,split,width,height,class,xmin,ymin,xmax,ymax\n"
        "a.jpg,train,80,60,ok,-10,20,95,70\n"
        "a.jpg,train,80,60,like,100,100,120,130\n")
    with pytest.warns(AnnotationWarning) as caught:
        (annotation,) = read_box_csv(tmp_path / "labels.csv")
    messages = " ".join(str(w.message) for w in caught)
    assert "clipped" in messages and "dropped" in messages and "labels.csv:2" in messages
    assert annotation.boxes == [HandBox("ok", 0, 20, 80, 60)]


def test_box_csv_errors_name_the_file(tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("image,class\nx.jpg,ok\n")
    with pytest.raises(InputError, match="labels.csv: missing columns"):
        read_box_csv(bad)
    bad.write_text("image,split,width,height,class,xmin,ymin,xmax,ymax\nx.jpg,train,80,60,ok,a,1,2,3\n")
    with pytest.raises(InputError, match=r"labels.csv:2: not a number"):
        read_box_csv(bad)
    with pytest.raises(InputError, match="file not found"):
        read_box_csv(tmp_path / "missing.csv")


def test_yolo_conversion_round_trip_keeps_boxes_and_classes(box_csv, tmp_path):
    annotations = read_box_csv(box_csv)
    data_yaml = write_yolo_dataset({"train": annotations[:1], "test": annotations[1:]}, tmp_path / "yolo", ["like", "ok"])
    text = data_yaml.read_text()
    assert "train: images/train" in text and "val: images/test" in text and "1: ok" in text
    assert (tmp_path / "yolo" / "labels" / "train" / "a.txt").read_text().splitlines()[1].startswith("1 0.718750 0.500000")
    back = read_yolo_dataset(tmp_path / "yolo" / "images" / "train", ["like", "ok"])
    assert len(back) == 1 and [b.label for b in back[0].boxes] == ["like", "ok"]
    np.testing.assert_allclose([b.as_array() for b in back[0].boxes], [b.as_array() for b in annotations[0].boxes], atol=1e-3)
    # one `hand` class for the detector
    write_yolo_dataset({"train": annotations}, tmp_path / "hands")
    assert {line.split()[0] for line in (tmp_path / "hands" / "labels" / "train" / "a.txt").read_text().splitlines()} == {"0"}
    assert "0: hand" in (tmp_path / "hands" / "data.yaml").read_text()


def test_yolo_reader_rejects_bad_lines_and_reads_missing_labels_as_no_hand(tmp_path):
    make_image(tmp_path / "images" / "a.jpg")
    make_image(tmp_path / "images" / "b.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    annotations = read_yolo_dataset(tmp_path / "images", ["fist"])
    assert [len(a.boxes) for a in annotations] == [1, 0] and annotations[1].label == "no_gesture"
    (tmp_path / "labels" / "a.txt").write_text("3 0.5 0.5 0.5 0.5\n")
    with pytest.raises(InputError, match=r"a.txt:1: class id 3 outside"):
        read_yolo_dataset(tmp_path / "images", ["fist"])


def test_hagrid_json_boxes_become_pixels(tmp_path):
    make_image(tmp_path / "images" / "like" / "id1.jpg", size=(100, 50))
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "like.json").write_text(json.dumps({
        "id1": {"bboxes": [[0.1, 0.2, 0.3, 0.4], [0.9, 0.5, 0.2, 0.2]], "labels": ["like", "no_gesture"], "user_id": "u"},
        "id2": {"bboxes": [[0.1, 0.1, 0.1, 0.1]], "labels": ["like"]},  # image missing: skipped
    }))
    with pytest.warns(AnnotationWarning, match="id2"):
        (annotation,) = read_hagrid(tmp_path / "ann", tmp_path / "images")
    assert annotation.label == "like" and (annotation.width, annotation.height) == (100, 50)
    np.testing.assert_allclose(annotation.boxes[0].as_array(), [10, 10, 40, 30], atol=1e-4)
    assert annotation.boxes[1] == HandBox("no_gesture", 90, 25, 100, 35)  # clipped at the right edge
    assert class_names_of([annotation]) == ["like"]
    (tmp_path / "ann" / "ok.json").write_text("{}")
    with pytest.raises(InputError, match="ok.json: class with no examples"):
        read_hagrid(tmp_path / "ann", tmp_path / "images")


def test_class_folders_and_their_errors(tmp_path):
    make_image(tmp_path / "set" / "like" / "1.jpg")
    make_image(tmp_path / "set" / "ok" / "2.png")
    annotations = read_class_folders(tmp_path / "set")
    assert [(a.label, a.boxes) for a in annotations] == [("like", []), ("ok", [])]
    items = crop_items(annotations, ["like", "ok"])
    assert [(i.target, i.box) for i in items] == [(0, (0.0, 0.0, 80.0, 60.0)), (1, (0.0, 0.0, 80.0, 60.0))]
    (tmp_path / "set" / "mute").mkdir()
    with pytest.raises(InputError, match="class 'mute' has no examples"):
        read_class_folders(tmp_path / "set")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no class folders"):
        read_class_folders(tmp_path / "empty")
    with pytest.raises(InputError, match="classes with no examples: dislike"):
        check_class_counts(annotations, ["like", "ok", "dislike"], "set")


def test_odd_images_are_converted_and_bad_ones_rejected_by_name(tmp_path):
    gray = load_image(make_image(tmp_path / "gray.png", mode="L"))
    rgba = load_image(make_image(tmp_path / "rgba.png", mode="RGBA"))
    assert gray.shape == (60, 80, 3) and rgba.shape == (60, 80, 3)
    assert (rgba == 255).all()  # transparent pixels composited on white
    with pytest.raises(InputError, match="tiny.png: image too small"):
        load_image(make_image(tmp_path / "tiny.png", size=(8, 8)))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(InputError, match="broken.jpg: cannot decode"):
        load_image(tmp_path / "broken.jpg")
    annotations = [ImageAnnotation(tmp_path / name, 80, 60, [], "", "ok") for name in ("gray.png", "broken.jpg", "tiny.png")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = readable(annotations)
    assert [a.path.name for a in kept] == ["gray.png"]
    assert sum("skipped" in str(w.message) for w in caught) == 2


def test_split_keeps_test_apart_and_crops_have_the_model_size(box_csv):
    annotations = read_box_csv(box_csv) * 5
    train, val, test = split_annotations(annotations, val_fraction=0.25)
    assert len(test) == 5 and len(train) + len(val) == 5 and len(val) == 1
    dataset = CropDataset(crop_items(train, ["like", "ok"]), image_size=48, train=True)
    image, target = dataset[1]
    assert tuple(image.shape) == (3, 48, 48) and target == 1
