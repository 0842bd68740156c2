"""Ground truth by simulation: clean trajectories, realistic landmark noise, dropped frames in bursts,
and the scores of a filter against the truth (RMSE, lag in frames, jitter).

Clean trajectories come from a real recording smoothed with a zero-phase 4th-order Butterworth
low-pass at 3 Hz (a filter none of the compared methods uses, so none is favoured). The noise of
each landmark coordinate is Gaussian with the standard deviation of that coordinate's residual in
the real recording (raw minus clean), i.e. the jitter MediaPipe really produces. Two simulations:
  white     that noise, white.
  outliers  the same noise level, but correlated in time (AR(1); its coefficient is fitted to how
            the recording's own residual spectrum falls from 4-5 Hz to 10-12.5 Hz, above the
            truth's band: about 0.4 for the dancer), and limb jumps: on 2% of the frames an arm
            (elbow, wrist, hand) or a leg (knee, ankle, foot) is displaced as one piece by 10-30%
            of the person's size for 1 or 2 frames, as MediaPipe does on fast motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, filtfilt, lfilter, welch

from pose_smoothing.data import LANDMARK_INDEX, LandmarkSequence
from pose_smoothing.gaps import fill_array, fill_gaps


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


LIMBS = {side + "_" + limb: [LANDMARK_INDEX[f"{side}_{part}"] for part in parts]
         for side in ("LEFT", "RIGHT")
         for limb, parts in (("ARM", ("ELBOW", "WRIST", "PINKY", "INDEX", "THUMB")),
                             ("LEG", ("KNEE", "ANKLE", "HEEL", "FOOT_INDEX")))}


@dataclass(frozen=True)
class NoiseModel:
    correlation: float = 0.0      # AR(1) coefficient of the jitter from one frame to the next
    outlier_rate: float = 0.0     # fraction of frames where a limb jump starts
    jump_size: tuple[float, float] = (0.10, 0.30)   # fraction of the person's size
    max_jump_frames: int = 2


SIMULATIONS = ("white", "outliers")


def noise_model(simulation: str, raw: LandmarkSequence, clean: LandmarkSequence) -> NoiseModel:
    if simulation == "white":
        return NoiseModel()
    if simulation == "outliers":
        return NoiseModel(correlation=jitter_correlation(raw, clean), outlier_rate=0.02)
    raise ValueError(f"unknown simulation {simulation!r}; one of {', '.join(SIMULATIONS)}")


def jitter_correlation(raw: LandmarkSequence, clean: LandmarkSequence, low_band: tuple[float, float] = (4.0, 5.0),
                       high_band: tuple[float, float] = (10.0, 12.5)) -> float:
    """AR(1) coefficient whose spectrum falls from `low_band` to `high_band` (Hz) as the recording's
    residual around the truth does (median over coordinates); both bands lie above the truth's cutoff."""
    from scipy.optimize import brentq

    residual = fill_array((raw.image - clean.image)[..., :2].reshape(len(raw), -1), len(raw))
    residual = residual[:, np.isfinite(residual).all(axis=0)]
    frequencies, spectra = welch(residual, fs=raw.fps, nperseg=min(256, len(raw)), axis=0)
    band_power = lambda band: spectra[(frequencies >= band[0]) & (frequencies < band[1])].mean(axis=0)  # noqa: E731
    measured = float(np.median(band_power(low_band) / band_power(high_band)))
    low, high = (2 * np.pi * np.mean(band) / raw.fps for band in (low_band, high_band))
    ar1_ratio = lambda rho: (1 + rho ** 2 - 2 * rho * np.cos(high)) / (1 + rho ** 2 - 2 * rho * np.cos(low))  # noqa: E731
    if measured <= 1.0:
        return 0.0  # flat or rising: no positive correlation to model
    return float(brentq(lambda rho: ar1_ratio(rho) - measured, 0.0, 0.95))


def correlated_noise(white: np.ndarray, correlation: float) -> np.ndarray:
    """AR(1) along axis 0 with the same stationary variance as the white input (identity at 0)."""
    if correlation == 0.0:
        return white
    scale = np.sqrt(1.0 - correlation ** 2)
    first = white[:1] / scale  # start in the stationary state
    return lfilter([scale], [1.0, -correlation], np.concatenate([first, white[1:]]), axis=0)


