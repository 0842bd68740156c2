"""Fixtures shared by the emotion tests."""
from __future__ import annotations

import csv

import numpy as np
import pytest


@pytest.fixture()
def fer2013_csv(tmp_path):
    """write(rows) -> tmp_path/fer2013.csv with one random 48x48 face per (emotion code, Usage) row."""
    def write(rows):
        rng = np.random.default_rng(1)
        path = tmp_path / "fer2013.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["emotion", "pixels", "Usage"])
            for code, usage in rows:
                writer.writerow([code, " ".join(str(v) for v in rng.integers(0, 256, 48 * 48)), usage])
        return path
    return write
