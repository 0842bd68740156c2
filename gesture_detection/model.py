"""Gesture classifiers behind one interface: `probabilities(...) -> (N, n_classes)` over `labels`.

- `LandmarkClassifier`: logistic regression (default), a small MLP or a distance-weighted kNN
  (`NearestHands`) on `features.hand_features` (joint angles, palm-frame coordinates, finger
  extension: free of position, scale, rotation, stretch and handedness), trained on augmented
  copies of the hands and temperature-scaled on the validation hands. Trains in seconds.
- `FingerCounter`: the `fingers` mode, extended fingers counted from the geometry, no training.
- `CropClassifier` (crop_model.py, apart so that the landmark paths import neither PyTorch nor Lightning):
  a CNN on the hand crop.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from core.io import InputError, atomic_path
from core.models import JOBLIB, checked_model

from gesture_detection.data import NO_GESTURE

from gesture_detection.detect import Detection
from gesture_detection.features import (AUGMENTATIONS, augment_hands, count_distribution, finger_state_scores,
                                        hand_features, idle_hands, n_features)
from gesture_detection.landmarks import BoxStyle

# ----------------------------------------------------------------------------------------- landmarks
class NearestHands:
    """Distance-weighted k-nearest-neighbour vote on standardised landmark features, in numpy.

    scikit-learn's KNeighborsClassifier took 20 to 200 ms for one query on the shared 2-core host
    (its threaded distance kernel); the same vote here takes well under a millisecond.
    `familiarity` says how much a hand looks like the training hands: sum(w) / (sum(w) + w0) with
    w = 1 / distance to each neighbour and w0 = 1 / (`prior_scale` x the typical such distance
    between training hands), near 1 for a hand close to training hands, small for an unusual one.
    """

    def __init__(self, neighbours: int = 2, prior_scale: float = 8.0):
        self.neighbours, self.prior_scale = neighbours, prior_scale

    def fit(self, features: np.ndarray, targets: np.ndarray) -> "NearestHands":
        features = np.asarray(features, dtype=np.float32)
        self.mean = features.mean(axis=0)
        self.scale = features.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        self.points, self.targets = (features - self.mean) / self.scale, np.asarray(targets, dtype=np.int64)
        self.n_classes = int(self.targets.max()) + 1
        # typical neighbour distance between training hands, each left out of its own query
        _, weight_sums = self._votes(self.points, leave_one_out=True)
        self.typical_distance = float(np.median(min(self.neighbours, len(self.points) - 1) / weight_sums)) \
            if len(self.points) > 1 else 1.0
        return self

    def _votes(self, queries: np.ndarray, leave_one_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "_squared_norms", None) is None or len(self._squared_norms) != len(self.points):
            self._squared_norms = (self.points ** 2).sum(1)
        distances = np.sqrt(np.maximum((queries ** 2).sum(1)[:, None] - 2 * queries @ self.points.T
                                       + self._squared_norms[None], 0))
        if leave_one_out:
            np.fill_diagonal(distances, np.inf)
        k = max(min(self.neighbours, len(self.points) - int(leave_one_out)), 1)
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        weights = 1.0 / np.maximum(np.take_along_axis(distances, nearest, axis=1), 1e-6)
        votes = np.zeros((len(queries), self.n_classes), dtype=np.float64)
        np.add.at(votes, (np.repeat(np.arange(len(queries)), k), self.targets[nearest].ravel()), weights.ravel())
        return votes, weights.sum(axis=1)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.proba_and_familiarity(features)[0]

    def familiarity(self, features: np.ndarray) -> np.ndarray:
        return self.proba_and_familiarity(features)[1]

    def proba_and_familiarity(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        votes, weight_sums = self._votes(self._standardise(features))
        return votes / weight_sums[:, None], weight_sums / (weight_sums + 1.0 / (self.prior_scale * self.typical_distance))

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float32) - self.mean) / self.scale

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes)


def hand_landmarks(detections: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(N, 21, 3) pixel and world landmarks of detections; a detection without world landmarks (a
    generated hand) lends its pixel x, y, z, which the scale-free joint features read the same way."""
    pixels = np.stack([d.landmarks for d in detections]).astype(np.float64)
    world = np.stack([d.world_landmarks if d.world_landmarks is not None else d.landmarks for d in detections])
    return pixels, world.astype(np.float64)


