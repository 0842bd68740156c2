"""Face-emotion data: the Skillbox competition layout, FER2013's `fer2013.csv`, FER+ vote labels,
the duplicate/conflict `clean` step, and the in-memory dataset the models train on.

Every loader returns a `FaceSet`: grayscale uint8 faces of one square size, hard labels (index into
`CLASSES`, -1 when unknown or tied), optional soft labels (FER+ vote distributions) and names.
Faces are kept grayscale because the real training data (FER2013/FER+) is grayscale; colour test
photos are converted the same way, so train and test see one domain.
"""
from __future__ import annotations

import csv
import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from core.env import CACHE_DIR
from core.io import IMAGE_EXTENSIONS, InputError, read_image
from core.normalisation import IMAGENET_MEAN, IMAGENET_STD

# The nine competition classes, alphabetical = the folder names = the class indices 0..8.
CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise", "uncertain")
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}

# FER+ vote columns (labels.csv / fer2013new.csv order) -> competition class; NF ("not a face") has none.
FERPLUS_VOTES = {
    "votes_neutral": "neutral", "votes_happiness": "happy", "votes_surprise": "surprise", "votes_sadness": "sad",
    "votes_anger": "anger", "votes_disgust": "disgust", "votes_fear": "fear", "votes_contempt": "contempt",
    "votes_unknown": "uncertain",
}
# FER2013 `emotion` codes (Goodfellow et al. 2013): 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
FER2013_CODES = ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_USAGE = {"Training": "train", "PublicTest": "valid", "PrivateTest": "test"}
SUBMISSION_HEADER = ("image_path", "emotion")


@dataclass
class FaceSet:
    """Faces as one array (N, S, S) uint8 gray, labels (N,) int (-1 = unknown), optional soft labels (N, 9)."""

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    soft: np.ndarray | None = None
    flags: list[str] = field(default_factory=list)  # per image: "" or why it is special ("no_face", "unreadable: ...")

    def __post_init__(self) -> None:
        if not self.flags:
            self.flags = [""] * len(self.names)
        n = len(self.names)
        if len(self.images) != n or len(self.labels) != n or len(self.flags) != n or (self.soft is not None and len(self.soft) != n):
            raise ValueError(f"FaceSet parts disagree in length: {len(self.images)} images, {len(self.labels)} labels, {n} names")

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: Sequence[int] | np.ndarray) -> "FaceSet":
        index = np.asarray(index, dtype=int)
        return FaceSet(self.images[index], self.labels[index], [self.names[i] for i in index],
                       None if self.soft is None else self.soft[index], [self.flags[i] for i in index])

    def targets(self) -> np.ndarray:
        """Soft distributions (N, 9) when known, else one-hot of the hard labels."""
        if self.soft is not None:
            return self.soft.astype(np.float32)
        return one_hot(self.labels)

    def strata(self) -> np.ndarray:
        """A class per face for sampling and stratifying: the label, or for a tie the most-voted class."""
        if self.soft is None:
            return self.labels
        return np.where(self.labels >= 0, self.labels, self.soft.argmax(axis=1))

    def class_counts(self) -> dict[str, int]:
        return {name: int((self.labels == i).sum()) for i, name in enumerate(CLASSES)}


