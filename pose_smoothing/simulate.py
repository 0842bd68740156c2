"""Ground truth by simulation: clean trajectories, realistic landmark noise, dropped frames in bursts,
and the scores of a filter against the truth (RMSE, lag in frames, jitter).

Clean trajectories come from a real recording smoothed with a zero-phase 4th-order Butterworth
low-pass at 3 Hz (a filter none of the compared methods uses, so none is favoured). The noise of
each landmark coordinate is Gaussian with the standard deviation of that coordinate's residual in
the real recording (raw minus clean), i.e. the jitter MediaPipe really produces, but white.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, filtfilt

from pose_smoothing.data import LandmarkSequence
from pose_smoothing.gaps import fill_gaps


def ground_truth(raw: LandmarkSequence, cutoff_hz: float = 3.0) -> tuple[LandmarkSequence, np.ndarray, np.ndarray]:
    """(clean sequence, noise std of image coords (33, 3), of world coords (33, 3)) from a real recording."""
    clean = oracle_lowpass(raw, cutoff_hz)
    image_std = np.nanstd(raw.image - clean.image, axis=0)
    world_std = np.nanstd(raw.world - clean.world, axis=0)
    return clean.copy(visibility=np.ones_like(clean.visibility)), image_std, world_std


def burst_dropouts(frames: int, fraction: float, rng: np.random.Generator, mean_burst: float = 4.0,
                   max_burst: int = 8) -> np.ndarray:
    """Bool mask (True = dropped) covering `fraction` of the frames with bursts of 1..max_burst frames."""
    dropped = np.zeros(frames, dtype=bool)
    target = int(round(fraction * frames))
    while dropped.sum() < target:
        length = int(min(max_burst, rng.geometric(1.0 / mean_burst)))
        start = int(rng.integers(1, max(2, frames - length - 1)))  # keep the first and last frame
        dropped[start:start + length] = True
    return dropped


def corrupt(clean: LandmarkSequence, image_std: np.ndarray, world_std: np.ndarray, dropout: float = 0.10,
            seed: int = 0) -> tuple[LandmarkSequence, np.ndarray]:
    """Noisy observation of `clean` and its dropped-frame mask."""
    rng = np.random.default_rng(seed)
    image = clean.image + rng.normal(size=clean.image.shape) * image_std
    world = clean.world + rng.normal(size=clean.world.shape) * world_std
    dropped = burst_dropouts(len(clean), dropout, rng)
    image[dropped], world[dropped] = np.nan, np.nan
    visibility = np.where(dropped[:, None], 0.0, 1.0) * np.ones_like(clean.visibility)
    return clean.copy(image=image, world=world, visibility=visibility), dropped


@dataclass
class Scores:
    rmse: float              # on observed frames, normalised image units
    rmse_filled: float       # on the dropped frames (gap filling + filter)
    lag_frames: float        # delay of the output against the truth (positive: late)
    jitter: float            # mean |second difference|


def rmse(estimate: np.ndarray, truth: np.ndarray, frames: np.ndarray) -> float:
    error = (estimate[frames] - truth[frames]) ** 2
    return float(np.sqrt(np.nanmean(error)))


def lag_frames(estimate: np.ndarray, truth: np.ndarray, max_lag: int = 8) -> float:
    """Shift (frames, sub-frame by a parabola through the best three) that best aligns estimate with truth."""
    shifts = np.arange(-max_lag, max_lag + 1)
    n = len(truth)
    errors = np.array([np.nanmean((estimate[max_lag + s:n - max_lag + s] - truth[max_lag:n - max_lag]) ** 2)
                       for s in shifts])
    best = int(np.argmin(errors))
    if 0 < best < len(shifts) - 1:
        left, middle, right = errors[best - 1:best + 2]
        curvature = left - 2 * middle + right
        offset = 0.5 * (left - right) / curvature if curvature > 0 else 0.0
        return float(shifts[best] + offset)
    return float(shifts[best])


def jitter(values: np.ndarray) -> float:
    second = np.abs(np.diff(values, n=2, axis=0))
    return float(np.nanmean(second)) if np.isfinite(second).any() else float("nan")


def score(estimate: LandmarkSequence, clean: LandmarkSequence, dropped: np.ndarray, warmup: int = 0) -> Scores:
    """Scores on the image x, y (normalised; the image z is a rough depth, far noisier, left out)."""
    frames = np.arange(len(clean)) >= warmup
    xy, truth = estimate.image[..., :2], clean.image[..., :2]
    has_filled = (frames & dropped).any() and np.isfinite(xy[frames & dropped]).any()
    return Scores(rmse=rmse(xy, truth, frames & ~dropped),
                  rmse_filled=rmse(xy, truth, frames & dropped) if has_filled else float("nan"),
                  lag_frames=lag_frames(xy, truth),
                  jitter=jitter(xy[warmup:]))


def oracle_lowpass(noisy: LandmarkSequence, cutoff_hz: float = 3.0) -> LandmarkSequence:
    """The ground truth's own zero-phase low-pass applied to the noisy data: about the best any
    smoother can do here (it removes the noise above the cutoff and none below)."""
    filled = fill_gaps(noisy, method="linear", max_gap=len(noisy), visibility_threshold=0.0)
    b, a = butter(4, cutoff_hz / (noisy.fps / 2))
    return filled.copy(image=filtfilt(b, a, filled.image, axis=0), world=filtfilt(b, a, filled.world, axis=0))
