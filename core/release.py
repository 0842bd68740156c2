"""`make weights`: train each task's default model with its recipe, copy what inference loads into
weights/<task>/, and record it in weights/MANIFEST.json.

    python -m core.release                      # every release; a run that already exists is reused, and a
                                                # released file that matches the manifest is kept (no runs/ needed)
    python -m core.release --only emotion       # one task
    python -m core.release --retrain            # train again even where the run exists
    python -m core.release --check              # verify the files against the manifest (sizes, sha256)

A Lightning checkpoint is released without its optimizer and scheduler states (inference does not need
them; they triple the size). The manifest entry names the exact train command, the data, the headline
metric of the released model (read from results/<task>.json or the run's metrics.json), the date and the
library versions. pose_smoothing releases nothing: MediaPipe's pose model ships inside the mediapipe wheel.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401

from core.cli import run_main  # noqa: E402
from core.env import REPO_ROOT, SHARED_DATA  # noqa: E402
from core.io import atomic_path, write_json  # noqa: E402
from core.results import read_results  # noqa: E402
from core.weights import MANIFEST, WEIGHTS_DIR, manifest, sha256, weights_path  # noqa: E402
from emotion.bench import DEFAULT_MODEL as EMOTION_DEFAULT, RECIPES as EMOTION_RECIPES  # noqa: E402  (the bench chooses)

MAX_TASK_BYTES, MAX_TOTAL_BYTES = 15 * 2**20, 60 * 2**20
LIBRARIES = ("torch", "torchvision", "lightning", "scikit-learn", "mediapipe", "onnxruntime", "numpy")


@dataclass(frozen=True)
class Release:
    task: str
    name: str                    # the key in core.weights.FILES
    module: str                  # trained with `python -m <module> <arguments> --run-name <run>`
    arguments: tuple[str, ...]
    run: str                     # runs/<task>/<run>/
    artefact: str                # the file in the run folder that inference loads
    data: str                    # what it was trained on (under ../shared/data)
    headline: tuple[str, str, str]  # (label, "results" or "run", dotted key in results/<task>.json or metrics.json)
    # (name in core.weights.FILES, "module:function"): files made from the released one by function(released, target),
    # e.g. the ONNX export inference loads without PyTorch or Lightning (a one-image predict then starts in seconds)
    exports: tuple[tuple[str, str], ...] = ()

    @property
    def run_dir(self) -> Path:
        return REPO_ROOT / "runs" / self.task / self.run

    @property
    def command(self) -> str:
        return " ".join(["python -m", self.module, *self.arguments, "--run-name", self.run])


RELEASES = (
    Release("speaker_id", "checkpoint", "speaker_id.train", ("--max-epochs", "12", "--no-progress-bar"), "release-fsdd",
            "best.ckpt", "speaker_id/recordings (FSDD, 6 speakers)", ("FSDD test accuracy", "run", "test.accuracy"),
            (("cnn", "speaker_id.inference:export_checkpoint"),)),
    Release("gesture_detection", "landmark_linto", "gesture_detection.train",
            ("--classifier", "landmark", "--dataset", "linto"), "release-lm_linto", "landmark.joblib",
            "gesture_detection/linto (LinTO HandGesture, 10 gestures)",
            ("LinTO test accuracy", "results", "linto.landmark.accuracy")),
    Release("gesture_detection", "landmark_hands_dataset", "gesture_detection.train",
            ("--classifier", "landmark", "--dataset", "hands_dataset"), "release-lm_hands_dataset", "landmark.joblib",
            "gesture_detection/hands_dataset (finger counts 0-5)",
            ("HandsDataset test accuracy", "results", "hands_dataset.landmark.accuracy")),
    Release("emotion", "checkpoint", "emotion.train",
            (*EMOTION_RECIPES[EMOTION_DEFAULT][1], "--no-progress-bar", "--accelerator", "cpu"),
            EMOTION_RECIPES[EMOTION_DEFAULT][0], "best.ckpt", "emotion/ferplus (FER+ training faces)",
            ("FER+ test accuracy", "results", f"{EMOTION_DEFAULT}.test_accuracy"),
            (("recognizer", "emotion.recognizer:export_checkpoint"),)),
    Release("video_gestures", "checkpoint", "video_gestures.train",
            ("--threads", "1", "--max-epochs", "60", "--batch-size", "64", "--no-progress-bar"), "release-points",
            "best.ckpt", "video_gestures/mediapipe_point_history (fingertip trajectories, 4 classes, and generated "
                         "non-gesture paths as `none`)",
            ("point-history test accuracy", "run", "test.accuracy"),
            (("points", "video_gestures.model:export_checkpoint"),)),
    Release("action_recognition", "checkpoint", "action_recognition.train",
            ("--max-epochs", "12", "--batch-size", "128", "--no-progress-bar", "--image-size", "112", "--flip-augment",
             "--tta-flip", "--model", "frame", "--hidden", "0", "--dev-fraction", "0", "--select", "last"),
            "full-frame-all", "best.ckpt",
            "action_recognition/ucf101_10class_3frame_clips.zip (UCF101, 10 classes, all 7,770 train clips)",
            ("UCF101 val accuracy", "run", "evaluation.accuracy"),
            (("frame", "action_recognition.released:export_checkpoint"),)),
)


def train(release: Release) -> None:
    print(f"training {release.task}/{release.name}: {release.command}", flush=True)
    command = [sys.executable, "-m", release.module, *release.arguments, "--run-name", release.run]
    subprocess.run(command, cwd=REPO_ROOT, check=True)


def copy_for_inference(source: Path, target: Path) -> None:
    """Copy a released file; a Lightning checkpoint loses the states only training needs."""
    with atomic_path(target) as tmp:
        if source.suffix == ".ckpt":
            import torch

            checkpoint = torch.load(source, map_location="cpu", weights_only=False)
            for key in ("optimizer_states", "lr_schedulers", "callbacks", "loops"):
                checkpoint.pop(key, None)
            torch.save(checkpoint, tmp)
        else:
            tmp.write_bytes(source.read_bytes())


def export(release: Release, source: Path) -> list[tuple[str, Path]]:
    """Write each of `release.exports` from the released file `source`; (name, path) of each."""
    from importlib import import_module

    made = []
    for name, function in release.exports:
        module, attribute = function.split(":")
        target = weights_path(release.task, name)
        getattr(import_module(module), attribute)(source, target)
        made.append((name, target))
    return made


def dotted(tree: dict, key: str):
    for part in key.split("."):
        tree = tree[part]
    return tree


def headline(release: Release) -> dict:
    label, source, key = release.headline
    tree = read_results(release.task) if source == "results" else json.loads((release.run_dir / "metrics.json").read_text())
    try:
        value = dotted(tree, key)
    except (KeyError, TypeError):
        value = None
    return {"name": label, "value": value, "from": f"results/{release.task}.json:{key}" if source == "results"
            else f"{release.run_dir.relative_to(REPO_ROOT)}/metrics.json:{key}"}


def versions() -> dict:
    found = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def entry(release: Release, path: Path) -> dict:
    return {"file": str(path.relative_to(WEIGHTS_DIR)), "bytes": path.stat().st_size, "sha256": sha256(path),
            "train_command": release.command, "data": f"../shared/data/{release.data}", "headline_metric": headline(release), "date": time.strftime("%Y-%m-%d"),
            "libraries": versions()}


def check(entries: dict) -> list[str]:
    """Problems with the released files: missing, size or hash differing from the manifest, over the limits."""
    problems, per_task = [], {}
    for key, item in entries.items():
        path = WEIGHTS_DIR / item["file"]
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        if path.stat().st_size != item["bytes"] or sha256(path) != item["sha256"]:
            problems.append(f"{path}: differs from weights/MANIFEST.json (size or sha256)")
        task = key.split("/")[0]
        per_task[task] = per_task.get(task, 0) + item["bytes"]
    problems += [f"weights/{task}: {size} bytes, over the {MAX_TASK_BYTES} bytes a task may ship"
                 for task, size in per_task.items() if size > MAX_TASK_BYTES]
    if sum(per_task.values()) > MAX_TOTAL_BYTES:
        problems.append(f"weights/: {sum(per_task.values())} bytes, over the {MAX_TOTAL_BYTES} bytes in all")
    return problems


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=None, help="tasks (or task/name) to release")
    parser.add_argument("--retrain", action="store_true", help="train again even where the run already exists")
    parser.add_argument("--check", action="store_true", help="only verify the released files against the manifest")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    entries = manifest().get("weights", {})
    if not args.check:
        if not SHARED_DATA.is_dir():
            raise ValueError(f"{SHARED_DATA}: the shared datasets are needed to train the released models")
        chosen = [r for r in RELEASES if args.only is None or r.task in args.only or f"{r.task}/{r.name}" in args.only]
        if not chosen:
            raise ValueError(f"--only {' '.join(args.only)}: no such release; choose from "
                             + ", ".join(f"{r.task}/{r.name}" for r in RELEASES))
        for release in chosen:
            target = weights_path(release.task, release.name)
            key = f"{release.task}/{release.name}"
            run_file = release.run_dir / release.artefact
            if not args.retrain and not run_file.is_file() and not check({key: entries.get(key, {"file": ""})}):
                # a fresh clone has no runs/, but the committed release is that run's file: export from it
                print(f"keeping {target.relative_to(REPO_ROOT)} (matches weights/MANIFEST.json; --retrain trains again)")
            else:
                if args.retrain or not run_file.is_file():
                    train(release)
                else:
                    print(f"reusing {release.run_dir.relative_to(REPO_ROOT)} ({release.command})")
                copy_for_inference(run_file, target)
                entries[key] = entry(release, target)
            print(f"released {target.relative_to(REPO_ROOT)}: {target.stat().st_size / 2**20:.2f} MB")
            for name, path in export(release, target):   # an export describes itself by the file it was made from
                entries[f"{release.task}/{name}"] = {**entries[key], "file": str(path.relative_to(WEIGHTS_DIR)),
                                                     "bytes": path.stat().st_size, "sha256": sha256(path),
                                                     "exported_from": entries[key]["file"], "libraries": versions()}
                print(f"released {path.relative_to(REPO_ROOT)}: {path.stat().st_size / 2**20:.2f} MB")
        write_json(MANIFEST, {"note": "written by `make weights` (python -m core.release); trained on ../shared/data, "
                                      "research use only (see weights/README.md)", "weights": dict(sorted(entries.items()))})
    problems = check(entries)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(entries) - len(problems)} of {len(entries)} released files match weights/MANIFEST.json")
    return 1 if problems else 0


if __name__ == "__main__":
    run_main(main)