def limb_jumps(clean: LandmarkSequence, model: NoiseModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image offsets (T, 33, 3), outlier mask (T, 33)): whole limbs displaced for 1..max_jump_frames frames."""
    frames = len(clean)
    offsets, mask = np.zeros_like(clean.image), np.zeros(clean.image.shape[:2], dtype=bool)
    for start in np.flatnonzero(rng.random(frames) < model.outlier_rate):
        landmarks = LIMBS[list(LIMBS)[int(rng.integers(len(LIMBS)))]]
        length = int(rng.integers(1, model.max_jump_frames + 1))
        xy = clean.image[start, :, :2]
        size = float(np.mean(np.nanmax(xy, axis=0) - np.nanmin(xy, axis=0)))
        angle, magnitude = rng.uniform(0, 2 * np.pi), rng.uniform(*model.jump_size) * size
        span = slice(start, min(frames, start + length))
        offsets[span, landmarks, 0] += magnitude * np.cos(angle)
        offsets[span, landmarks, 1] += magnitude * np.sin(angle)
        mask[span, landmarks] = True
    return offsets, mask


def corrupt(clean: LandmarkSequence, image_std: np.ndarray, world_std: np.ndarray, dropout: float = 0.10,
            seed: int = 0, model: NoiseModel = NoiseModel()) -> tuple[LandmarkSequence, np.ndarray, np.ndarray]:
    """Noisy observation of `clean`, its dropped-frame mask (T,) and its outlier mask (T, 33).
    The image outliers are mirrored in the world coordinates (image offset x the metres per image unit)."""
    rng = np.random.default_rng(seed)
    image = clean.image + correlated_noise(rng.normal(size=clean.image.shape), model.correlation) * image_std
    world = clean.world + correlated_noise(rng.normal(size=clean.world.shape), model.correlation) * world_std
    dropped = burst_dropouts(len(clean), dropout, rng)
    offsets, outliers = limb_jumps(clean, model, rng)
    metres_per_unit = np.nanmedian(np.ptp(clean.world[..., 1], axis=1) / np.ptp(clean.image[..., 1], axis=1))
    image, world = image + offsets, world + offsets * metres_per_unit
    image[dropped], world[dropped] = np.nan, np.nan
    visibility = np.where(dropped[:, None], 0.0, 1.0) * np.ones_like(clean.visibility)
    return clean.copy(image=image, world=world, visibility=visibility), dropped, outliers & ~dropped[:, None]


@dataclass
class Scores:
    rmse: float              # on observed frames, normalised image units
    rmse_filled: float       # on the dropped frames (gap filling + filter)
    lag_frames: float        # delay of the output against the truth (positive: late)
    jitter: float            # mean |second difference|
    rmse_outliers: float     # on the landmark values that were outliers (NaN when none)


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


def score(estimate: LandmarkSequence, clean: LandmarkSequence, dropped: np.ndarray, warmup: int = 0,
          outliers: np.ndarray | None = None) -> Scores:
    """Scores on the image x, y (normalised; the image z is a rough depth, far noisier, left out)."""
    frames = np.arange(len(clean)) >= warmup
    xy, truth = estimate.image[..., :2], clean.image[..., :2]
    has_filled = (frames & dropped).any() and np.isfinite(xy[frames & dropped]).any()
    outlier_values = outliers & frames[:, None] if outliers is not None else None
    return Scores(rmse=rmse(xy, truth, frames & ~dropped),
                  rmse_filled=rmse(xy, truth, frames & dropped) if has_filled else float("nan"),
                  lag_frames=lag_frames(xy, truth),
                  jitter=jitter(xy[warmup:]),
                  rmse_outliers=rmse(xy, truth, outlier_values) if outlier_values is not None and outlier_values.any()
                  else float("nan"))


def oracle_lowpass(noisy: LandmarkSequence, cutoff_hz: float = 3.0, outliers: np.ndarray | None = None) -> LandmarkSequence:
    """The ground truth's own zero-phase low-pass applied to the noisy data: about the best any
    smoother can do here (it removes the noise above the cutoff and none below). Given the outlier
    mask (T, 33), it also knows which values to drop first (linearly filled like the gaps)."""
    if outliers is not None:
        image, world = noisy.image.copy(), noisy.world.copy()
        image[outliers], world[outliers] = np.nan, np.nan
        noisy = noisy.copy(image=image, world=world)
    filled = fill_gaps(noisy, method="linear", max_gap=len(noisy), visibility_threshold=0.0)
    b, a = butter(4, cutoff_hz / (noisy.fps / 2))
    return filled.copy(image=filtfilt(b, a, filled.image, axis=0), world=filtfilt(b, a, filled.world, axis=0))


def wiener_bounds(clean: LandmarkSequence, image_std: np.ndarray) -> tuple[float, float]:
    """RMSE reductions on image x, y of the best linear filters for this truth and white noise, from the
    truth's spectrum per coordinate (Welch): (causal, non-causal). Causal: the error of estimating a
    frame from it and the frames before is N (1 - exp(-integral ln(1 + S/N) df)) (Kolmogorov's
    innovation variance); non-causal: integral S N / (S + N) df. They bound what a filter can do
    with no look-ahead, and with all of it, if the motion were a stationary Gaussian process."""
    truth = clean.image[..., :2].reshape(len(clean), -1)
    noise = image_std[..., :2].reshape(-1) ** 2
    causal, non_causal = [], []
    for column, n in zip(truth.T, noise):
        values = column[np.isfinite(column)]
        _, spectrum = welch(values, fs=1.0, nperseg=min(512, len(values)), return_onesided=False, detrend="linear")
        causal.append(n * (1.0 - np.exp(-np.mean(np.log1p(spectrum / n)))))
        non_causal.append(np.mean(spectrum * n / (spectrum + n)))
    return tuple(1.0 - np.sqrt(np.mean(errors) / noise.mean()) for errors in (causal, non_causal))
