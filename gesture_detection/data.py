"""Hand-gesture annotations in four formats, converters between them, and the crop dataset.

Every reader returns a list of `ImageAnnotation` (one per image: its path, size and hand boxes in
pixels), so the rest of the task never sees a file format:

- box CSV, one row per box: `image,split,width,height,class,xmin,ymin,xmax,ymax` (`read_box_csv`);
- YOLO txt labels, one `class cx cy w h` line per box, normalised (`read_yolo_dataset`);
- HaGRID per-class JSON: `{image_id: {"bboxes": [[x, y, w, h], ...], "labels": [...]}}`, normalised
  top-left boxes, images in `<images>/<class>/<image_id>.jpg` (`read_hagrid`);
- a folder per class with no boxes, for classifier-only training (`read_class_folders`).

Boxes that leave the image are clipped with a warning; boxes with no area left are dropped with a warning.
`write_yolo_dataset` turns any of them into the layout ultralytics trains on, and `write_box_csv` into the CSV.
"""
from __future__ import annotations

import csv
import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from core.env import REPO_ROOT
from core.io import IMAGE_EXTENSIONS, InputError, atomic_open, list_files, read_image
from core.normalisation import IMAGENET_MEAN, IMAGENET_STD

BOX_CSV_COLUMNS = ["image", "split", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"]
NO_GESTURE = "no_gesture"
MIN_IMAGE_SIDE = 16  # smaller images carry no recognisable hand; rejected with a clear error


class AnnotationWarning(UserWarning):
    """An annotation was repaired (box clipped) or skipped (no area, unreadable image)."""


@dataclass(frozen=True)
class HandBox:
    """A hand box in pixels, with its gesture class (or `hand` when the format has no classes)."""

    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float

    @property
    def area(self) -> float:
        return max(self.xmax - self.xmin, 0.0) * max(self.ymax - self.ymin, 0.0)

    def as_array(self) -> np.ndarray:
        return np.array([self.xmin, self.ymin, self.xmax, self.ymax], dtype=np.float32)


@dataclass
class ImageAnnotation:
    """One image: its file, size, split and hand boxes. `label` is the image's gesture: given by the
    format (HaGRID file, class folder) or, for box formats, the class of the largest box."""

    path: Path
    width: int
    height: int
    boxes: list[HandBox] = field(default_factory=list)
    split: str = ""
    label: str | None = None

    def __post_init__(self) -> None:
        if self.label is None:
            self.label = max(self.boxes, key=lambda b: b.area).label if self.boxes else NO_GESTURE

    @property
    def gestures(self) -> set[str]:
        """Every gesture shown in the image (an image may show two hands with different gestures)."""
        return {self.label} | {b.label for b in self.boxes}


# ----------------------------------------------------------------------------------------- boxes
def clip_box(box: HandBox, width: int, height: int, source: str = "") -> HandBox | None:
    """Clip a box to the image; warn when it had to move, None (with a warning) when no area is left."""
    clipped = replace(box, xmin=min(max(box.xmin, 0.0), width), ymin=min(max(box.ymin, 0.0), height),
                      xmax=min(max(box.xmax, 0.0), width), ymax=min(max(box.ymax, 0.0), height))
    if clipped.xmax - clipped.xmin < 1 or clipped.ymax - clipped.ymin < 1:
        warnings.warn(f"{source}: box {box.xmin:.1f},{box.ymin:.1f},{box.xmax:.1f},{box.ymax:.1f} has no area "
                      f"inside the {width}x{height} image; dropped", AnnotationWarning, stacklevel=2)
        return None
    if clipped != box:
        warnings.warn(f"{source}: box {box.xmin:.1f},{box.ymin:.1f},{box.xmax:.1f},{box.ymax:.1f} leaves the "
                      f"{width}x{height} image; clipped", AnnotationWarning, stacklevel=2)
    return clipped


def _clipped(boxes: Iterable[HandBox], width: int, height: int, source: str) -> list[HandBox]:
    return [b for b in (clip_box(box, width, height, source) for box in boxes) if b is not None]


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError as error:
        raise InputError(path, "file not found") from error
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(path, f"cannot decode image ({error})") from error


# ----------------------------------------------------------------------------------------- box CSV
def read_box_csv(csv_path: str | os.PathLike, root: str | os.PathLike | None = None,
                 split: str | None = None) -> list[ImageAnnotation]:
    """Images and boxes of a box CSV; `image` paths are relative to `root` (default: the CSV's folder).
    `split` keeps only that split (`train`, `test`)."""
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    if not csv_path.is_file():
        raise InputError(csv_path, "file not found")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in BOX_CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(csv_path, f"missing columns {missing}; expected {','.join(BOX_CSV_COLUMNS)}")
        images: dict[str, ImageAnnotation] = {}
        for line, row in enumerate(reader, start=2):
            if split is not None and row["split"] != split:
                continue
            where = f"{csv_path}:{line}"
            try:
                width, height = int(float(row["width"])), int(float(row["height"]))
                box = HandBox(row["class"], *(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")))
            except ValueError as error:
                raise InputError(where, f"not a number ({error})") from error
            if width <= 0 or height <= 0:
                raise InputError(where, f"image size {width}x{height} is not positive")
            if not box.label:
                raise InputError(where, "empty class")
            entry = images.setdefault(row["image"], ImageAnnotation(root / row["image"], width, height, [], row["split"], ""))
            entry.boxes.extend(_clipped([box], width, height, where))
    if not images:
        raise InputError(csv_path, f"no rows{f' in split {split!r}' if split else ''}")
    annotations = []
    for entry in images.values():
        entry.label = None
        entry.__post_init__()  # label = class of the largest remaining box
        annotations.append(entry)
    return annotations


def write_box_csv(annotations: Sequence[ImageAnnotation], csv_path: str | os.PathLike,
                  root: str | os.PathLike | None = None) -> Path:
    """The box CSV of `annotations`, image paths relative to `root` (default: the CSV's folder)."""
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    with atomic_open(csv_path) as handle:
        writer = csv.writer(handle)
        writer.writerow(BOX_CSV_COLUMNS)
        for a in annotations:
            name = os.path.relpath(a.path, root)
            for b in a.boxes:
                writer.writerow([name, a.split, a.width, a.height, b.label,
                                 *(f"{v:.1f}" for v in (b.xmin, b.ymin, b.xmax, b.ymax))])
    return csv_path


# ----------------------------------------------------------------------------------------- YOLO txt
def read_yolo_dataset(images_dir: str | os.PathLike, class_names: Sequence[str],
                      labels_dir: str | os.PathLike | None = None, split: str = "") -> list[ImageAnnotation]:
    """Images under `images_dir` with YOLO labels: `labels_dir/<stem>.txt` (default: the sibling
    `labels/` folder, as ultralytics lays it out). An image without a label file has no hands."""
    images_dir = Path(images_dir)
    labels_dir = Path(labels_dir) if labels_dir is not None else _yolo_labels_dir(images_dir)
    annotations = []
    for image_path in list_files(images_dir, IMAGE_EXTENSIONS):
        width, height = image_size(image_path)
        label_path = labels_dir / image_path.relative_to(images_dir).with_suffix(".txt")
        boxes = []
        if label_path.is_file():
            for line_number, line in enumerate(label_path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"{label_path}:{line_number}"
                parts = line.split()
                try:
                    class_id, (cx, cy, w, h) = int(parts[0]), map(float, parts[1:5])
                except (ValueError, IndexError) as error:
                    raise InputError(where, f"expected 'class cx cy w h', got {line!r}") from error
                if not 0 <= class_id < len(class_names):
                    raise InputError(where, f"class id {class_id} outside 0..{len(class_names) - 1}")
                boxes.append(HandBox(class_names[class_id], (cx - w / 2) * width, (cy - h / 2) * height,
                                     (cx + w / 2) * width, (cy + h / 2) * height))
        annotations.append(ImageAnnotation(image_path, width, height, _clipped(boxes, width, height, str(label_path)), split))
    return annotations


def _yolo_labels_dir(images_dir: Path) -> Path:
    parts = list(images_dir.parts)
    if "images" not in parts:
        raise InputError(images_dir, "no 'images' folder in the path; pass labels_dir")
    index = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:index], "labels", *parts[index + 1:])


def yolo_lines(annotation: ImageAnnotation, class_ids: dict[str, int] | None) -> list[str]:
    """`class cx cy w h` lines; with `class_ids=None` every box is class 0 (one `hand` class)."""
    lines = []
    for b in annotation.boxes:
        cx = (b.xmin + b.xmax) / 2 / annotation.width
        cy = (b.ymin + b.ymax) / 2 / annotation.height
        w, h = (b.xmax - b.xmin) / annotation.width, (b.ymax - b.ymin) / annotation.height
        class_id = 0 if class_ids is None else class_ids[b.label]
        lines.append(f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def write_yolo_dataset(splits: dict[str, Sequence[ImageAnnotation]], out_dir: str | os.PathLike,
                       class_names: Sequence[str] | None = None, prefix: str = "") -> Path:
    """Lay `splits` out as ultralytics expects: `images/<split>/` (symbolic links to the originals, so
    nothing is copied), `labels/<split>/*.txt` and `data.yaml`. `class_names=None` trains one `hand` class.
    Returns the path of data.yaml (written last, so its presence means the dataset is complete)."""
    out_dir = Path(out_dir)
    class_ids = {name: i for i, name in enumerate(class_names)} if class_names else None
    for split, annotations in splits.items():
        if not annotations:
            raise InputError(out_dir, f"split {split!r} has no images")
        for folder in ("images", "labels"):
            (out_dir / folder / split).mkdir(parents=True, exist_ok=True)
        for a in annotations:
            name = f"{prefix}{a.path.stem}"
            link = out_dir / "images" / split / f"{name}{a.path.suffix.lower()}"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(Path(a.path).resolve())
            with atomic_open(out_dir / "labels" / split / f"{name}.txt") as handle:
                handle.write("\n".join(yolo_lines(a, class_ids)) + ("\n" if a.boxes else ""))
    names = list(class_names) if class_names else ["hand"]
    yaml_path = out_dir / "data.yaml"
    with atomic_open(yaml_path) as handle:
        handle.write(f"path: {out_dir.resolve()}\n")
        for split in splits:
            handle.write(f"{'val' if split == 'test' else split}: images/{split}\n")
        if "val" not in splits and "test" not in splits:
            handle.write(f"val: images/{next(iter(splits))}\n")
        handle.write("names:\n" + "".join(f"  {i}: {name}\n" for i, name in enumerate(names)))
    return yaml_path


# ----------------------------------------------------------------------------------------- HaGRID
def read_hagrid(annotations_dir: str | os.PathLike, images_dir: str | os.PathLike,
                classes: Sequence[str] | None = None) -> list[ImageAnnotation]:
    """HaGRID: one `<class>.json` per gesture in `annotations_dir`, images in `images_dir/<class>/<id>.jpg`.

    Boxes are normalised top-left `[x, y, w, h]`; the other hand of a HaGRID image is labelled
    `no_gesture`. The image's gesture is its JSON file's class. Entries whose image is missing are
    skipped with a warning."""
    annotations_dir, images_dir = Path(annotations_dir), Path(images_dir)
    files = sorted(annotations_dir.glob("*.json")) if annotations_dir.is_dir() else []
    if classes is not None:
        files = [f for f in files if f.stem in set(classes)]
    if not files:
        raise InputError(annotations_dir, "no <class>.json annotation files")
    annotations = []
    for json_path in files:
        try:
            entries = json.loads(json_path.read_text())
        except json.JSONDecodeError as error:
            raise InputError(json_path, f"not valid JSON ({error})") from error
        if not isinstance(entries, dict) or not entries:
            raise InputError(json_path, "class with no examples (expected {image_id: {bboxes, labels}})")
        for image_id, entry in entries.items():
            where = f"{json_path}[{image_id}]"
            bboxes, labels = entry.get("bboxes"), entry.get("labels")
            if bboxes is None or labels is None or len(bboxes) != len(labels):
                raise InputError(where, "needs 'bboxes' and 'labels' of the same length")
            image_path = _find_image(images_dir / json_path.stem, image_id)
            if image_path is None:
                warnings.warn(f"{where}: no image {images_dir / json_path.stem / image_id}.*; skipped", AnnotationWarning, stacklevel=2)
                continue
            width, height = image_size(image_path)
            boxes = [HandBox(str(label), x * width, y * height, (x + w) * width, (y + h) * height)
                     for (x, y, w, h), label in zip(bboxes, labels)]
            annotations.append(ImageAnnotation(image_path, width, height, _clipped(boxes, width, height, where),
                                               "", json_path.stem))
    return annotations


def _find_image(folder: Path, stem: str) -> Path | None:
    for extension in IMAGE_EXTENSIONS:
        for candidate in (folder / f"{stem}{extension}", folder / f"{stem}{extension.upper()}"):
            if candidate.is_file():
                return candidate
    return None


# ----------------------------------------------------------------------------------------- class folders
def read_class_folders(root: str | os.PathLike) -> list[ImageAnnotation]:
    """`root/<class>/*.jpg`: whole images with a gesture and no boxes. A class folder with no image is an error."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise InputError(root, "no class folders (expected <root>/<class>/<image>)")
    annotations = []
    for class_dir in class_dirs:
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise InputError(class_dir, f"class {class_dir.name!r} has no examples (no image files)")
        for image_path in files:
            width, height = image_size(image_path)
            annotations.append(ImageAnnotation(image_path, width, height, [], "", class_dir.name))
    return annotations


# ----------------------------------------------------------------------------------------- checks and loading
def class_names_of(annotations: Iterable[ImageAnnotation], include_boxes: bool = True) -> list[str]:
    names: set[str] = set()
    for a in annotations:
        names.add(a.label)
        if include_boxes:
            names.update(b.label for b in a.boxes)
    names.discard(NO_GESTURE)
    return sorted(names)


def check_class_counts(annotations: Sequence[ImageAnnotation], class_names: Sequence[str], source: str) -> Counter:
    """Count images per class; an error naming the classes that have no example."""
    counts = Counter(a.label for a in annotations)
    empty = [name for name in class_names if counts[name] == 0]
    if empty:
        raise InputError(source, f"classes with no examples: {', '.join(empty)}")
    return counts


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB image (grayscale, RGBA and palette converted) or an InputError naming the file and reason."""
    return read_image(path, min_side=MIN_IMAGE_SIDE)


def readable(annotations: Sequence[ImageAnnotation]) -> list[ImageAnnotation]:
    """Keep the annotations whose image decodes and is large enough; warn about each one skipped."""
    kept = []
    for a in annotations:
        try:
            load_image(a.path)
        except InputError as error:
            warnings.warn(f"{error}; skipped", AnnotationWarning, stacklevel=2)
            continue
        kept.append(a)
    return kept


# ----------------------------------------------------------------------------------------- real sets
SHARED_SETS = {"hands_dataset": "hands_dataset_subhih", "linto": "linto_multi_hand_gesture"}
# the classes of each real set that are a number of extended fingers: the `fingers` mode and the
# cross-dataset benchmark; every class of both sets is the same gesture in a mirror and none depends on
# where the hand points, so neither declares oriented or asymmetric classes (see train.py)
FINGER_COUNT_CLASSES = {"hands_dataset": {count: f"{count}-hand" for count in range(6)},
                        "linto": {0: "yes", 1: "handup", 2: "vectory", 5: "hello"}}
# what each class of the real sets shows finger by finger (thumb, index, middle, ring, pinky: 1 extended,
# 0 folded, None where it varies or is unclear) and its finger count (None: not a count): what
# `model.FingerCounter.fit` learns the fingers mode's thresholds and calibration from. HandsDataset's
# three is shown in several ways; LinTO's `okay` (an OK circle: the index curled onto the thumb) has a
# folded index, its thumb touches the index tip; `no` (a pinch) and `thanks` (two hands pressed together)
# are left out.
_ALL, _NONE, _UNKNOWN = (1, 1, 1, 1, 1), (0, 0, 0, 0, 0), (None,) * 5
FINGER_STATES = {
    "hands_dataset": {"0-hand": (0, _NONE), "1-hand": (1, (0, 1, 0, 0, 0)), "2-hand": (2, (0, 1, 1, 0, 0)),
                      "3-hand": (3, _UNKNOWN), "4-hand": (4, (0, 1, 1, 1, 1)), "5-hand": (5, _ALL)},
    "linto": {"yes": (0, _NONE), "handup": (1, (0, 1, 0, 0, 0)), "vectory": (2, (0, 1, 1, 0, 0)), "hello": (5, _ALL),
              "ok": (1, (1, 0, 0, 0, 0)), "callme": (2, (1, 0, 0, 0, 1)), "iloveyou": (3, (1, 1, 0, 0, 1)),
              "okay": (3, (None, 0, 1, 1, 1))},
}
SHARED_ROOT = REPO_ROOT.parent / "shared" / "data" / "gesture_detection"  # ../shared beside the repository


def recording_session(path: str | os.PathLike) -> str | None:
    """The recording session a photo comes from, read from its file name where the real sets' naming
    says it: HandsDataset's `<session>_pic<n>.jpg`, LinTO's `<class>.<uuid1>.jpg` (a time-based UUID:
    the day it was taken, 2021-04-29 or 2021-09-21); None for any other name."""
    import datetime
    import uuid

    name = Path(path).name
    if "_pic" in name:
        return name.split("_pic")[0]
    parts = name.split(".")
    if len(parts) >= 3:
        try:
            identifier = uuid.UUID(parts[1])
        except ValueError:
            return None
        if identifier.version == 1:  # 100 ns ticks since 1582-10-15
            seconds = (identifier.time - 0x01B21DD213814000) / 1e7
            return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d")
    return None


def shared_set_csv(name: str, shared_root: str | os.PathLike) -> Path:
    """labels.csv of one of the real sets (`hands_dataset`, `linto`) under ../shared/data/gesture_detection."""
    if name not in SHARED_SETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(SHARED_SETS)}")
    return Path(shared_root) / SHARED_SETS[name] / "labels.csv"


# ----------------------------------------------------------------------------------------- crop dataset
def crop_transform(image_size: int, train: bool):
    """Albumentations pipeline for hand crops: photometric and small geometric changes when training,
    then resize to a square and ImageNet normalisation to a CHW float tensor."""
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    steps = []
    if train:
        steps += [A.HorizontalFlip(p=0.5),
                  A.Affine(rotate=(-15, 15), scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), p=0.7),
                  A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.03, p=0.8),
                  A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.GaussNoise(std_range=(0.02, 0.08))], p=0.2),
                  A.ToGray(p=0.05)]
    steps += [A.Resize(image_size, image_size), A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD), ToTensorV2()]
    return A.Compose(steps)


