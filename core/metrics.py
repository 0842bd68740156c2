"""Classification and verification metrics, and their plots."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class ClassificationReport:
    labels: list[str]
    accuracy: float
    macro_f1: float
    per_class_recall: dict[str, float]
    confusion: np.ndarray = field(repr=False)
    n_samples: int = 0

    def as_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class_recall": self.per_class_recall,
            "confusion": self.confusion.tolist(),
            "labels": self.labels,
            "n_samples": self.n_samples,
        }


def classification_report(y_true: Sequence, y_pred: Sequence, labels: Sequence[str] | None = None) -> ClassificationReport:
    """Accuracy, macro-F1, per-class recall and confusion matrix (rows = truth, columns = prediction).

    `labels` fixes the class order and includes classes that never occur; predictions outside it
    (such as `no_gesture` for a classifier without that class) count as errors."""
    from sklearn.metrics import confusion_matrix, f1_score, recall_score

    y_true = [str(v) for v in y_true]
    y_pred = [str(v) for v in y_pred]
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not y_true:
        raise ValueError("no samples to score")
    labels = [str(v) for v in labels] if labels is not None else sorted(set(y_true) | set(y_pred))
    present = [label for label in labels if label in set(y_true)]
    recall = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return ClassificationReport(
        labels=list(labels),
        accuracy=float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        macro_f1=float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        per_class_recall={label: float(r) for label, r in zip(present, recall)},
        confusion=confusion_matrix(y_true, y_pred, labels=labels),
        n_samples=len(y_true),
    )


def log_loss(probabilities: np.ndarray, truth: Sequence[int]) -> float:
    """Mean negative log-probability of the true class (N, C probabilities, N class indices), clipped at 1e-9."""
    truth = np.asarray(truth, dtype=int)
    return float(-np.log(np.asarray(probabilities)[np.arange(len(truth)), truth].clip(1e-9)).mean())


def plot_confusion(confusion: np.ndarray, labels: Sequence[str], title: str = "", normalize: bool = True):
    """A confusion-matrix figure: colour by row-normalised recall, counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion)
    rows = confusion.sum(axis=1, keepdims=True)
    shown = np.divide(confusion, rows, out=np.zeros_like(confusion, dtype=float), where=rows > 0) if normalize else confusion
    size = max(4.0, 0.55 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if confusion[i, j]:
                axes.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                          color="white" if shown[i, j] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, label="fraction of true class" if normalize else "count")
    axes.set_title(title or f"accuracy {np.trace(confusion) / max(confusion.sum(), 1):.3f}")
    return figure


def equal_error_rate(target_scores: Sequence[float], nontarget_scores: Sequence[float]) -> tuple[float, float]:
    """EER and its threshold for verification scores (higher = more likely the same identity).

    The EER is where the false-accept rate equals the false-reject rate, linearly interpolated on the ROC."""
    from sklearn.metrics import roc_curve

    target_scores = np.asarray(target_scores, dtype=float)
    nontarget_scores = np.asarray(nontarget_scores, dtype=float)
    if target_scores.size == 0 or nontarget_scores.size == 0:
        raise ValueError("EER needs at least one target and one non-target trial")
    labels = np.r_[np.ones_like(target_scores), np.zeros_like(nontarget_scores)]
    false_accept, true_accept, thresholds = roc_curve(labels, np.r_[target_scores, nontarget_scores])
    gap = (1 - true_accept) - false_accept  # false-reject minus false-accept: falls from 1 to -1
    k = int(np.argmax(gap <= 0))  # first ROC point at or past the crossing (k >= 1 since gap[0] = 1)
    t = gap[k - 1] / (gap[k - 1] - gap[k])
    eer = false_accept[k - 1] + t * (false_accept[k] - false_accept[k - 1])
    upper = thresholds[k - 1] if np.isfinite(thresholds[k - 1]) else thresholds[k]
    return float(eer), float(upper + t * (thresholds[k] - upper))
