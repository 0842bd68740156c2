"""Late fusion of a frame-based model and the keypoint model: a weighted average of their probabilities.

    python -m action_recognition.fusion --frame-run runs/action_recognition/tsn --keypoint-run runs/action_recognition/keypoint

    p = w * p_frame + (1 - w) * p_keypoint     for clips where a person was found in some frame
    p = p_frame                                for clips with nobody (the keypoint model has nothing to say)

The weight w is chosen on the dev clips (held out of the train split by train.py), never on the
evaluation clips; ties go to the larger w (trust the stronger frame model). The two runs' saved
per-clip probabilities (probabilities_{dev,evaluation}.json) are matched by clip source. The frame run
may be an ensemble folder from action_recognition.ensemble; fusion.json then lists all its members.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
import numpy as np  # noqa: E402

from core.cli import OutputFile, run_main  # noqa: E402
from core.io import InputError, write_json  # noqa: E402
from core.metrics import ClassificationReport, classification_report, log_loss  # noqa: E402

WEIGHT_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)
ENSEMBLE_FILE = "ensemble.json"   # written by ensemble.py into its output folder


def fuse(frame_probabilities: np.ndarray, keypoint_probabilities: np.ndarray, weight: float,
         has_person: np.ndarray | None = None) -> np.ndarray:
    """w * frame + (1 - w) * keypoint; rows without a person keep the frame model's probabilities."""
    fused = weight * frame_probabilities + (1.0 - weight) * keypoint_probabilities
    if has_person is not None:
        fused = np.where(np.asarray(has_person, dtype=bool)[:, None], fused, frame_probabilities)
    return fused


def tune_weight(frame_probabilities: np.ndarray, keypoint_probabilities: np.ndarray, truth: np.ndarray,
                has_person: np.ndarray | None = None, grid: np.ndarray = WEIGHT_GRID) -> tuple[float, dict]:
    """The grid weight with the best accuracy (then the lowest log-loss, then the largest w) on these clips."""
    scores = {}
    for weight in grid:
        fused = fuse(frame_probabilities, keypoint_probabilities, float(weight), has_person)
        accuracy = float((fused.argmax(axis=1) == truth).mean())
        scores[float(weight)] = (accuracy, -log_loss(fused, truth), float(weight))
    best = max(scores, key=lambda w: scores[w])
    return best, {w: s[0] for w, s in scores.items()}


def frame_members(run_dir: Path) -> list[dict]:
    """The checkpoints (and weights) behind a frame run: an ensemble folder's members, or the run's best.ckpt."""
    ensemble = Path(run_dir) / ENSEMBLE_FILE
    if ensemble.is_file():
        return json.loads(ensemble.read_text())["members"]
    return [{"checkpoint": str(Path(run_dir) / "best.ckpt"), "weight": 1.0}]


def read_probabilities(run_dir: Path, name: str) -> dict:
    path = Path(run_dir) / f"probabilities_{name}.json"
    if not path.is_file():
        raise InputError(path, "not found: train the model with action_recognition.train first")
    document = json.loads(path.read_text())
    document["probabilities"] = np.asarray(document["probabilities"], dtype=np.float64)
    document["targets"] = np.array([document["labels"].index(t) for t in document["truth"]], dtype=int)
    return document


def aligned(first: dict, other: dict, path: Path, complete: bool = True) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Two runs' probabilities (documents from `read_probabilities`; `other` read from `path`) on the same
    clips, in the first run's order, with those clips' truth and sources. `complete`: every clip of the
    first run must be there (evaluation; ensemble members); otherwise the common clips are used (dev,
    when the keypoint model was trained on a subset)."""
    if first["labels"] != other["labels"]:
        raise InputError(path, f"the two models have different classes: {first['labels']} vs {other['labels']}")
    position = {s: i for i, s in enumerate(other["sources"])}
    missing = [s for s in first["sources"] if s not in position]
    if missing and (complete or len(missing) == len(first["sources"])):
        raise InputError(path, f"{len(missing)} clip(s) of the other run have no probabilities here, e.g. {missing[0]} "
                               "(train both on the same data and dev split)")
    rows = [i for i, s in enumerate(first["sources"]) if s in position]
    order = [position[first["sources"][i]] for i in rows]
    return (first["probabilities"][rows], other["probabilities"][order], [first["truth"][i] for i in rows],
            [first["sources"][i] for i in rows])


def fuse_runs(frame_run: Path, keypoint_run: Path, has_person: dict[str, bool] | None = None) -> dict:
    """Tune w on the dev clips of the two runs, score the fused model on their evaluation clips."""
    result: dict = {}
    for name in ("dev", "evaluation"):
        frame, keypoint = read_probabilities(frame_run, name), read_probabilities(keypoint_run, name)
        p_frame, p_keypoint, truth, sources = aligned(frame, keypoint, Path(keypoint_run), complete=name == "evaluation")
        labels = frame["labels"]
        person = np.array([has_person.get(s, True) for s in sources]) if has_person is not None else None
        target = np.array([labels.index(t) for t in truth])
        if name == "dev":
            result["weight"], result["dev_accuracy_by_weight"] = tune_weight(p_frame, p_keypoint, target, person)
            continue
        fused = fuse(p_frame, p_keypoint, result["weight"], person)
        report: ClassificationReport = classification_report(truth, [labels[i] for i in fused.argmax(axis=1)], labels)
        result.update(report=report, probabilities=fused, truth=truth, sources=sources, labels=labels)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frame-run", type=Path, required=True,
                        help="run folder of a frame, tsn or gru model, or an ensemble folder from action_recognition.ensemble")
    parser.add_argument("--keypoint-run", type=Path, required=True, help="run folder of a keypoint model")
    parser.add_argument("-o", "--output", type=OutputFile(), help="fusion JSON to write (default: KEYPOINT_RUN/fusion.json)")
    args = parser.parse_args(argv)
    result = fuse_runs(args.frame_run, args.keypoint_run)
    report = result["report"]
    output = args.output or args.keypoint_run / "fusion.json"
    write_json(output, {"frame_members": frame_members(args.frame_run),
                        "keypoint_checkpoint": str(args.keypoint_run / "best.ckpt"), "frame_weight": result["weight"],
                        "dev_accuracy_by_weight": result["dev_accuracy_by_weight"], "evaluation": report.as_dict()})
    print(f"frame weight {result['weight']:.2f} (chosen on dev); fused accuracy {report.accuracy:.4f}, "
          f"macro-F1 {report.macro_f1:.4f} on {report.n_samples} clips; wrote {output}")
    return result


if __name__ == "__main__":
    run_main(main)