def one_hot(labels: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    labels = np.asarray(labels)
    if (labels < 0).any():
        raise ValueError("one_hot needs known labels (no -1)")
    out = np.zeros((len(labels), n_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def concat(sets: Iterable[FaceSet]) -> FaceSet:
    sets = list(sets)
    softs = [s.targets() for s in sets] if any(s.soft is not None for s in sets) else None
    return FaceSet(np.concatenate([s.images for s in sets]), np.concatenate([s.labels for s in sets]),
                   [n for s in sets for n in s.names], None if softs is None else np.concatenate(softs),
                   [f for s in sets for f in s.flags])


# ----------------------------------------------------------------------------------------- pixels
def to_gray_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """RGB (or gray) uint8 -> gray (size, size) uint8; non-square inputs are centre-cropped first."""
    import cv2

    gray = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    gray = gray[top:top + side, left:left + side]
    if side != size:
        gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    return np.ascontiguousarray(gray)


def resize_faces(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a stack of square gray faces (N, S, S) to (N, size, size)."""
    import cv2

    if images.shape[1] == size:
        return images
    return np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR if size > img.shape[0] else cv2.INTER_AREA)
                     for img in images]) if len(images) else np.zeros((0, size, size), np.uint8)


# ----------------------------------------------------------------------------------------- FER+
def read_ferplus_labels(labels_csv: str | Path) -> list[dict]:
    """Rows of FER+ `labels.csv` with `votes` (9 counts in CLASSES order), `label` (index or -1 for ties/NF) and `split`."""
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise InputError(labels_csv, "file not found")
    rows = []
    with open(labels_csv, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "split", *FERPLUS_VOTES} - set(reader.fieldnames or [])
        if missing:
            raise InputError(labels_csv, f"missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            votes = np.zeros(len(CLASSES), dtype=np.float32)
            try:
                for column, name in FERPLUS_VOTES.items():
                    votes[CLASS_INDEX[name]] = float(row[column] or 0)
            except ValueError as error:
                raise InputError(labels_csv, f"line {line}: bad vote count ({error})") from error
            rows.append({"image": row["image"], "split": row["split"], "votes": votes,
                         "label": majority_label(votes)})
    return rows


def majority_label(votes: np.ndarray) -> int:
    """Index of the single most-voted class, or -1 when the top count is tied or there are no votes."""
    votes = np.asarray(votes)
    top = votes.max() if len(votes) else 0
    if top <= 0 or (votes == top).sum() > 1:
        return -1
    return int(votes.argmax())


def load_ferplus(root: str | Path, splits: Sequence[str] = ("train", "valid", "test"), size: int = 48,
                 drop_ties: bool = True, cache: bool = True) -> FaceSet:
    """FER+ faces from `root/ferplus_images.zip` (read in place) and `root/labels.csv`.

    Soft labels are the vote distributions over the nine classes (NF votes ignored); hard labels are
    the unique majority. `drop_ties` removes images without one (ties, NF-only), as the benchmark does."""
    root = Path(root)
    zip_path, labels_csv = root / "ferplus_images.zip", root / "labels.csv"
    rows = [r for r in read_ferplus_labels(labels_csv) if r["split"] in splits]
    rows = [r for r in rows if r["votes"].sum() > 0 and (r["label"] >= 0 or not drop_ties)]
    names = [r["image"] for r in rows]
    images = _cached_zip_faces(zip_path, names, size) if cache else _read_zip_faces(zip_path, names, size)
    votes = np.stack([r["votes"] for r in rows]) if rows else np.zeros((0, len(CLASSES)), np.float32)
    soft = votes / votes.sum(axis=1, keepdims=True).clip(min=1)
    return FaceSet(images, np.array([r["label"] for r in rows], dtype=int), names, soft.astype(np.float32))


def _read_zip_faces(zip_path: Path, names: Sequence[str], size: int) -> np.ndarray:
    if not zip_path.is_file():
        raise InputError(zip_path, "file not found")
    out = np.zeros((len(names), size, size), dtype=np.uint8)
    with zipfile.ZipFile(zip_path) as archive:
        members = set(archive.namelist())
        for i, name in enumerate(names):
            if name not in members:
                raise InputError(zip_path, f"member {name} is missing")
            out[i] = to_gray_square(read_image(archive.read(name), name=f"{zip_path}:{name}"), size)
    return out


def _cached_zip_faces(zip_path: Path, names: Sequence[str], size: int) -> np.ndarray:
    """Decoded faces, cached in .cache/emotion/ keyed by the zip's size and mtime and the member list."""
    if not zip_path.is_file():
        raise InputError(zip_path, "file not found")
    stat = zip_path.stat()
    key = hashlib.sha1(f"{zip_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{size}|{'|'.join(names)}".encode()).hexdigest()[:16]
    cache_file = CACHE_DIR / "emotion" / f"faces-{key}.npy"
    if cache_file.is_file():
        return np.load(cache_file)
    images = _read_zip_faces(zip_path, names, size)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".partial.npy")
    np.save(tmp, images)
    tmp.replace(cache_file)
    return images


# ----------------------------------------------------------------------------------------- FER2013 csv
def load_fer2013_csv(path: str | Path, usage: Sequence[str] | None = None, size: int = 48) -> FaceSet:
    """Kaggle's `fer2013.csv` (columns emotion, pixels, Usage; 48x48 gray as 2,304 space-separated values).

    `usage` keeps only rows whose Usage is listed (Training, PublicTest, PrivateTest); names are `row<N>`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    images, labels, names = [], [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(path, f"missing columns {sorted(missing)} (expected emotion,pixels,Usage)")
        for index, row in enumerate(reader):
            line = index + 2
            if usage is not None and row.get("Usage") not in usage:
                continue
            try:
                code = int(row["emotion"])
                pixels = np.array(row["pixels"].split(), dtype=np.float32)
            except ValueError as error:
                raise InputError(path, f"line {line}: {error}") from error
            if not 0 <= code < len(FER2013_CODES):
                raise InputError(path, f"line {line}: emotion code {code} outside 0..6")
            side = int(round(np.sqrt(pixels.size)))
            if side * side != pixels.size or side == 0:
                raise InputError(path, f"line {line}: {pixels.size} pixels is not a square image")
            images.append(to_gray_square(pixels.reshape(side, side).clip(0, 255).astype(np.uint8), size))
            labels.append(CLASS_INDEX[FER2013_CODES[code]])
            names.append(f"row{index}")
    if not names:
        raise InputError(path, "no rows" + (f" with Usage in {list(usage)}" if usage else ""))
    return FaceSet(np.stack(images), np.array(labels, dtype=int), names)


# ----------------------------------------------------------------------------------------- Skillbox layout
def natural_key(name: str) -> tuple:
    """Sort key that puts 2.jpg before 10.jpg."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name))


def list_skillbox_train(root: str | Path) -> list[tuple[Path, int]]:
    """(image path, class index) for every image in `root/train/<emotion>/` (or `root/<emotion>/`).

    Unknown folder names are an error (a typo would silently drop a class); non-image files are skipped."""
    root = Path(root)
    train = root / "train" if (root / "train").is_dir() else root
    if not train.is_dir():
        raise InputError(root, "not a folder")
    folders = sorted(p for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in folders if p.name not in CLASS_INDEX]
    if unknown:
        raise InputError(train, f"unknown class folders {unknown}; expected some of {list(CLASSES)}")
    items = [(path, CLASS_INDEX[folder.name]) for folder in folders
             for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
             if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS]
    if not items:
        raise InputError(train, "no images in the class folders")
    return items


def list_test_images(folder: str | Path, sample_submission: str | Path | None = None) -> tuple[list[str], list[str]]:
    """The test image names in submission order, and the skipped non-image files.

    With a sample submission, its rows fix the names and order (a listed file that is missing still gets
    a row). Without one: every image file in the folder, in natural order (0.jpg, 1.jpg, 2.jpg, ..., 10.jpg)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    files = sorted((p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")), key=natural_key)
    skipped = [name for name in files if Path(name).suffix.lower() not in IMAGE_EXTENSIONS]
    if sample_submission is not None:
        names = read_submission(sample_submission, check_labels=False)["image_path"]
    else:
        names = [name for name in files if name not in skipped]
    if not names:
        raise InputError(folder, "no test images")
    return names, skipped


def read_submission(path: str | Path, check_labels: bool = True) -> dict[str, list[str]]:
    """Read and validate a submission (header `image_path,emotion`, one row per image, no duplicates)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if tuple(header or ()) != SUBMISSION_HEADER:
            raise InputError(path, f"header is {header}, expected {list(SUBMISSION_HEADER)}")
        rows = [row for row in reader if row]
    bad = [i + 2 for i, row in enumerate(rows) if len(row) != 2]
    if bad:
        raise InputError(path, f"lines {bad[:5]} do not have 2 columns")
    names = [r[0] for r in rows]
    if len(set(names)) != len(names):
        raise InputError(path, "duplicate image_path rows")
    if check_labels:
        wrong = sorted({r[1] for r in rows} - set(CLASSES))
        if wrong:
            raise InputError(path, f"unknown emotions {wrong}")
    return {"image_path": names, "emotion": [r[1] for r in rows]}


def load_images(paths: Sequence[str | Path], size: int, face_cropper: Callable[[np.ndarray], tuple[np.ndarray, bool]] | None = None,
                min_side: int = 8, on_error: Callable[[InputError], None] | None = None) -> tuple[np.ndarray, list[str]]:
    """Decode images (any mode, via core.io.read_image), crop the face when a cropper is given, make them
    gray squares. Returns the stack and a flag per image: "" (ok), "no_face", or "unreadable: <reason>"
    (then the face is all zeros so that every input keeps its row)."""
    out = np.zeros((len(paths), size, size), dtype=np.uint8)
    flags = []
    for i, path in enumerate(paths):
        try:
            rgb = read_image(path, min_side=min_side)
        except InputError as error:
            flags.append(f"unreadable: {error.reason}")
            if on_error is not None:
                on_error(error)
            continue
        flag = ""
        if face_cropper is not None:
            rgb, found = face_cropper(rgb)
            flag = "" if found else "no_face"
        out[i] = to_gray_square(rgb, size)
        flags.append(flag)
    return out, flags


def load_skillbox_train(root: str | Path, size: int = 64, face_cropper=None) -> FaceSet:
    items = list_skillbox_train(root)
    images, flags = load_images([p for p, _ in items], size, face_cropper)
    keep = [i for i, f in enumerate(flags) if not f.startswith("unreadable")]
    names = [str(p.relative_to(Path(root))) if p.is_relative_to(Path(root)) else str(p) for p, _ in items]
    faces = FaceSet(images, np.array([label for _, label in items], dtype=int), names, flags=flags)
    return faces.subset(keep)


# ----------------------------------------------------------------------------------------- clean
def perceptual_hash(gray: np.ndarray, hash_size: int = 8) -> int:
    """64-bit DCT perceptual hash (pHash): low-frequency DCT coefficients of a 32x32 image vs their median.

    Robust to rescaling, re-encoding and mild brightness changes, so it finds near duplicates as well as exact ones."""
    import cv2

    small = cv2.resize(gray.astype(np.float32), (hash_size * 4, hash_size * 4), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:hash_size, :hash_size].ravel()
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


def hamming_matrix(hashes_a: np.ndarray, hashes_b: np.ndarray) -> np.ndarray:
    """Pairwise bit differences between two arrays of 64-bit hashes."""
    xor = np.ascontiguousarray(hashes_a[:, None] ^ hashes_b[None, :], dtype=np.uint64)
    return _POPCOUNT[xor.view(np.uint8)].reshape(*xor.shape, 8).sum(axis=-1, dtype=np.int32)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass
class CleanReport:
    keep: np.ndarray                 # indices of the images kept
    groups: list[list[int]]          # duplicate groups (2+ images each)
    conflicts: list[list[int]]       # groups whose labels disagree

    def rows(self, names: Sequence[str], labels: np.ndarray) -> list[dict]:
        kept = set(self.keep.tolist())
        conflict_ids = {id(g) for g in self.conflicts}
        return [{"group": g, "image": names[i], "label": CLASSES[labels[i]] if labels[i] >= 0 else "",
                 "conflict": id(group) in conflict_ids, "kept": i in kept}
                for g, group in enumerate(self.groups) for i in group]


def find_duplicates(faces: FaceSet, max_distance: int = 4, chunk: int = 256) -> CleanReport:
    """Group images whose perceptual hashes differ in at most `max_distance` bits (0 = exact copies only).

    In a group with one label the first image is kept; in a group with conflicting labels the image with
    the majority label is kept when there is a unique majority, otherwise the whole group is dropped."""
    n = len(faces)
    hashes = np.array([perceptual_hash(img) for img in faces.images], dtype=np.uint64)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for start in range(0, n, chunk):
        block = hamming_matrix(hashes[start:start + chunk], hashes)
        for a, b in zip(*np.nonzero(block <= max_distance)):
            i, j = start + int(a), int(b)
            if i < j:
                parent[find(j)] = find(i)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(i)
    groups = [g for g in members.values() if len(g) > 1]
    drop: set[int] = set()
    conflicts = []
    for group in groups:
        labels = faces.labels[group]
        if len(set(labels.tolist())) == 1:
            drop.update(group[1:])
            continue
        conflicts.append(group)
        winner = majority_label(np.bincount(labels[labels >= 0], minlength=len(CLASSES)))
        keeper = next((i for i in group if faces.labels[i] == winner), None) if winner >= 0 else None
        drop.update(i for i in group if i != keeper)
    keep = np.array([i for i in range(n) if i not in drop], dtype=int)
    return CleanReport(keep, groups, conflicts)


def near_copies(faces: FaceSet, others: Sequence[FaceSet], max_distance: int = 4, chunk: int = 512) -> np.ndarray:
    """Mask of `faces` with a perceptual-hash duplicate (<= `max_distance` bits) in any of `others`.

    FER2013 repeats some faces across its splits; training drops its copies of valid/test faces with this,
    and the bench scores test accuracy without the test faces that have a copy in what the model saw."""
    hashes = np.array([perceptual_hash(img) for img in faces.images], dtype=np.uint64)
    other = np.array([perceptual_hash(img) for group in others for img in group.images], dtype=np.uint64)
    mask = np.zeros(len(faces), dtype=bool)
    if len(other) == 0:
        return mask
    for start in range(0, len(faces), chunk):
        mask[start:start + chunk] = (hamming_matrix(hashes[start:start + chunk], other) <= max_distance).any(axis=1)
    return mask


# ----------------------------------------------------------------------------------------- torch dataset


def faces_to_array(gray: np.ndarray) -> np.ndarray:
    """(N, S, S) or (S, S) uint8 gray -> float32 (N, 3, S, S) with ImageNet normalisation (numpy, so the
    ONNX recognizer runs without importing PyTorch)."""
    x = np.asarray(gray, dtype=np.float32) / 255.0
    if x.ndim == 2:
        x = x[None]
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x[:, None] - mean) / std, dtype=np.float32)


def faces_to_tensor(gray: np.ndarray):
    """`faces_to_array` as a torch tensor."""
    import torch

    return torch.from_numpy(faces_to_array(gray))


def train_augmentation(strength: str = "medium"):
    """Albumentations pipeline for gray uint8 faces; `none` returns None; `robust` is emotion.augment's."""
    if strength == "none":
        return None
    if strength == "robust":
        from emotion.augment import robust_augmentation

        return robust_augmentation()
    import albumentations as A

    scale = {"light": 0.08, "medium": 0.12, "strong": 0.18}[strength]
    steps = [
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(1 - scale, 1 + scale), translate_percent=(-scale / 2, scale / 2), rotate=(-15, 15),
                 border_mode=0, p=0.8),
        A.RandomBrightnessContrast(0.25, 0.25, p=0.7),
    ]
    if strength != "light":
        steps.append(A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.25), hole_width_range=(0.1, 0.25), p=0.3))
    return A.Compose(steps)


