"""Benchmark results: `results/<task>.json` and the Markdown tables rendered from it into READMEs."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

from core.env import REPO_ROOT
from core.io import atomic_open, write_json

RESULTS_DIR = REPO_ROOT / "results"


def write_results(task: str, results: dict) -> Path:
    return write_json(RESULTS_DIR / f"{task}.json", results)


def read_results(task: str) -> dict:
    path = RESULTS_DIR / f"{task}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results yet; run `make bench`")
    return json.loads(path.read_text())


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_marked_block(readme: Path, name: str, content: str) -> bool:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->`; False if the markers are absent."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    pattern = re.compile(rf"(<!-- {re.escape(name)}:start -->\n).*?(<!-- {re.escape(name)}:end -->)", re.S)
    if not pattern.search(text):
        return False
    with atomic_open(readme) as handle:
        handle.write(pattern.sub(lambda m: m.group(1) + content.rstrip() + "\n" + m.group(2), text))
    return True


def publish_table(task: str, table: str) -> None:
    """Put a task's results table into its own README and into the top-level README."""
    for readme in (REPO_ROOT / task / "README.md", REPO_ROOT / "README.md"):
        replace_marked_block(readme, f"results:{task}", table)


# Printed at the end of every demo: the demos train on generated data for a minute, so their accuracies
# say that each stage runs, not how good the task's model is.
SMOKE_TEST_NOTE = ("note: a smoke test on generated data; its figures show that every stage runs, not how well the "
                   "real model does (see the results table in {readme})")