@dataclass(frozen=True)
class CropItem:
    path: Path
    box: tuple[float, float, float, float]
    target: int


def crop_items(annotations: Sequence[ImageAnnotation], class_names: Sequence[str]) -> list[CropItem]:
    """One item per hand box whose class is in `class_names`; images without boxes (class folders)
    give one whole-image item labelled with the image's gesture."""
    index = {name: i for i, name in enumerate(class_names)}
    items = []
    for a in annotations:
        if a.boxes:
            items += [CropItem(Path(a.path), (b.xmin, b.ymin, b.xmax, b.ymax), index[b.label]) for b in a.boxes if b.label in index]
        elif a.label in index:
            items.append(CropItem(Path(a.path), (0.0, 0.0, float(a.width), float(a.height)), index[a.label]))
    return items


class CropDataset:
    """Hand crops for the CNN: the box is expanded to a square (factor `expand`; when training a random
    factor in `expand_range` and a random shift, so the model tolerates loose detector boxes), cropped,
    augmented and resized. Images are decoded on demand; an unreadable one raises InputError."""

    def __init__(self, items: Sequence[CropItem], image_size: int = 128, train: bool = False,
                 expand: float = 1.3, expand_range: tuple[float, float] = (1.1, 1.8), seed: int = 0):
        self.items, self.train, self.expand, self.expand_range = list(items), train, expand, expand_range
        self.transform = crop_transform(image_size, train)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        from gesture_detection.detect import crop, expand_box

        item = self.items[i]
        rgb = load_image(item.path)
        box = np.array(item.box, dtype=np.float32)
        factor = self.expand
        if self.train:
            factor = float(self.rng.uniform(*self.expand_range))
            size = max(box[2] - box[0], box[3] - box[1])
            box = box + np.tile(self.rng.uniform(-0.1, 0.1, size=2) * size, 2).astype(np.float32)
        patch = crop(rgb, expand_box(box, factor, rgb.shape[1], rgb.shape[0], square=True))
        return self.transform(image=patch)["image"], item.target


