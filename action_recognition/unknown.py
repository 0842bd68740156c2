"""`unknown`: an open-set score and its threshold, chosen on the training split by leaving classes out.

The classes are split into 5 pairs. In each rotation a frame model (the released recipe: a linear head on each
frame's frozen ImageNet MobileNetV2 features at 112 px, mirrored clips added, label smoothing 0.1, AdamW with a
cosine schedule, 12 epochs, clip = mean of the frames' probabilities) is trained on the other 8 classes' train
clips without their dev clips (the last 15% of each class, from other videos, as `train.py` holds them out).
Its scores on those dev clips (known) and on the left-out pair's train clips (unknown) are the calibration
set, pooled over the 5 rotations; the threshold is chosen there and val is never read. Scores compared:
- `max_probability`: the best class's probability (what `predict` has from any model, the released ONNX too),
- `energy`: log-sum-exp of the clip's mean logits (Liu et al. 2020),
- `centre_cosine`: cosine similarity of the clip's mean feature to the nearest class centre,
- `mahalanobis`: minus the smallest Mahalanobis distance of the clip's mean feature to a class mean, with one
  covariance shared by the classes (Ledoit-Wolf shrinkage; Lee et al. 2018),
- `knn_cosine`: cosine similarity to the KNN_K-th nearest training clip (mean features; Sun et al. 2022),
- `feature_norm`: the length of the clip's mean feature,
- `a+b`: the sum of two scores, each standardised by its mean and spread on the known calibration clips.
`predict` uses `max_probability`, the one score the released ONNX file can give (it outputs probabilities only);
the others are measured beside it, and `best_score` names the one that, at its calibrated threshold, gives the
fewest unknown calibration clips a known label (`choose_score`: chosen on train, never on val).
`choose_threshold` takes the highest threshold at which at most `max_known_loss` of the known calibration
clips that the model answers correctly turn `unknown` (the accuracy the user loses), so known classes keep
their accuracy within that bound and as many unknown clips as that allows are caught.

The bench (`unknown_benchmark`) scores each rotation on val: a model trained on all train clips of the 8
classes, val clips of the 8 (known) against the 2 left out, AUROC per rotation and, at the chosen
threshold, the share of left-out clips still given a known label and the known-class accuracy lost.
`python -m action_recognition.unknown` writes the threshold to action_recognition/unknown.json, which
`predict` reads (so does the bench's unknown section, from the same calibration).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
import numpy as np  # noqa: E402

from core.cli import OutputFile, run_main  # noqa: E402
from core.io import write_json  # noqa: E402

THRESHOLD_FILE = Path(__file__).resolve().with_name("unknown.json")
BASE_SCORES = ("max_probability", "energy", "centre_cosine", "mahalanobis", "knn_cosine", "feature_norm")
COMBINED_SCORES = ("max_probability+mahalanobis", "max_probability+knn_cosine", "energy+mahalanobis",
                   "energy+knn_cosine")
SCORES = (*BASE_SCORES, *COMBINED_SCORES)
KNN_K = 10
DEV_FRACTION = 0.15


@dataclass
class FrameHead:
    """A per-frame linear head over frozen features (the released frame model's recipe), in numpy after fitting."""
    weight: np.ndarray      # (C, D)
    bias: np.ndarray        # (C,)
    centres: np.ndarray     # (C, D) unit-length mean clip feature per class
    means: np.ndarray       # (C, D) mean clip feature per class
    precision: np.ndarray   # (D, D) inverse of the covariance shared by the classes (shrunk)
    bank: np.ndarray        # (M, D) unit-length clip features of the training clips (kNN)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, T, C) from features (N, T, D)."""
        return features @ self.weight.T + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = self.logits(features)
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return (exp / exp.sum(axis=-1, keepdims=True)).mean(axis=1)

    def scores(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Open-set scores of clips (N, T, D): higher = more like a known class."""
        logits = self.logits(features).mean(axis=1)
        top = logits.max(axis=1, keepdims=True)
        raw = features.mean(axis=1)
        norm = np.linalg.norm(raw, axis=1)
        mean = raw / norm[:, None].clip(1e-12)
        projected = raw @ self.precision
        distances = ((projected * raw).sum(axis=1)[:, None] - 2 * projected @ self.means.T
                     + ((self.means @ self.precision) * self.means).sum(axis=1)[None])
        similarities = mean @ self.bank.T
        k = min(KNN_K, similarities.shape[1])
        return {"max_probability": self.probabilities(features).max(axis=1),
                "energy": (top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))),
                "centre_cosine": (mean @ self.centres.T).max(axis=1),
                "mahalanobis": -distances.min(axis=1),
                "knn_cosine": -np.partition(-similarities, k - 1, axis=1)[:, k - 1],
                "feature_norm": norm}


def combined_scores(scores: dict[str, np.ndarray], standardisation: dict[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """`scores` with the COMBINED_SCORES added: a + b, each standardised by (mean, spread) in `standardisation`."""
    def z(name: str) -> np.ndarray:
        centre, spread = standardisation[name]
        return (scores[name] - centre) / spread

    return {**scores, **{name: sum(z(part) for part in name.split("+")) for name in COMBINED_SCORES}}


def fit_frame_head(features: np.ndarray, flipped: np.ndarray, targets: np.ndarray, classes: int, epochs: int = 12,
                   seed: int = 0) -> FrameHead:
    """The frame model's recipe on (N, T, D) features and their mirrored clips' features: every frame carries its
    clip's label; dropout 0.5, label smoothing 0.1, AdamW (1e-3, weight decay 0.01), cosine schedule, batch 128."""
    import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(np.concatenate([features, flipped]).reshape(-1, features.shape[-1])).float()
    y = torch.from_numpy(np.repeat(np.concatenate([targets, targets]), features.shape[1])).long()
    head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(x.shape[1], classes))
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    steps = epochs * int(np.ceil(len(x) / 128))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(128):
            optimizer.zero_grad()
            loss(head(x[batch]), y[batch]).backward()
            optimizer.step()
            schedule.step()
    from sklearn.covariance import LedoitWolf

    linear = head[1]
    raw = features.mean(axis=1).astype(np.float64)
    mean = raw / np.linalg.norm(raw, axis=1, keepdims=True).clip(1e-12)
    centres = np.stack([mean[targets == c].mean(axis=0) for c in range(classes)])
    centres = centres / np.linalg.norm(centres, axis=1, keepdims=True).clip(1e-12)
    means = np.stack([raw[targets == c].mean(axis=0) for c in range(classes)])
    precision = LedoitWolf(assume_centered=True).fit(raw - means[targets]).precision_
    return FrameHead(linear.weight.detach().numpy().copy(), linear.bias.detach().numpy().copy(), centres, means,
                     precision, mean)


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """P(score of a known clip > score of an unknown one), ties counting half."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(known)), np.zeros(len(unknown))], np.r_[known, unknown]))


def choose_threshold(known_scores: np.ndarray, known_correct: np.ndarray, max_known_loss: float = 0.03) -> float:
    """The highest threshold at which at most `max_known_loss` of the known clips (as a share of all of them)
    lose a right answer to `unknown`."""
    right = np.sort(known_scores[known_correct])
    allowed = int(np.floor(max_known_loss * len(known_scores)))   # right answers that may fall below
    return float(right[min(allowed, len(right) - 1)])


def rotations(labels: list[str]) -> list[tuple[str, str]]:
    """The 5 pairs of left-out classes: neighbours in label order."""
    return [(labels[i], labels[i + 1]) for i in range(0, len(labels) - 1, 2)]


def tail_dev_mask(labels: np.ndarray) -> np.ndarray:
    """The last DEV_FRACTION of each class's clips in source order (other videos than the rest, as train.py's
    `--dev-split tail`)."""
    dev = np.zeros(len(labels), dtype=bool)
    for name in np.unique(labels):
        own = np.flatnonzero(labels == name)
        dev[own[len(own) - int(round(DEV_FRACTION * len(own))):]] = True
    return dev


def load_features(data: Path | None = None) -> dict:
    """The UCF101 mini set's frozen MobileNetV2 features at 112 px (plain and mirrored), through the feature
    cache (.cache/action_recognition/features; computed there the first time, about 10 minutes on 1 thread)."""
    from action_recognition import train
    from action_recognition.data import read_ucf_zip
    from action_recognition.features import cached_clip_features

    loaded = read_ucf_zip(data or train.DEFAULT_DATA)
    sources = [c.source for c in loaded.clips]
    plain = cached_clip_features(sources, loaded.frames, "mobilenet_v2", 112, flip=False)
    flipped = cached_clip_features(sources, loaded.frames, "mobilenet_v2", 112, flip=True)
    return {"labels": sorted(loaded.labels), "label": np.array([c.label for c in loaded.clips]),
            "split": np.array([c.split for c in loaded.clips]), "plain": plain, "flipped": flipped}


def calibrate(data: dict, max_known_loss: float = 0.03) -> dict:
    """Leave-classes-out on the train split only: each score's AUROC on the pooled calibration clips, and the
    threshold of each score (`choose_threshold`)."""
    train = data["split"] == "train"
    dev = np.zeros(len(train), dtype=bool)
    dev[train] = tail_dev_mask(data["label"][train])
    correct, scored = [], []
    for pair in rotations(data["labels"]):
        known_labels = [name for name in data["labels"] if name not in pair]
        index = {name: i for i, name in enumerate(known_labels)}
        is_known = np.isin(data["label"], known_labels)
        fit = train & ~dev & is_known
        head = fit_frame_head(data["plain"][fit], data["flipped"][fit],
                              np.array([index[n] for n in data["label"][fit]]), len(known_labels))
        known, unknown = train & dev & is_known, train & ~is_known
        known_scores, unknown_scores = head.scores(data["plain"][known]), head.scores(data["plain"][unknown])
        right = head.probabilities(data["plain"][known]).argmax(axis=1) == np.array([index[n] for n in data["label"][known]])
        correct.append(right)
        scored.append((pair, known_scores, unknown_scores))
    correct = np.concatenate(correct)
    # the combined scores' parts are standardised on the known calibration clips of all rotations
    standardisation = {n: (float(np.mean(np.concatenate([k[n] for _, k, _ in scored]))),
                           float(np.std(np.concatenate([k[n] for _, k, _ in scored])) or 1.0)) for n in BASE_SCORES}
    scored = [(pair, combined_scores(k, standardisation), combined_scores(u, standardisation)) for pair, k, u in scored]
    per_rotation = [{"left_out": list(pair), "calibration_known": len(k["energy"]), "calibration_unknown": len(u["energy"]),
                     "auroc": {n: auroc(k[n], u[n]) for n in SCORES}} for pair, k, u in scored]
    result = {"rotations": per_rotation, "max_known_loss": max_known_loss, "standardisation": standardisation,
              "scores": {}}
    for name in SCORES:
        known, unknown = (np.concatenate([k[name] for _, k, _ in scored]), np.concatenate([u[name] for _, _, u in scored]))
        threshold = choose_threshold(known, correct, max_known_loss)
        result["scores"][name] = {"auroc": auroc(known, unknown), "threshold": threshold,
                                  "unknown_given_known_label": float((unknown >= threshold).mean()),
                                  "known_right_lost": float(((known < threshold) & correct).mean())}
    result["best_score"] = choose_score(result["scores"])
    return result


def choose_score(scores: dict[str, dict]) -> str:
    """The score that, at its threshold, lets the fewest unknown calibration clips through (then: higher AUROC)."""
    return min(scores, key=lambda n: (scores[n]["unknown_given_known_label"], -scores[n]["auroc"]))


def write_threshold(calibration: dict, target: Path = THRESHOLD_FILE, command: str = "") -> Path:
    chosen = calibration["scores"]["max_probability"]
    return write_json(target, {"score": "max_probability", "threshold": chosen["threshold"],
                               "max_known_loss": calibration["max_known_loss"], "calibration": calibration,
                               "command": command})


def unknown_benchmark(data_path: Path | None = None, score: str = "max_probability", max_known_loss: float = 0.03,
                      command: str = "python -m action_recognition.bench --only unknown") -> dict:
    """Calibration on train (`calibrate`; its threshold written to unknown.json as `main` does), then each
    rotation on val at the chosen threshold of `score`."""
    started = time.perf_counter()
    data = load_features(data_path)
    calibration = calibrate(data, max_known_loss)
    write_threshold(calibration, THRESHOLD_FILE, command)
    train, val = data["split"] == "train", data["split"] == "val"
    rotations_on_val = []
    for pair in rotations(data["labels"]):
        known_labels = [name for name in data["labels"] if name not in pair]
        index = {name: i for i, name in enumerate(known_labels)}
        is_known = np.isin(data["label"], known_labels)
        fit = train & is_known
        head = fit_frame_head(data["plain"][fit], data["flipped"][fit],
                              np.array([index[n] for n in data["label"][fit]]), len(known_labels))
        known, unknown = val & is_known, val & ~is_known
        known_scores, unknown_scores = (combined_scores(head.scores(data["plain"][subset]), calibration["standardisation"])
                                        for subset in (known, unknown))
        truth = np.array([index[n] for n in data["label"][known]])
        right = head.probabilities(data["plain"][known]).argmax(axis=1) == truth
        entry = {"left_out": list(pair), "val_known": int(known.sum()), "val_unknown": int(unknown.sum()),
                 "known_accuracy": float(right.mean()), "auroc": {n: auroc(known_scores[n], unknown_scores[n]) for n in SCORES}}
        for name in SCORES:
            threshold = calibration["scores"][name]["threshold"]
            entry.setdefault("known_label_rate", {})[name] = float((unknown_scores[name] >= threshold).mean())
            entry.setdefault("known_accuracy_with_unknown", {})[name] = float((right & (known_scores[name] >= threshold)).mean())
        rotations_on_val.append(entry)

    released_model = released_on_val(data, calibration["scores"]["max_probability"]["threshold"])

    def mean(key, name=None):
        return float(np.mean([r[key][name] if name else r[key] for r in rotations_on_val]))

    return {"score": score, "threshold": calibration["scores"][score]["threshold"], "max_known_loss": max_known_loss,
            "auroc": mean("auroc", score), "known_label_rate": mean("known_label_rate", score),
            "known_accuracy": mean("known_accuracy"),
            "known_accuracy_with_unknown": mean("known_accuracy_with_unknown", score),
            "known_accuracy_drop": mean("known_accuracy") - mean("known_accuracy_with_unknown", score),
            "by_score": {n: {"auroc": mean("auroc", n), "known_label_rate": mean("known_label_rate", n),
                             "known_accuracy_drop": mean("known_accuracy") - mean("known_accuracy_with_unknown", n),
                             "threshold": calibration["scores"][n]["threshold"],
                             "calibration_auroc": calibration["scores"][n]["auroc"]} for n in SCORES},
            "rotations": rotations_on_val, "calibration": calibration, "released_model": released_model,
            "note": "threshold and score chosen on the train split (leave-2-classes-out, 5 rotations); val only scored",
            "seconds": time.perf_counter() - started}


def released_on_val(data: dict, threshold: float) -> dict:
    """The released model (weights/action_recognition/frame.ckpt, the head behind frame.onnx) on the val clips'
    cached features: its accuracy, and at the threshold the share of val clips (all of known classes) answered
    `unknown` and the accuracy left."""
    from action_recognition.inference import load_model, probabilities_from_inputs
    from core.weights import weights_path

    model = load_model(weights_path("action_recognition", "checkpoint"))
    val = data["split"] == "val"
    probabilities = probabilities_from_inputs(model, data["plain"][val].astype(np.float32))
    right = np.array(model.labels)[probabilities.argmax(axis=1)] == data["label"][val]
    kept = probabilities.max(axis=1) >= threshold
    return {"val_accuracy": float(right.mean()), "val_clips": int(val.sum()), "threshold": threshold,
            "val_unknown_rate": float((~kept).mean()), "val_accuracy_with_unknown": float((right & kept).mean()),
            "note": "frame.ckpt's head on cached 112 px MobileNetV2 features of the val clips, no test-time flip "
                    "(what frame.onnx computes from the frames)"}


def read_threshold(path: Path = THRESHOLD_FILE) -> float | None:
    """The calibrated max-probability threshold `predict` answers `unknown` below (None when not calibrated)."""
    if not Path(path).is_file():
        return None
    return float(json.loads(Path(path).read_text())["threshold"])


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=OutputFile(suffixes=(".json",)), default=THRESHOLD_FILE,
                        help="where the threshold goes (default: action_recognition/unknown.json, which predict reads)")
    parser.add_argument("--max-known-loss", type=float, default=0.03,
                        help="share of known calibration clips that may lose a right answer (default %(default)s)")
    args = parser.parse_args(argv)
    calibration = calibrate(load_features(), args.max_known_loss)
    chosen = calibration["scores"]["max_probability"]
    write_threshold(calibration, args.output, "python -m action_recognition.unknown" + (" " + " ".join(argv) if argv else ""))
    print(f"threshold {chosen['threshold']:.4f} (max probability; calibration AUROC {chosen['auroc']:.3f}) -> {args.output}")
    return args.output


if __name__ == "__main__":
    run_main(main)
