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


def live_table(results: dict) -> str:
    """The root README's table of results/live.json: the live demo's frame rates (webcam_demo --bench) and
    each task's one-input start-up (core.startup)."""
    rows = []
    fps, targets = results.get("fps", {}), results.get("targets", {})
    for name, value in fps.items():
        target = targets.get("all") if name == "all" else targets.get("each")
        light = results.get("light_fraction", {}).get(name)
        rows.append((f"live demo, {'all tasks' if name == 'all' else name + ' alone'}", "frames / s", f"{value:.1f}",
                     f"≥ {target:g}" if target else "", f"{light:.0%} light frames" if light is not None else ""))
    startup = results.get("startup", {})
    for task, seconds in results.get("startup_seconds", {}).items():
        rows.append((f"one-input predict of {task}, fresh process", "seconds", f"{seconds:.2f}",
                     f"≤ {startup.get('target_seconds', 5.0):g}", "released weights, imports and loading included"))
    notes = []
    if fps:
        notes.append(f"`{results.get('command', 'python -m webcam_demo --bench')}` ({results.get('date', '')}): "
                     f"{results.get('frames')} frames of {len(results.get('videos', []))} shared videos at "
                     f"{results.get('frame_size')}, {results.get('threads')} threads")
    if startup:
        notes.append(f"`{startup.get('command')}` ({startup.get('measured')}, median of {startup.get('repeats')}, "
                     f"load average {startup.get('load_average', 0):.2f})")
    return markdown_table(["benchmark", "metric", "value", "target", "note"], rows) + "\n\n" + "; ".join(notes) + "."


def publish_live_table() -> None:
    """results/live.json as the root README's `results:live` block (called by both commands that write it)."""
    replace_marked_block(REPO_ROOT / "README.md", "results:live", live_table(read_results("live")))
