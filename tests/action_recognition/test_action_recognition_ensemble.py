"""The dev split held out of unseen videos (tail), greedy ensemble selection on dev, and the ensemble folder
that fusion.py and predict.py read."""
from __future__ import annotations

import json

import numpy as np
import pytest

from action_recognition.data import Clip, LoadedClips
from action_recognition.ensemble import ensemble_runs, selection_weights
from action_recognition.fusion import frame_members
from action_recognition.train import split_dev, tail_of_each_class
from core.io import InputError, write_json
from core.metrics import log_loss

LABELS = ["a", "b", "c"]


def _clips(counts: dict[str, int]) -> LoadedClips:
    clips = [Clip(f"{label}/{k:03d}", label, "train") for label, n in counts.items() for k in range(n)]
    return LoadedClips(clips, [np.zeros((1, 2, 2, 3), np.uint8)] * len(clips))


def test_tail_dev_is_the_end_of_each_class_and_leaves_training_clips():
    loaded = _clips({"a": 20, "b": 10, "c": 1})
    dev_index = tail_of_each_class(loaded, 0.2)
    assert [loaded.clips[i].source for i in dev_index] == ["a/016", "a/017", "a/018", "a/019", "b/008", "b/009"]
    train, dev = split_dev(loaded, 0.2, seed=0, how="tail")
    assert len(train) == 25 and len(dev) == 6 and "c/000" in {c.source for c in train.clips}
    assert tail_of_each_class(_clips({"a": 3}), 1.0) == [1, 2]              # one clip always stays for training
    hashed_train, hashed_dev = split_dev(loaded, 0.2, seed=0, how="hash")
    assert len(hashed_train) + len(hashed_dev) == 31
    with pytest.raises(ValueError, match="unknown dev split"):
        split_dev(loaded, 0.2, seed=0, how="random")


def _probabilities(truth: np.ndarray, right: np.ndarray, confidence: float | np.ndarray = 0.7) -> np.ndarray:
    """Rows that put `confidence` on the truth where `right`, else on the next class."""
    confidence = np.broadcast_to(confidence, truth.shape)
    out = np.repeat(((1 - confidence) / 2)[:, None], 3, axis=1)
    guess = np.where(right, truth, (truth + 1) % 3)
    out[np.arange(len(truth)), guess] = confidence
    return out


def test_selection_prefers_the_better_model_and_mixes_complementary_ones():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 400)
    good = _probabilities(truth, rng.random(400) < 0.9)
    noise = rng.dirichlet(np.ones(3), 400)
    weights = selection_weights([noise, good], truth)
    assert weights.sum() == pytest.approx(1.0) and weights[1] >= 0.9
    first_half = np.arange(400) < 200                        # each model right on its own half only
    left, right = _probabilities(truth, first_half | (rng.random(400) < 0.5)), _probabilities(truth, ~first_half | (rng.random(400) < 0.5))
    weights = selection_weights([left, right], truth)
    assert 0.2 <= weights[0] <= 0.8
    # accuracy first: a model right 90% of the time but sure when wrong beats a timid one right 80% of the
    # time, although the timid one has the lower log-loss
    bold = _probabilities(truth, np.arange(400) % 10 != 0, confidence=0.99999)
    timid = _probabilities(truth, np.arange(400) % 5 != 0, confidence=0.5)
    assert log_loss(timid, truth) < log_loss(bold, truth)
    assert list(selection_weights([timid, bold], truth, rounds=1)) == [0.0, 1.0]
    assert selection_weights([timid, bold], truth)[1] >= 0.5     # later rounds may add timid: same accuracy, lower loss


def _run(folder, sources: dict[str, list[str]], truth: dict[str, np.ndarray], sure: dict[str, np.ndarray], seed: int):
    """A run folder whose model is right with 0.9 where `sure`, elsewhere right half of the time with 0.6."""
    rng = np.random.default_rng(seed)
    for name in ("dev", "evaluation"):
        right = sure[name] | (rng.random(len(truth[name])) < 0.5)
        write_json(folder / f"probabilities_{name}.json",
                   {"labels": LABELS, "sources": sources[name], "truth": [LABELS[t] for t in truth[name]],
                    "probabilities": _probabilities(truth[name], right, np.where(sure[name], 0.9, 0.6))})
    return folder


def test_ensemble_folder_beats_its_members_and_feeds_fusion(tmp_path):
    rng = np.random.default_rng(1)
    truth = {name: rng.integers(0, 3, 300) for name in ("dev", "evaluation")}
    sources = {name: [f"{name}/{i}" for i in range(300)] for name in truth}
    halves = {name: np.arange(300) < 150 for name in truth}
    # model A is sure on the first half, B on the second (B's files list the same clips in another order)
    a = _run(tmp_path / "a", sources, truth, halves, seed=2)
    b = _run(tmp_path / "b", {n: s[::-1] for n, s in sources.items()}, {n: t[::-1] for n, t in truth.items()},
             {n: ~halves[n][::-1] for n in truth}, seed=3)
    result = ensemble_runs([a, b], tmp_path / "ens")
    assert len(json.loads((tmp_path / "ens" / "metrics.json").read_text())["dev_log_loss_by_member"]) == 2
    assert sum(m["weight"] for m in result["members"]) == pytest.approx(1.0)
    assert 0.3 <= result["members"][0]["weight"] <= 0.7
    assert result["report"].accuracy > 0.95                  # each member alone: about 0.75
    for name in ("ensemble.json", "probabilities_dev.json", "probabilities_evaluation.json", "metrics.json", "confusion.png"):
        assert (tmp_path / "ens" / name).is_file()
    assert [m["checkpoint"] for m in frame_members(tmp_path / "ens")] == [str(a / "best.ckpt"), str(b / "best.ckpt")]
    assert frame_members(a) == [{"checkpoint": str(a / "best.ckpt"), "weight": 1.0}]

    # weights found with the dev runs go to the final runs, in order: here the same two runs swapped
    swapped = ensemble_runs([a, b], tmp_path / "final", final_runs=[b, a])
    assert [m["checkpoint"] for m in swapped["members"]] == [str(b / "best.ckpt"), str(a / "best.ckpt")]
    assert [m["weight"] for m in swapped["members"]] == [m["weight"] for m in result["members"]]
    with pytest.raises(ValueError, match="one per dev run"):
        ensemble_runs([a, b], tmp_path / "bad", final_runs=[a])

    c = _run(tmp_path / "c", {n: s[:-1] for n, s in sources.items()}, {n: t[:-1] for n, t in truth.items()},
             {n: np.ones(299, bool) for n in truth}, seed=4)
    with pytest.raises(InputError, match="have no probabilities"):
        ensemble_runs([a, c], tmp_path / "bad")
    with pytest.raises(ValueError, match="at least two"):
        ensemble_runs([a], tmp_path / "bad")