FORMATS = ("csv", "yolo", "hagrid", "folders")


def load_annotations(source: str | os.PathLike, fmt: str = "csv", class_names: Sequence[str] | None = None,
                     images_dir: str | os.PathLike | None = None) -> list[ImageAnnotation]:
    """Any of the four formats: `csv` (box CSV file), `yolo` (images folder; needs `class_names`),
    `hagrid` (annotations folder; `images_dir` holds <class>/<id>.jpg), `folders` (one folder per class)."""
    if fmt == "csv":
        return read_box_csv(source)
    if fmt == "yolo":
        if not class_names:
            raise ValueError("YOLO labels need the class names (--classes)")
        return read_yolo_dataset(source, class_names)
    if fmt == "hagrid":
        if images_dir is None:
            raise ValueError("HaGRID needs the images folder (--images)")
        return read_hagrid(source, images_dir, class_names)
    if fmt == "folders":
        return read_class_folders(source)
    raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")


def split_annotations(annotations: Sequence[ImageAnnotation], val_fraction: float = 0.1, seed: int = 0
                      ) -> tuple[list[ImageAnnotation], list[ImageAnnotation], list[ImageAnnotation]]:
    """(train, val, test): the format's `test` split is kept apart; `val` is a random share of the rest, by image."""
    test = [a for a in annotations if a.split == "test"]
    rest = [a for a in annotations if a.split != "test"]
    order = np.random.default_rng(seed).permutation(len(rest))
    n_val = int(round(len(rest) * val_fraction)) if len(rest) > 1 else 0
    val = [rest[i] for i in sorted(order[:n_val])]
    train = [rest[i] for i in sorted(order[n_val:])]
    return train, val, test