class FaceDataset:
    """Torch dataset over a FaceSet already resized to the model input: (normalised tensor, target).

    Targets are soft distributions (float, 9) so one loss covers hard labels, votes and mixes of them."""

    def __init__(self, faces: FaceSet, augment=None, soft_weight: float = 1.0):
        self.images = faces.images
        hard = one_hot(np.where(faces.labels >= 0, faces.labels, 0))
        if faces.soft is not None:
            # Mix of crowd votes and the majority label; rows without a majority use the votes alone.
            mixed = soft_weight * faces.soft + (1 - soft_weight) * hard
            self.targets = np.where((faces.labels >= 0)[:, None], mixed, faces.soft).astype(np.float32)
        else:
            self.targets = hard
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        import torch

        image = self.images[index]
        if self.augment is not None:
            image = self.augment(image=image)["image"]
        return faces_to_tensor(image)[0], torch.from_numpy(self.targets[index])


def balanced_sample_weights(labels: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Per-sample weights proportional to count(class)^-power (0 = none, 0.5 = sqrt, 1 = fully balanced)."""
    labels = np.where(labels >= 0, labels, 0)
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(float)
    weights = counts[labels] ** -power
    return weights / weights.sum()


__all__ = [
    "CLASSES", "CLASS_INDEX", "FaceSet", "FaceDataset", "load_ferplus", "load_fer2013_csv", "list_skillbox_train",
    "load_skillbox_train", "list_test_images", "read_submission", "load_images", "find_duplicates", "CleanReport",
    "perceptual_hash", "faces_to_array", "faces_to_tensor", "train_augmentation", "balanced_sample_weights",
]
