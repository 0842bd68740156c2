import numpy as np
import pytest

from core.metrics import classification_report, equal_error_rate, plot_confusion


def test_classification_report_values():
    report = classification_report(["a", "a", "b", "b"], ["a", "b", "b", "b"], labels=["a", "b", "c"])
    assert report.accuracy == pytest.approx(0.75)
    assert report.per_class_recall == {"a": 0.5, "b": 1.0}
    assert report.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    # F1(a) = 2/3, F1(b) = 0.8; the absent class c does not dilute the macro average
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)


def test_prediction_outside_labels_counts_as_error():
    report = classification_report(["a", "b"], ["a", "no_gesture"], labels=["a", "b"])
    assert report.accuracy == 0.5 and report.per_class_recall["b"] == 0.0


def test_classification_report_rejects_mismatch():
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        classification_report(["a", "b"], ["a"])


def test_confusion_plot_has_labels():
    figure = plot_confusion(np.array([[3, 1], [0, 4]]), ["x", "y"])
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["x", "y"]
    assert "0.875" in axes.get_title()


def test_eer_separable_and_gaussian():
    assert equal_error_rate([0.9, 0.8], [0.1, 0.2])[0] == 0.0
    rng = np.random.default_rng(0)
    eer, threshold = equal_error_rate(rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000))
    assert eer == pytest.approx(0.1587, abs=0.01)  # Phi(-1) for unit-variance classes 2 apart
    assert abs(threshold) < 0.05
    with pytest.raises(ValueError):
        equal_error_rate([], [0.1])
