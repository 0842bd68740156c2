"""Shared fixtures. Network access is blocked for the whole suite (pytest-socket, see pyproject.toml),
so a hidden download fails a test here instead of hanging for a user."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import core  # noqa: F401  (sets the offline environment before any library is imported)
from core.env import SHARED_DATA


def write_faststart_mp4(path: Path, frames: int, fps: int = 10) -> Path:
    """A real H.264 mp4 with its index (moov) first, so that cutting the file's end keeps the header
    (the container still states every frame while only the first part decodes)."""
    import imageio_ffmpeg
    import numpy as np

    writer = imageio_ffmpeg.write_frames(str(path), (64, 48), fps=fps, output_params=["-movflags", "+faststart"])
    writer.send(None)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.send(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))  # noise: every frame takes real bytes
    writer.close()
    return path


def shared_data_path(*parts: str) -> Path:
    """A path under ../shared/data; skips the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set SHARED_DATA_DIR or put shared/ beside the repo)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    """The benchmarks and targets assume 2 CPU threads; keep tests comparable on bigger machines."""
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
