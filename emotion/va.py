"""Valence-arousal (VA): where each of the nine classes sits on the affect plane, VA targets from
class distributions, decoding VA back to a class (nearest class centre), and Lin's concordance
correlation coefficient (CCC), the usual VA metric (AffectNet, AFEW-VA, Aff-Wild).

Source of the class centres
---------------------------
Russell, J. A. (1980). A circumplex model of affect. Journal of Personality and Social Psychology,
39(6), 1161-1178. Russell's scaling of 28 affect words places each word at an angle on a circle whose
horizontal axis is pleasure (valence) and vertical axis is arousal; the angles used below are that
solution's positions of the words that name our classes (degrees counter-clockwise from "pleasure"):
happy 7.8, astonished 69.8 (-> surprise), angry 99.4, afraid 116.6, sad 207.5.
We put each of these on the unit circle: (valence, arousal) = (cos angle, sin angle).

Our own placements (Russell's 28 words do not include them; change them here if you have better ones):
- neutral: the origin, the point of no affect.
- disgust: 135 degrees, between Russell's "annoyed" (123.0) and "distressed" (137.6): unpleasant and
  moderately aroused, as disgust is in later circumplex studies.
- contempt: 160 degrees at radius 0.8: unpleasant with less arousal than anger or disgust.
- uncertain (FER+ "unknown": the raters could not name the emotion): close to neutral, at radius 0.25,
  slightly unpleasant and aroused (confusion).
"""
from __future__ import annotations

import math

import numpy as np

from emotion.data import CLASSES


def _polar(degrees: float, radius: float = 1.0) -> tuple[float, float]:
    angle = math.radians(degrees)
    return round(radius * math.cos(angle), 4), round(radius * math.sin(angle), 4)


# (valence, arousal) per class, in CLASSES order. See the module docstring for the source of each point.
VA_CENTRES: dict[str, tuple[float, float]] = {
    "anger": _polar(99.4),
    "contempt": _polar(160.0, 0.8),
    "disgust": _polar(135.0),
    "fear": _polar(116.6),
    "happy": _polar(7.8),
    "neutral": (0.0, 0.0),
    "sad": _polar(207.5),
    "surprise": _polar(69.8),
    "uncertain": _polar(135.0, 0.25),
}
CENTRES = np.array([VA_CENTRES[name] for name in CLASSES], dtype=np.float32)  # (9, 2)


def va_from_distribution(probabilities: np.ndarray) -> np.ndarray:
    """Expected (valence, arousal) under class distributions (N, 9) -> (N, 2).

    With FER+ votes this gives a continuous VA target per face: 6 votes happy + 4 surprise lands between them."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    return probabilities @ CENTRES


def decode_nearest_centre(va: np.ndarray) -> np.ndarray:
    """Class index of the nearest class centre for each (valence, arousal) row."""
    va = np.atleast_2d(np.asarray(va, dtype=np.float32))
    distances = ((va[:, None, :] - CENTRES[None]) ** 2).sum(axis=-1)
    return distances.argmin(axis=1)


def va_to_probabilities(va: np.ndarray, temperature: float = 0.1) -> np.ndarray:
    """Soft class scores from VA: softmax of minus the squared distance to each centre over `temperature`."""
    va = np.atleast_2d(np.asarray(va, dtype=np.float32))
    logits = -((va[:, None, :] - CENTRES[None]) ** 2).sum(axis=-1) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def concordance_correlation(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Lin's CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2); 1 = perfect agreement, 0 = none."""
    x = np.asarray(prediction, dtype=np.float64).ravel()
    y = np.asarray(truth, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"CCC needs two equal-length series of 2+ values, got {x.size} and {y.size}")
    covariance = ((x - x.mean()) * (y - y.mean())).mean()
    denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    return float(2 * covariance / denominator) if denominator > 0 else 0.0


def va_ccc(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """CCC for valence and arousal columns of (N, 2) arrays."""
    prediction, truth = np.asarray(prediction), np.asarray(truth)
    return {"valence": concordance_correlation(prediction[:, 0], truth[:, 0]),
            "arousal": concordance_correlation(prediction[:, 1], truth[:, 1])}