class TemperatureScaling:
    """Calibration of a classifier's probabilities: p ∝ exp(log p / T), with the one temperature T that
    minimises the negative log-likelihood on held-out hands (Guo et al. 2017). T > 1 softens an
    over-confident model; it never changes which class is most probable."""

    FLOOR = 1e-4  # keeps log p finite for the kNN's exact zeros

    def __init__(self, temperature: float = 1.0):
        self.temperature = temperature

    def __call__(self, probabilities: np.ndarray) -> np.ndarray:
        logits = np.log(np.asarray(probabilities, dtype=np.float64) + self.FLOOR) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        scaled = np.exp(logits)
        return scaled / scaled.sum(axis=1, keepdims=True)

    def fit(self, probabilities: np.ndarray, targets: np.ndarray) -> "TemperatureScaling":
        from scipy.optimize import minimize_scalar

        targets = np.asarray(targets, dtype=np.int64)

        def negative_log_likelihood(log_temperature: float) -> float:
            self.temperature = float(np.exp(log_temperature))
            return -float(np.log(self(probabilities)[np.arange(len(targets)), targets] + 1e-12).mean())

        best = minimize_scalar(negative_log_likelihood, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
        self.temperature = float(np.exp(best.x))
        return self


def answer_threshold(probabilities: np.ndarray, truth: Sequence[int], labels: Sequence[str],
                     candidates: Sequence[float] = tuple(np.round(np.arange(0.3, 0.96, 0.05), 2))) -> float:
    """The `no_gesture` threshold that, on held-out hands, gives the most right answers less wrong ones
    (`no_gesture` is right for an idle hand and neither right nor wrong for another; see `pipeline.decide`). With
    calibrated probabilities this is near 0.5, higher where wrong answers come at high probability; among
    thresholds that do equally well, the nearest to 0.5."""
    probabilities, truth = np.asarray(probabilities), np.asarray(truth)
    best = probabilities.argmax(axis=1)
    confidence = probabilities[np.arange(len(best)), best]
    idle = list(labels).index(NO_GESTURE) if NO_GESTURE in labels else -1

    def score(threshold: float) -> float:
        answers = np.where((best != idle) & (confidence < threshold), idle, best)
        return float((answers == truth).sum() - ((answers != truth) & (answers != idle)).sum())

    scores = np.array([score(t) for t in candidates])
    best = [t for t, value in zip(candidates, scores) if value == scores.max()]
    return float(min(best, key=lambda t: abs(t - 0.5)))  # among equals, the nearest to 0.5


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by the bin's share."""
    confidences, correct = np.asarray(confidences, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if len(confidences) == 0:
        raise ValueError("no predictions to measure calibration on")
    which = np.minimum((confidences * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidences[inside].mean())
    return float(error)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by each row's maximum so that exp cannot overflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)


class LinearSoftmax:
    """A fitted StandardScaler + LogisticRegression pipeline as four numpy arrays. Its probabilities are the
    pipeline's, and a saved classifier then loads without scikit-learn, whose import alone is 2-3 s of a
    one-image predict on a 2-core machine."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray):
        self.mean, self.scale, self.coef, self.intercept, self.classes_ = mean, scale, coef, intercept, classes

    @classmethod
    def from_pipeline(cls, pipeline) -> "LinearSoftmax":
        scaler, logistic = pipeline[0], pipeline[-1]
        return cls(scaler.mean_, scaler.scale_, logistic.coef_, logistic.intercept_, logistic.classes_)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        decision = ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        if decision.shape[1] == 1:  # two classes: scikit-learn's binary logistic regression has one row
            positive = 1.0 / (1.0 + np.exp(-decision[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        return softmax(decision)


class LandmarkClassifier:
    """A gesture classifier on `features.hand_features` of MediaPipe hands: multinomial logistic
    regression (default), a small MLP, or the distance-weighted kNN (`NearestHands`). It trains on
    augmented copies of every hand (`features.augment_hand`: 3-D turns, stretch, noise; mirrored
    copies only of the classes not in `asymmetric`; how hard: `augmentation`, a `features.AUGMENTATIONS`
    name), and its probabilities are temperature-scaled on the validation hands, so a threshold on them
    means what it says.

    `oriented`: add the orientation block to the features (for sets with classes that differ by where
    the hand points, e.g. like/dislike); `asymmetric`: classes a mirror would change (pointing left
    or right), never mirrored in training; `logistic_c`: the logistic regression's inverse
    regularisation strength."""

    KINDS = ("logistic", "mlp", "knn")
    FEATURES_VERSION = 2  # 1: the 63 wrist-centred coordinates of earlier versions

    def __init__(self, labels: Sequence[str], kind: str = "logistic", seed: int = 0, neighbours: int = 2,
                 box_style: BoxStyle = BoxStyle(), prior_scale: float = 8.0, oriented: bool = False,
                 asymmetric: Sequence[str] = (), augmented_copies: int = 8, logistic_c: float = 0.1,
                 augmentation: str = "strong", idle_hands: float = 0.0):
        if kind not in self.KINDS:
            raise ValueError(f"unknown landmark classifier {kind!r}; choose one of {self.KINDS}")
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {augmentation!r}; choose one of {sorted(AUGMENTATIONS)}")
        unknown = sorted(set(asymmetric) - set(labels))
        if unknown:
            raise ValueError(f"asymmetric classes not in the class list: {', '.join(unknown)}")
        self.labels, self.kind, self.seed = list(labels), kind, seed
        # idle hands: a `no_gesture` class, trained on generated relaxed hands (`features.idle_hands`, this many
        # times the mean number of training hands per gesture) and on any hands given as no_gesture
        self.idle_hands = idle_hands
        if idle_hands > 0 and NO_GESTURE not in self.labels:
            self.labels.append(NO_GESTURE)
        self.box_style = box_style  # landmark box -> annotation-style box (landmarks.fit_box_style)
        self.oriented, self.asymmetric, self.augmented_copies = oriented, sorted(asymmetric), augmented_copies
        self.augmentation = augmentation
        self.calibration = TemperatureScaling()
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if kind == "logistic":
            from sklearn.linear_model import LogisticRegression

            # C = 0.1: the best of 1 and 0.1 in a cross-validation by recording session on the HandsDataset
            # train split (bench: selection.session_cv)
            self.model = make_pipeline(StandardScaler(), LogisticRegression(C=logistic_c, max_iter=3000))
        elif kind == "mlp":
            from sklearn.neural_network import MLPClassifier

            self.model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-2,
                                                                       max_iter=400, early_stopping=True,
                                                                       random_state=seed))
        else:
            self.model = NearestHands(neighbours, prior_scale)

    def hand_features(self, detections: Sequence) -> np.ndarray:
        """(N, n_features) for MediaPipe detections (their pixel and world landmarks)."""
        if not len(detections):
            return np.zeros((0, n_features(self.oriented)), dtype=np.float32)
        return hand_features(*hand_landmarks(detections), self.oriented)

    def augmented(self, detections: Sequence, targets: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Features of every hand and of `augmented_copies` changed copies of it, and their classes."""
        rng = np.random.default_rng(self.seed)
        pixels, world = hand_landmarks(detections)
        symmetric = np.array([t not in self.asymmetric for t in targets])
        features = [hand_features(pixels, world, self.oriented)]
        for _ in range(self.augmented_copies):
            mirror = symmetric & (rng.random(len(targets)) < 0.5)
            changed = augment_hands(pixels, world, rng, mirror, **AUGMENTATIONS[self.augmentation])
            features.append(hand_features(*changed, self.oriented))
        return np.concatenate(features), list(targets) * (self.augmented_copies + 1)

    def fit(self, detections: Sequence, targets: Sequence[str], val_detections: Sequence = (),
            val_targets: Sequence[str] = (), sessions: Sequence | None = None, folds: int = 5) -> "LandmarkClassifier":
        """Train on the hands `detections` of classes `targets`, then calibrate.

        With `sessions` (per hand, the recording session or person it comes from; at least two) the
        temperature and the answer threshold are fitted on hands of sessions the model was not fitted on:
        each of `folds` groups of sessions is predicted by a model trained on the others (`calibration_fit`
        says so). Without, they come from the validation hands (which share sessions with training, so the
        temperature comes out sharper than it should), or stay at T = 1 and the 0.5 threshold."""
        missing = sorted(set(self.labels) - set(targets) - ({NO_GESTURE} if self.idle_hands > 0 else set()))
        if missing:
            raise ValueError(f"classes with no training hand: {', '.join(missing)}")
        unknown = sorted(set(targets) - set(self.labels) | set(val_targets) - set(self.labels))
        if unknown:
            raise ValueError(f"training labels outside the class list: {', '.join(unknown)}")
        template = copy.deepcopy(self)  # unfitted: the models of the calibration folds start from it
        self._fit_model(detections, targets)
        self.calibration, self.threshold, self.calibration_fit = TemperatureScaling(), 0.5, "none"
        if sessions is not None and len(set(sessions)) >= 2:
            raw, truth = template._out_of_session_probabilities(detections, targets, sessions, folds)
            self.calibration_fit = f"out-of-session ({min(folds, len(set(sessions)))} folds of {len(set(sessions))} sessions)"
        elif len(val_detections):
            raw = self._raw_probabilities(self.hand_features(val_detections))[0]
            truth = np.array([self.labels.index(t) for t in val_targets])
            self.calibration_fit = "validation hands"
        if self.calibration_fit != "none":
            self.calibration.fit(raw, truth)
            self.threshold = answer_threshold(self.calibration(raw), truth, self.labels)
        return self

    def _fit_model(self, detections: Sequence, targets: Sequence[str]) -> None:
        if self.idle_hands > 0:
            detections, targets = list(detections), list(targets)
            gestures = [t for t in targets if t != NO_GESTURE]
            n = int(round(self.idle_hands * len(gestures) / max(len(set(gestures)), 1)))
            pixels, world = idle_hands(*hand_landmarks(detections), n, np.random.default_rng(self.seed + 1))
            detections += [Detection(np.zeros(4, dtype=np.float32), 1.0, p, world_landmarks=w) for p, w in zip(pixels, world)]
            targets += [NO_GESTURE] * n
        features, labels = self.augmented(detections, targets)
        self.model.fit(features, np.array([self.labels.index(t) for t in labels]))
        if self.kind == "logistic":
            self.model = LinearSoftmax.from_pipeline(self.model)

    def _out_of_session_probabilities(self, detections: Sequence, targets: Sequence[str], sessions: Sequence,
                                      folds: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw probabilities of every hand from a copy of this (unfitted) classifier trained on the other
        session folds, and the hands' class indices; a hand whose class its fold's model never saw is left out."""
        from sklearn.model_selection import GroupKFold

        targets, sessions = np.asarray(targets), np.asarray([str(s) for s in sessions])
        raw, truth = [], []
        for fit_rows, held_rows in GroupKFold(min(folds, len(set(sessions)))).split(targets, targets, sessions):
            fold_model = copy.deepcopy(self)
            fold_model._fit_model([detections[i] for i in fit_rows], targets[fit_rows].tolist())
            seen = set(targets[fit_rows])
            held_rows = [i for i in held_rows if targets[i] in seen]
            raw.append(fold_model._raw_probabilities(fold_model.hand_features([detections[i] for i in held_rows]))[0])
            truth += [self.labels.index(targets[i]) for i in held_rows]
        return np.concatenate(raw), np.array(truth)

    def _raw_probabilities(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((len(features), len(self.labels)), dtype=np.float64)
        familiarity = np.ones(len(features), dtype=np.float32)
        if self.kind == "knn":
            probabilities, familiarity = self.model.proba_and_familiarity(features)
        else:
            probabilities = self.model.predict_proba(features)
        out[:, self.model.classes_] = probabilities
        return out, familiarity

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return self.probabilities_and_familiarity(features)[0]

    def familiarity(self, features: np.ndarray) -> np.ndarray:
        """Per hand, in (0, 1]: how close it is to the training hands (kNN; 1 for the others, which cannot say)."""
        return self.probabilities_and_familiarity(features)[1]

    def probabilities_and_familiarity(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated class probabilities (N, n_classes) of hands' features, and their familiarity."""
        features = np.asarray(features, dtype=np.float32)
        if len(features) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32), np.ones(0, dtype=np.float32)
        raw, familiarity = self._raw_probabilities(features)
        return self.calibration(raw).astype(np.float32), familiarity.astype(np.float32)

    def save(self, path: str | os.PathLike) -> Path:
        import joblib

        with atomic_path(path) as tmp:
            joblib.dump({"task": "gesture_detection", "features_version": self.FEATURES_VERSION, **self.__dict__}, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LandmarkClassifier":
        import joblib

        path = Path(path)
        if not path.is_file():
            raise InputError(path, "no landmark classifier; train one with `python -m gesture_detection.train --classifier landmark`")
        checked_model(path, "gesture_detection", (JOBLIB,))
        try:
            bundle = joblib.load(path)
        except Exception as error:  # a damaged pickle raises anything from EOFError to KeyError
            raise InputError(path, f"damaged or unreadable joblib file ({type(error).__name__}: {error})") from None
        if not isinstance(bundle, dict) or "labels" not in bundle:
            raise InputError(path, "is a joblib file but not a landmark classifier (no labels inside)")
        task = bundle.pop("task", "gesture_detection")
        if task != "gesture_detection":
            raise InputError(path, f"is not a gesture_detection model (its task: {task})")
        if bundle.pop("features_version", 1) != cls.FEATURES_VERSION:
            raise InputError(path, "a landmark classifier on the features of an older version; train it again with "
                                   "`python -m gesture_detection.train --classifier landmark`")
        classifier = cls.__new__(cls)
        classifier.__dict__.update(bundle)
        return classifier


class FingerCounter:
    """The `fingers` mode: no gesture classifier, the number of extended fingers from the landmarks'
    geometry, answered as the class that `classes` names for that count.

    Per finger a state score (`features.finger_state_scores`: the thumb tip's distance to the pinky
    knuckle, each long finger's tip-to-wrist over PIP-to-wrist distance; the same for a palm and a back
    view) gives P(extended) = sigmoid(slope * (score - threshold)); the count's distribution treats the
    fingers as independent and is temperature-scaled, so the answer (the most probable count) has its
    own calibrated probability, to which the pipeline's threshold applies. A count the set does not name
    (3 for LinTO) keeps its share, so such a hand becomes no_gesture.

    `fit` learns the thresholds and then the temperature from hands whose finger states and count are
    known (`data.FINGER_STATES`); the defaults were fitted that way on the train splits of both real sets
    (README)."""

    kind = "fingers"
    # thumb, index, middle, ring, pinky; from `FingerCounter.fit` on the train splits of both real sets
    THRESHOLDS = (0.958, 1.128, 1.128, 1.128, 1.128)
    SLOPES = (30.0, 40.0, 40.0, 40.0, 40.0)  # not fitted: the temperature sets the sharpness
    TEMPERATURE = 1.58

    def __init__(self, classes: dict[int, str], box_style: BoxStyle = BoxStyle(), thresholds: Sequence[float] | None = None,
                 slopes: Sequence[float] | None = None, temperature: float | None = None):
        if not classes or any(not 0 <= count <= 5 for count in classes):
            raise ValueError(f"finger classes must name counts 0 to 5, got {sorted(classes)}")
        self.counts, self.labels = list(classes), list(classes.values())
        self.box_style = box_style
        self.thresholds = np.asarray(self.THRESHOLDS if thresholds is None else thresholds, dtype=np.float64)
        self.slopes = np.asarray(self.SLOPES if slopes is None else slopes, dtype=np.float64)
        self.calibration = TemperatureScaling(self.TEMPERATURE if temperature is None else temperature)

    def hand_features(self, detections: Sequence) -> np.ndarray:
        """(N, 5): per finger, thumb to pinky, its state score (`features.finger_state_scores`)."""
        return finger_state_scores(hand_landmarks(detections)[1]) if len(detections) else np.zeros((0, 5))

    def finger_probabilities(self, scores: np.ndarray) -> np.ndarray:
        """(N, 5): P(extended) per finger."""
        return 1.0 / (1.0 + np.exp(-self.slopes * (np.asarray(scores, dtype=np.float64).reshape(-1, 5) - self.thresholds)))

    def count_probabilities(self, scores: np.ndarray) -> np.ndarray:
        """(N, 6): calibrated P(0..5 fingers extended)."""
        if len(scores) == 0:
            return np.zeros((0, 6))
        return self.calibration(count_distribution(self.finger_probabilities(scores)))

    def probabilities_and_familiarity(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        distributions = self.count_probabilities(scores)
        return distributions[:, self.counts].astype(np.float32), np.ones(len(distributions), dtype=np.float32)

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        return self.probabilities_and_familiarity(scores)[0]

    def fit(self, detections: Sequence, counts: Sequence[int | None], states: Sequence[Sequence[int | None]]) -> "FingerCounter":
        """The thresholds, then the temperature, from hands whose fingers' `states` (per hand, thumb to
        pinky: 1 extended, 0 folded, None unknown; `data.FINGER_STATES`) and finger `counts` (None: not a
        count) are known. The thumb's threshold and the one the four long fingers share are each the middle
        of the widest range of scores that misreads the fewest known fingers; the slopes stay, and the
        temperature, fitted on the hands with a count, sets how sharp the count's distribution is."""
        scores = self.hand_features(detections)
        states = np.array([[np.nan if v is None else v for v in row] for row in states], dtype=np.float64).reshape(-1, 5)
        for fingers in ([0], [1, 2, 3, 4]):
            values, extended = scores[:, fingers].ravel(), states[:, fingers].ravel()
            known = ~np.isnan(extended)
            if len(set(extended[known])) < 2:
                raise ValueError(f"no {'thumb' if fingers == [0] else 'long finger'} known both extended and folded")
            self.thresholds[fingers] = _best_threshold(values[known], extended[known] == 1)
        with_count = np.array([c is not None for c in counts], dtype=bool)
        if with_count.any():
            self.calibration = TemperatureScaling().fit(count_distribution(self.finger_probabilities(scores[with_count])),
                                                        np.array([c for c in counts if c is not None]))
        return self


def _best_threshold(values: np.ndarray, positive: np.ndarray) -> float:
    """The threshold (positive above it) with the fewest errors; among equals, the middle of the widest gap."""
    order = np.argsort(values)
    values, positive = values[order], positive[order]
    # errors with the threshold just above values[i]: positives at or below i, negatives above i
    errors = np.cumsum(positive) + (~positive).sum() - np.cumsum(~positive)
    gaps = np.diff(values)
    candidates = np.where(errors[:-1] == errors[:-1].min())[0]
    best = candidates[np.argmax(gaps[candidates])]
    return float((values[best] + values[best + 1]) / 2)
