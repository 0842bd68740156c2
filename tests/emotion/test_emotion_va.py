"""Valence-arousal mapping, nearest-centre decoding and the CCC metric."""
from __future__ import annotations

import numpy as np
import pytest

from emotion.data import CLASS_INDEX, CLASSES, one_hot
from emotion.va import (CENTRES, VA_CENTRES, concordance_correlation, decode_nearest_centre, va_ccc,
                        va_from_distribution, va_to_probabilities)


def test_every_class_has_a_distinct_centre_in_the_unit_disc():
    assert list(VA_CENTRES) == list(CLASSES)
    assert np.all(np.linalg.norm(CENTRES, axis=1) <= 1.0 + 1e-3)
    distances = np.linalg.norm(CENTRES[:, None] - CENTRES[None], axis=-1) + np.eye(len(CLASSES))
    assert distances.min() > 0.2


def test_circumplex_quadrants():
    valence, arousal = CENTRES[:, 0], CENTRES[:, 1]
    assert valence[CLASS_INDEX["happy"]] > 0.9 and arousal[CLASS_INDEX["happy"]] > 0
    assert valence[CLASS_INDEX["sad"]] < 0 and arousal[CLASS_INDEX["sad"]] < 0
    assert arousal[CLASS_INDEX["anger"]] > 0.9 and valence[CLASS_INDEX["anger"]] < 0
    assert arousal[CLASS_INDEX["surprise"]] > 0.9 and valence[CLASS_INDEX["surprise"]] > 0
    assert tuple(CENTRES[CLASS_INDEX["neutral"]]) == (0.0, 0.0)


def test_decoding_centres_and_perturbed_points():
    assert decode_nearest_centre(CENTRES).tolist() == list(range(len(CLASSES)))
    rng = np.random.default_rng(0)
    noisy = CENTRES + rng.normal(0, 0.03, CENTRES.shape)
    assert decode_nearest_centre(noisy).tolist() == list(range(len(CLASSES)))
    probabilities = va_to_probabilities(CENTRES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert probabilities.argmax(axis=1).tolist() == list(range(len(CLASSES)))


def test_va_from_votes_is_the_weighted_mean():
    np.testing.assert_allclose(va_from_distribution(one_hot(np.arange(len(CLASSES)))), CENTRES)
    votes = np.zeros((1, len(CLASSES)), np.float32)
    votes[0, CLASS_INDEX["happy"]], votes[0, CLASS_INDEX["surprise"]] = 0.6, 0.4
    expected = 0.6 * CENTRES[CLASS_INDEX["happy"]] + 0.4 * CENTRES[CLASS_INDEX["surprise"]]
    np.testing.assert_allclose(va_from_distribution(votes)[0], expected, rtol=1e-5)


def test_ccc():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=200)
    truth -= truth.mean()
    assert concordance_correlation(truth, truth) == pytest.approx(1.0)
    assert concordance_correlation(-truth, truth) == pytest.approx(-1.0)
    # A biased but perfectly correlated prediction is penalised (unlike Pearson's r).
    assert concordance_correlation(truth + 1.0, truth) < 0.7
    assert abs(concordance_correlation(rng.normal(size=200), truth)) < 0.2
    scores = va_ccc(np.c_[truth, truth * 0], np.c_[truth, truth])
    assert scores["valence"] == pytest.approx(1.0) and scores["arousal"] == 0.0
    with pytest.raises(ValueError):
        concordance_correlation([1.0], [1.0])
