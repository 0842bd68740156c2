"""Fixtures shared by the action_recognition tests."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest


def _jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".jpg", rgb[..., ::-1])[1].tobytes()


@pytest.fixture()
def ucf_zip(tmp_path):
    """write(train, val, broken=()) -> tmp_path/clips.zip with labels.csv beside it, in the UCF101 mini set's
    layout: classes Bowling and Diving, each with `train` then `val` clips of 4 random 64 px frames named
    1, 2, 3, 10 (10 sorts after 3 only in natural order). Clips are numbered from 1 in file order; those in
    `broken` have an undecodable second frame."""
    def write(train: int, val: int, broken: tuple[int, ...] = ()):
        rng = np.random.default_rng(0)
        rows = ["clip_dir,split,label_id,label_name_inferred,upstream_index"]
        path = tmp_path / "clips.zip"
        with zipfile.ZipFile(path, "w") as archive:
            n = 0
            for label_id, label in ((1, "Bowling"), (2, "Diving")):
                for split, count in (("train", train), ("val", val)):
                    for _ in range(count):
                        n += 1
                        folder = f"{split}Clips/{n:05d}"
                        rows.append(f"{folder},{split},{label_id},{label},{n}")
                        for frame in (1, 2, 3, 10):
                            image = rng.integers(0, 255, (64, 64, 3), np.uint8)
                            archive.writestr(f"{folder}/{frame}.jpg",
                                             b"not a jpeg" if n in broken and frame == 2 else _jpeg(image))
        (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
        return path
    return write
