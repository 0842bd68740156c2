"""Every script explains every option, and the committed benchmark results have the keys the issue names."""
from __future__ import annotations

import importlib
import json

import pytest

from core.env import REPO_ROOT

SCRIPTS = ["train", "predict", "webcam_demo", "bench", "clean"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_option_has_help(name):
    parser = importlib.import_module(f"emotion.{name}").build_parser()
    core_flags = ("help", "log_every_n_steps")  # defined in core.training
    undocumented = [a.dest for a in parser._actions if a.dest not in core_flags and not a.help]
    assert not undocumented, f"emotion.{name}: options without help: {undocumented}"
    assert parser.description


def test_results_schema():
    path = REPO_ROOT / "results" / "emotion.json"
    if not path.is_file():
        pytest.skip("results/emotion.json not written yet (run `make bench`)")
    results = json.loads(path.read_text())
    for model in ("mobilenet_v2", "compact_cnn"):
        row = results[model]
        assert 0.0 <= row["macro_f1"] <= 1.0 and row["ms_per_face"] > 0
        assert row["test_accuracy"] > 0.549, f"{model} is below the frozen-features reference"
    assert set(results["va_ccc"]) == {"valence", "arousal"} and results["va_ccc"]["valence"] > 0.3
    assert results["webcam_fps"] > 0
