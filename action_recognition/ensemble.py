"""Ensemble of trained frame-based models: a weighted average of their probabilities, weights chosen on dev.

    python -m action_recognition.ensemble runs/action_recognition/tsn_ft runs/action_recognition/frame \\
        runs/action_recognition/gru -o runs/action_recognition/ensemble

The weights come from greedy ensemble selection with replacement (Caruana et al., "Ensemble Selection
from Libraries of Models", ICML 2004): `--rounds` times, add the model that gives the best accuracy
on the dev clips (then the lowest mean log-loss, as fusion.py breaks ties); a model's weight is the
share of rounds that chose it (one model may take them all). Dev clips are held out of the train split
by train.py (by default from videos no training clip shares); the evaluation clips are scored once with
the chosen weights. With `--final-runs` (the same recipes retrained on the whole train split,
`--dev-fraction 0`) the weights found on the dev runs are applied to those final models instead:

    python -m action_recognition.ensemble runs/.../tsn_ft runs/.../gru --final-runs runs/.../tsn_ft_all runs/.../gru_all -o ...

The output folder looks like a run: ensemble.json (members and weights), metrics.json, confusion.png
and the per-clip probabilities_{dev,evaluation}.json, so fusion.py takes it as a frame run and
predict.py as `--ensemble`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
import numpy as np  # noqa: E402

from action_recognition.fusion import ENSEMBLE_FILE, aligned, read_probabilities  # noqa: E402
from core.cli import OutputFolder, run_main  # noqa: E402
from core.io import InputError, write_json  # noqa: E402
from core.metrics import classification_report, log_loss  # noqa: E402
from core.training import write_run_records  # noqa: E402


def selection_weights(probabilities: Sequence[np.ndarray], truth: np.ndarray, rounds: int = 20) -> np.ndarray:
    """Greedy selection with replacement: each round adds the model that gives the running average the
    best accuracy, then the lowest log-loss (then the earlier model); weights = times chosen / rounds.
    Accuracy first because it is what the ensemble is for: log-loss alone favours the best-calibrated
    model, which need not be the most accurate one."""
    counts = np.zeros(len(probabilities))
    total = np.zeros_like(probabilities[0])
    for step in range(1, rounds + 1):
        scores = []
        for p in probabilities:
            average = (total + p) / step
            scores.append((-float((average.argmax(axis=1) == truth).mean()), log_loss(average, truth)))
        best = min(range(len(probabilities)), key=lambda i: scores[i])
        counts[best] += 1
        total += probabilities[best]
    return counts / rounds


def combine(probabilities: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    return sum(w * p for w, p in zip(weights, probabilities))


def aligned_members(run_dirs: Sequence[Path], name: str) -> tuple[list[np.ndarray], dict]:
    """Every run's probabilities for split `name`, rows in the first run's clip order, and that first document."""
    first = read_probabilities(run_dirs[0], name)
    return [first["probabilities"], *(aligned(first, read_probabilities(run, name), run)[1] for run in run_dirs[1:])], first


def ensemble_runs(run_dirs: Sequence[Path], output: Path, rounds: int = 20,
                  final_runs: Sequence[Path] | None = None) -> dict:
    """Choose the weights on the dev clips of `run_dirs`, score the members (`final_runs`, when given,
    in the same order) on evaluation, write the ensemble folder; returns its summary."""
    if len(run_dirs) < 2:
        raise ValueError("an ensemble needs at least two runs")
    run_dirs = [Path(r) for r in run_dirs]
    final_runs = [Path(r) for r in final_runs] if final_runs is not None else run_dirs
    if len(final_runs) != len(run_dirs):
        raise ValueError(f"{len(final_runs)} final runs for {len(run_dirs)} dev runs: give one per dev run, in order")
    dev, dev_document = aligned_members(run_dirs, "dev")
    labels = dev_document["labels"]
    dev_truth = dev_document["targets"]
    weights = selection_weights(dev, dev_truth, rounds)
    evaluation, document = aligned_members(final_runs, "evaluation")
    if document["labels"] != labels:
        raise InputError(final_runs[0], f"classes differ from the dev runs': {document['labels']} vs {labels}")
    combined = combine(evaluation, weights)
    report = classification_report(document["truth"], [labels[i] for i in combined.argmax(axis=1)], labels)
    members = [{"run": str(run), "checkpoint": str(run / "best.ckpt"), "weight": float(w)}
               for run, w in zip(final_runs, weights)]
    dev_combined = combine(dev, weights)
    summary = {"members": members, "rounds": rounds, "labels": labels,
               "dev_accuracy": float((dev_combined.argmax(axis=1) == dev_truth).mean()),
               "dev_log_loss": log_loss(dev_combined, dev_truth),
               "dev_log_loss_by_member": [log_loss(p, dev_truth) for p in dev],
               "evaluation": report.as_dict()}
    output.mkdir(parents=True, exist_ok=True)
    for name, doc, probabilities in (("dev", dev_document, dev_combined), ("evaluation", document, combined)):
        write_json(output / f"probabilities_{name}.json",
                   {"labels": labels, "sources": doc["sources"], "truth": doc["truth"], "probabilities": np.round(probabilities, 6)})
    write_run_records(output, {"runs": [str(r) for r in run_dirs], "final_runs": [str(r) for r in final_runs],
                               "rounds": rounds}, summary, report)
    write_json(output / ENSEMBLE_FILE, {"members": members, "labels": labels})
    return {**summary, "report": report, "output": output}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of frame, tsn or gru models (two or more)")
    parser.add_argument("-o", "--output", type=OutputFolder(), required=True, help="folder for the ensemble's records")
    parser.add_argument("--rounds", type=int, default=20, help="selection rounds: weights are multiples of 1/ROUNDS")
    parser.add_argument("--final-runs", nargs="+", type=Path,
                        help="the same models retrained on all train clips, one per run and in order: they get the "
                             "weights and are scored (default: the runs themselves)")
    args = parser.parse_args(argv)
    result = ensemble_runs(args.runs, args.output, args.rounds, args.final_runs)
    weights = ", ".join(f"{Path(m['run']).name} {m['weight']:.2f}" for m in result["members"])
    print(f"weights (chosen on dev): {weights}; accuracy {result['report'].accuracy:.4f}, "
          f"macro-F1 {result['report'].macro_f1:.4f} on {result['report'].n_samples} clips; wrote {args.output}")
    return result


if __name__ == "__main__":
    run_main(main)
