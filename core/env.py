"""Offline defaults and repository-local caches, set before any library reads them."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / ".cache"
# Real datasets are read in place from ../shared/data (see data/README.md); SHARED_DATA_DIR overrides it.
SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))

_OFFLINE_FLAGS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "YOLO_OFFLINE": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "GLOG_minloglevel": "2",
    # OpenCV's FFmpeg backend prints FFmpeg's own errors ("moov atom not found" for a truncated mp4) beside the
    # readers' one line naming the file and why; AV_LOG_QUIET
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}

_CACHE_DIRS = {
    "TORCH_HOME": "torch",
    "HF_HOME": "huggingface",
    "YOLO_CONFIG_DIR": "ultralytics",
    "MPLCONFIGDIR": "matplotlib",
}


def configure_offline_environment() -> None:
    """Set offline flags and cache folders unless the user already chose them."""
    for name, value in _OFFLINE_FLAGS.items():
        os.environ.setdefault(name, value)
    for name, sub in _CACHE_DIRS.items():
        path = Path(os.environ.setdefault(name, str(CACHE_DIR / sub)))
        path.mkdir(parents=True, exist_ok=True)


def install_ultralytics_font() -> None:
    """ultralytics downloads Arial.ttf for its plots unless one is there; give it matplotlib's font.

    Call before importing ultralytics."""
    import matplotlib

    target = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics" / "Arial.ttf"
    if target.exists():
        return
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(font, target)
