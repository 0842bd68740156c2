"""`unknown`: the threshold comes from the training split alone (classes left out in turn), and predict answers
`unknown` below it, keeping the best known class beside it."""
from __future__ import annotations

import numpy as np
import pytest

from action_recognition.data import Clip, LoadedClips
from action_recognition.predict import prediction_rows
from action_recognition.timeline import UNKNOWN
from action_recognition.unknown import SCORES, calibrate, choose_threshold, rotations, tail_dev_mask


def clustered_features(seed: int = 0, train: int = 20, val: int = 6, dims: int = 16) -> dict:
    """10 classes of 3-frame clips around their own centres, train then val clips per class."""
    rng = np.random.default_rng(seed)
    labels = [f"class{c}" for c in range(10)]
    centres = rng.normal(0, 3, (10, dims))
    label, split, plain = [], [], []
    for c, name in enumerate(labels):
        for s, count in (("train", train), ("val", val)):
            for _ in range(count):
                label.append(name), split.append(s)
                plain.append(centres[c] + rng.normal(0, 1, (3, dims)))
    plain = np.array(plain, dtype=np.float32)
    return {"labels": labels, "label": np.array(label), "split": np.array(split), "plain": plain,
            "flipped": plain + rng.normal(0, 0.1, plain.shape).astype(np.float32)}


def test_the_threshold_never_sees_val():
    data = clustered_features()
    first = calibrate(data)
    poisoned = dict(data, plain=data["plain"].copy(), flipped=data["flipped"].copy())
    val = data["split"] == "val"
    poisoned["plain"][val] = np.nan                 # any use of a val clip would turn the scores into NaN
    poisoned["flipped"][val] = np.nan
    second = calibrate(poisoned)
    for name in SCORES:
        assert np.isfinite(second["scores"][name]["threshold"])
        assert second["scores"][name] == pytest.approx(first["scores"][name])
    # each rotation leaves out 2 of the 10 classes, and every class is left out once
    assert sorted(sum((r["left_out"] for r in first["rotations"]), [])) == data["labels"]
    assert all(r["calibration_unknown"] == 2 * 20 for r in first["rotations"])


def test_leave_out_pairs_and_the_tail_dev_clips():
    assert rotations(list("abcdefghij")) == [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"), ("i", "j")]
    dev = tail_dev_mask(np.array(["a"] * 20 + ["b"] * 10))
    assert dev.tolist() == [False] * 17 + [True] * 3 + [False] * 8 + [True] * 2


def test_the_threshold_costs_at_most_the_allowed_share_of_right_answers():
    scores = np.linspace(0.3, 1.0, 100)
    correct = np.ones(100, dtype=bool)
    threshold = choose_threshold(scores, correct, max_known_loss=0.03)
    assert ((scores < threshold) & correct).mean() <= 0.03
    assert ((scores < np.nextafter(threshold, 2)) & correct).mean() > 0.03 - 1e-9


def test_below_the_threshold_the_answer_is_unknown_with_the_best_known_class_beside_it():
    labels = ["Diving", "Rowing"]
    loaded = LoadedClips([Clip("sure.mp4", ""), Clip("unsure.mp4", "")], [np.zeros((3, 8, 8, 3), np.uint8)] * 2)
    probabilities = np.array([[0.9, 0.1], [0.45, 0.55]])
    rows = prediction_rows(labels, loaded, probabilities, top_k=2, threshold=0.6)
    assert [(r["label"], r["best_known"], r["probability"]) for r in rows] == [("Diving", "Diving", 0.9),
                                                                             (UNKNOWN, "Rowing", 0.55)]
    assert "best_known" not in prediction_rows(labels, loaded, probabilities)[0]


def test_predict_answers_unknown_below_the_threshold_and_zero_turns_it_off(tmp_path):
    from action_recognition.synthetic import write_video
    from tests.action_recognition.test_action_recognition_stream import moving_bars, predict_cli, read_rows

    video = write_video(tmp_path / "bars.webm", moving_bars(20, (128, 96)), fps=10)
    result = predict_cli(str(video), "-o", str(tmp_path / "strict.csv"), "--unknown-threshold", "1")
    assert result.returncode == 0, result.stderr
    row = read_rows(tmp_path / "strict.csv")[0]
    assert row["label"] == UNKNOWN and row["best_known"] and 0 < float(row["probability"]) < 1
    result = predict_cli(str(video), "-o", str(tmp_path / "off.csv"), "--unknown-threshold", "0")
    assert result.returncode == 0, result.stderr
    row = read_rows(tmp_path / "off.csv")[0]
    assert row["label"] != UNKNOWN and "best_known" not in row


def test_distance_scores_rank_clips_far_from_every_class_below_those_near_one():
    from action_recognition.unknown import combined_scores, fit_frame_head

    data = clustered_features(dims=16)
    train = data["split"] == "train"
    known = np.isin(data["label"], data["labels"][:8])
    index = {name: i for i, name in enumerate(data["labels"][:8])}
    fit = train & known
    head = fit_frame_head(data["plain"][fit], data["flipped"][fit], np.array([index[n] for n in data["label"][fit]]), 8,
                          epochs=3)
    near, far = head.scores(data["plain"][~train & known]), head.scores(data["plain"][~train & ~known])
    for name in ("mahalanobis", "knn_cosine", "centre_cosine"):
        assert near[name].min() > far[name].max(), name    # the clusters are well apart: no overlap at all
    standardisation = {name: (float(near[name].mean()), float(near[name].std())) for name in near}
    combined = combined_scores(near, standardisation)
    expected = ((near["max_probability"] - near["max_probability"].mean()) / near["max_probability"].std()
                + (near["mahalanobis"] - near["mahalanobis"].mean()) / near["mahalanobis"].std())
    np.testing.assert_allclose(combined["max_probability+mahalanobis"], expected, rtol=1e-6)
    assert set(combined) == set(SCORES)
