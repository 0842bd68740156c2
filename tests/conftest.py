"""Shared fixtures. Network access is blocked for the whole suite (pytest-socket, see pyproject.toml),
so a hidden download fails a test here instead of hanging for a user."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import core  # noqa: F401  (sets the offline environment before any library is imported)
from core.env import SHARED_DATA


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
