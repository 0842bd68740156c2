"""Smoothing filters for landmark sequences, each usable on a whole sequence and frame by frame.

  one-euro  MediaPipe's own One Euro filter and parameters (pose_landmark_filtering.pbtxt): image
            landmarks min_cutoff 0.05, beta 80, derivate_cutoff 1, values scaled by 1 / object size in
            pixels; world landmarks min_cutoff 0.1, beta 40, no value scaling. Causal.
  kalman    constant-velocity Kalman filter per coordinate (white-noise acceleration); noise levels are
            relative to the person's size for image landmarks and in metres for world ones. Causal.
  fixed-lag the same Kalman filter plus a Rauch-Tung-Striebel backward pass over the last K frames:
            each frame's estimate comes K frames late and uses them (nearly live).
  rts       the same over the whole recording (offline): fixed-lag with K = the sequence length.
  savgol    Savitzky-Golay (quadratic, 0.5 s window): the batch form is centred (zero lag, offline);
            the streaming form fits the same polynomial to the last frames and evaluates it at the
            newest one, so live output differs from the offline one (it cannot see the future).

Gaps (NaN) are never bridged by a filter: a NaN input gives a NaN output and resets that coordinate,
so fill short gaps first (`pose_smoothing.gaps`). The streaming forms of one-euro, kalman and
fixed-lag give exactly the batch output (the batch form runs the same per-frame code).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from pose_smoothing.data import LandmarkSequence
from pose_smoothing.gaps import gap_runs

FILTERS = ("one-euro", "savgol", "kalman", "fixed-lag", "rts", "none")
STREAMING_FILTERS = ("one-euro", "kalman", "fixed-lag", "savgol")  # rts needs the whole recording
DEFAULT_LAG_FRAMES = 2  # 0.90 of the oracle's reduction from 2 frames on (bench simulation, seed 1)


# ----------------------------------------------------------------------------------------- One Euro
@dataclass(frozen=True)
class OneEuroParams:
    min_cutoff: float = 0.05
    beta: float = 80.0
    derivate_cutoff: float = 1.0


MEDIAPIPE_IMAGE_ONE_EURO = OneEuroParams(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0)
MEDIAPIPE_WORLD_ONE_EURO = OneEuroParams(min_cutoff=0.1, beta=40.0, derivate_cutoff=1.0)


def _alpha(cutoff: np.ndarray | float, frequency: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass at `cutoff` Hz sampled at `frequency` Hz (MediaPipe's GetAlpha)."""
    te = 1.0 / frequency
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / te)


class OneEuroFilter:
    """One Euro filter over an array of values (any shape), one call per frame, as MediaPipe computes it:
    derivative = (x - last raw x) * value_scale * frequency, low-passed at `derivate_cutoff`;
    cutoff = min_cutoff + beta * |derivative|; output low-passed at that cutoff."""

    def __init__(self, params: OneEuroParams = MEDIAPIPE_IMAGE_ONE_EURO, frequency: float = 30.0):
        self.params = params
        self.initial_frequency = float(frequency)
        self.reset()

    def reset(self) -> None:
        self.frequency = self.initial_frequency
        self.last_time: float | None = None
        self.last_raw: np.ndarray | None = None
        self.smoothed: np.ndarray | None = None
        self.derivative: np.ndarray | None = None

    def __call__(self, timestamp: float, value: np.ndarray, value_scale: np.ndarray | float = 1.0) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.last_raw is None:
            self.last_raw = np.full(value.shape, np.nan)
            self.smoothed = np.full(value.shape, np.nan)
            self.derivative = np.zeros(value.shape)
        if self.last_time is not None:
            if timestamp <= self.last_time:
                return value.copy()  # MediaPipe passes out-of-order frames through unchanged
            self.frequency = 1.0 / (timestamp - self.last_time)
        self.last_time = timestamp
        valid = np.isfinite(value)
        fresh = valid & ~np.isfinite(self.last_raw)  # first value, or first after a gap: no derivative yet
        dvalue = np.where(fresh | ~valid, 0.0, (value - self.last_raw) * value_scale * self.frequency)
        derivative = np.where(fresh, dvalue,
                              self.derivative + _alpha(self.params.derivate_cutoff, self.frequency)
                              * (dvalue - self.derivative))
        cutoff = self.params.min_cutoff + self.params.beta * np.abs(derivative)
        smoothed = np.where(fresh, value, self.smoothed + _alpha(cutoff, self.frequency) * (value - self.smoothed))
        self.derivative = np.where(valid, derivative, 0.0)
        self.smoothed = np.where(valid, smoothed, np.nan)
        self.last_raw = np.where(valid, value, np.nan)
        return self.smoothed.copy()


# ----------------------------------------------------------------------------------------- Kalman
@dataclass(frozen=True)
class KalmanParams:
    measurement_std: float = 0.01     # units of value / value_scale (fraction of body size, or metres)
    acceleration_std: float = 2.0     # per second squared, same units
    initial_velocity_std: float = 1.0


# Chosen on the bench simulation (dancer, noise seed 1; the bench reports seed 0): the image values are
# fractions of the person's size, the world ones metres (a person's box is about a metre across).
KALMAN_IMAGE = KalmanParams(measurement_std=0.01, acceleration_std=0.5)
KALMAN_WORLD = KalmanParams(measurement_std=0.01, acceleration_std=0.5)


class ConstantVelocityKalman:
    """Independent constant-velocity Kalman filters for every element of an array, one call per frame.

    State (position, velocity); process noise: white acceleration with spectral density
    acceleration_std^2; measurement noise measurement_std^2. Both are divided by value_scale^2, so
    with value_scale = 1 / body size they are fractions of the body size."""

    def __init__(self, params: KalmanParams = KalmanParams()):
        self.params = params
        self.reset()

    def reset(self) -> None:
        self.last_time: float | None = None
        self.state: tuple[np.ndarray, ...] | None = None  # position, velocity, P00, P01, P11
        self.predicted: tuple[np.ndarray, ...] | None = None  # the same before the last update (for RTS)
        self.last_dt = 0.0

    def __call__(self, timestamp: float, value: np.ndarray, value_scale: np.ndarray | float = 1.0) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        unit = 1.0 / np.broadcast_to(np.asarray(value_scale, dtype=np.float64), value.shape)
        r = (self.params.measurement_std * unit) ** 2
        q = (self.params.acceleration_std * unit) ** 2
        valid = np.isfinite(value)
        if self.state is None:
            nan = np.full(value.shape, np.nan)
            self.state = (nan, nan.copy(), nan.copy(), nan.copy(), nan.copy())
        pos, vel, p00, p01, p11 = self.state
        dt = 0.0 if self.last_time is None else timestamp - self.last_time
        if dt < 0:
            return np.where(valid, value, np.nan)
        self.last_time = timestamp
        # predict
        pos = pos + dt * vel
        p00, p01, p11 = (p00 + 2 * dt * p01 + dt * dt * p11 + q * dt ** 3 / 3,
                         p01 + dt * p11 + q * dt ** 2 / 2,
                         p11 + q * dt)
        self.predicted, self.last_dt = (pos, vel, p00, p01, p11), dt
        # update
        innovation_var = p00 + r
        k0, k1 = p00 / innovation_var, p01 / innovation_var
        residual = value - pos
        pos_u, vel_u = pos + k0 * residual, vel + k1 * residual
        p00_u, p01_u, p11_u = (1 - k0) * p00, (1 - k0) * p01, p11 - k1 * p01
        # (re)start where there is no state yet: position = measurement, velocity unknown
        fresh = valid & ~np.isfinite(pos)
        v0 = (self.params.initial_velocity_std * unit) ** 2
        pos_u = np.where(fresh, value, pos_u)
        vel_u = np.where(fresh, 0.0, vel_u)
        p00_u, p01_u, p11_u = np.where(fresh, r, p00_u), np.where(fresh, 0.0, p01_u), np.where(fresh, v0, p11_u)
        keep = lambda a: np.where(valid, a, np.nan)  # noqa: E731  a gap resets the element
        self.state = (keep(pos_u), keep(vel_u), keep(p00_u), keep(p01_u), keep(p11_u))
        return self.state[0].copy()


class FixedLagKalman:
    """The constant-velocity Kalman filter plus a Rauch-Tung-Striebel backward pass over the last
    `lag_frames` frames: each call takes a new frame and returns the estimate of the frame `lag_frames`
    calls back given every frame up to the new one (None while fewer have come); `flush()` returns
    the frames still waiting. With lag_frames >= the sequence length this is the full RTS smoother.
    A gap (NaN) ends the backward pass there: no estimate uses frames across a gap."""

    def __init__(self, params: KalmanParams = KalmanParams(), lag_frames: int = 4):
        if lag_frames < 0:
            raise ValueError(f"lag_frames must be >= 0, got {lag_frames}")
        self.kalman = ConstantVelocityKalman(params)
        self.lag_frames = lag_frames
        self.reset()

    def reset(self) -> None:
        self.kalman.reset()
        self.window: deque = deque(maxlen=self.lag_frames + 1)  # (filtered, predicted, dt) per frame
        self.waiting = 0  # frames taken in whose estimate has not been returned yet

    def __call__(self, timestamp: float, value: np.ndarray, value_scale: np.ndarray | float = 1.0) -> np.ndarray | None:
        self.kalman(timestamp, value, value_scale)
        self.window.append((self.kalman.state, self.kalman.predicted, self.kalman.last_dt))
        self.waiting += 1
        if self.waiting <= self.lag_frames:
            return None
        self.waiting -= 1
        return self._smoothed_positions(len(self.window))[0]

    def flush(self) -> list[np.ndarray]:
        """Estimates of the frames still waiting (oldest first), given every frame taken; then none wait."""
        waiting, self.waiting = self.waiting, 0
        return self._smoothed_positions(waiting) if waiting else []

    def _smoothed_positions(self, frames: int) -> list[np.ndarray]:
        """RTS backward pass from the newest frame; positions of the oldest `frames` of the window's last ones."""
        entries = list(self.window)
        (position, velocity, *_), _, _ = entries[-1]
        positions = [position]
        with np.errstate(invalid="ignore", divide="ignore"):
            for (filtered, _, _), (_, following_predicted, dt) in zip(entries[-2::-1], entries[:0:-1]):
                pos, vel, p00, p01, p11 = filtered
                predicted_pos, predicted_vel, m00, m01, m11 = following_predicted
                # gain C = P F^T M^-1, F = [[1, dt], [0, 1]], M = the next frame's predicted covariance
                a00, a01, a10, a11 = p00 + dt * p01, p01, p01 + dt * p11, p11
                det = m00 * m11 - m01 * m01
                i00, i01, i11 = m11 / det, -m01 / det, m00 / det
                dp, dv = position - predicted_pos, velocity - predicted_vel
                new_pos = pos + (a00 * i00 + a01 * i01) * dp + (a00 * i01 + a01 * i11) * dv
                new_vel = vel + (a10 * i00 + a11 * i01) * dp + (a10 * i01 + a11 * i11) * dv
                chained = np.isfinite(new_pos) & np.isfinite(new_vel)  # a gap at the next frame breaks the chain
                position, velocity = np.where(chained, new_pos, pos), np.where(chained, new_vel, vel)
                positions.append(position)
        positions.reverse()
        return positions[len(positions) - frames:]


# ----------------------------------------------------------------------------------------- Savitzky-Golay
@dataclass(frozen=True)
class SavGolParams:
    window_seconds: float = 0.5
    polyorder: int = 2

    def window_frames(self, fps: float) -> int:
        window = max(int(round(self.window_seconds * fps)), self.polyorder + 2)
        return window if window % 2 == 1 else window + 1


def savgol_array(values: np.ndarray, fps: float, params: SavGolParams = SavGolParams()) -> np.ndarray:
    """Centred Savitzky-Golay along axis 0, separately on every run of finite values of every column;
    runs shorter than the window use the largest odd window that fits (left as they are if too short)."""
    window = params.window_frames(fps)
    flat = np.asarray(values, dtype=np.float64).reshape(values.shape[0], -1)
    out = flat.copy()
    for c in range(flat.shape[1]):
        for start, end in gap_runs(~np.isfinite(flat[:, c])):  # runs of finite values
            length = end - start
            w = min(window, length if length % 2 == 1 else length - 1)
            if w > params.polyorder:
                out[start:end, c] = savgol_filter(flat[start:end, c], w, params.polyorder, mode="interp")
    return out.reshape(values.shape)


def _causal_weights(length: int, polyorder: int) -> np.ndarray:
    """Weights w (oldest first) with sum(w * last `length` values) = least-squares polynomial at the newest frame."""
    order = min(polyorder, length - 1)
    times = np.arange(-length + 1, 1, dtype=np.float64)
    vander = np.vander(times, order + 1, increasing=True)
    return np.linalg.pinv(vander)[0]  # value of the fitted polynomial at t = 0


class CausalSavGol:
    """Streaming Savitzky-Golay: least-squares polynomial over the last `window` finite values of each
    element, evaluated at the newest frame (no look-ahead, so noisier than the centred batch form)."""

    def __init__(self, params: SavGolParams = SavGolParams(), fps: float = 30.0):
        self.params = params
        self.window = params.window_frames(fps)
        self.weights = [None] + [_causal_weights(n, params.polyorder) for n in range(1, self.window + 1)]
        self.reset()

    def reset(self) -> None:
        self.history: np.ndarray | None = None  # (window, ...) newest last
        self.run: np.ndarray | None = None       # finite values in a row, per element

    def __call__(self, timestamp: float, value: np.ndarray, value_scale: np.ndarray | float = 1.0) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.history is None:
            self.history = np.full((self.window,) + value.shape, np.nan)
            self.run = np.zeros(value.shape, dtype=int)
        self.history = np.concatenate([self.history[1:], value[None]], axis=0)
        self.run = np.where(np.isfinite(value), np.minimum(self.run + 1, self.window), 0)
        out = np.full(value.shape, np.nan)
        for n in np.unique(self.run[self.run > 0]):
            mask = self.run == n
            out[mask] = np.tensordot(self.weights[n], self.history[-n:][:, mask], axes=(0, 0))
        return out


# ----------------------------------------------------------------------------------------- poses
def object_scale(image_landmarks: np.ndarray, image_size: tuple[int, int]) -> float:
    """MediaPipe's object scale: mean of the landmarks' bounding-box width and height, in pixels."""
    width, height = image_size if image_size[0] > 0 else (1, 1)
    xy = image_landmarks[:, :2]
    xy = xy[np.isfinite(xy).all(axis=1)]
    if xy.shape[0] < 2:
        return float("nan")
    return float(((xy[:, 0].max() - xy[:, 0].min()) * width + (xy[:, 1].max() - xy[:, 1].min()) * height) / 2)


def make_filter(method: str, fps: float, world: bool, lag_frames: int = DEFAULT_LAG_FRAMES):
    """A fresh streaming filter for image (world=False) or world landmarks."""
    if method == "one-euro":
        return OneEuroFilter(MEDIAPIPE_WORLD_ONE_EURO if world else MEDIAPIPE_IMAGE_ONE_EURO, frequency=fps)
    if method == "kalman":
        return ConstantVelocityKalman(KALMAN_WORLD if world else KALMAN_IMAGE)
    if method == "fixed-lag":
        return FixedLagKalman(KALMAN_WORLD if world else KALMAN_IMAGE, lag_frames)
    if method == "savgol":
        return CausalSavGol(SavGolParams(), fps=fps)
    raise ValueError(f"unknown filter {method!r} for frame-by-frame use; choose one of {', '.join(STREAMING_FILTERS)}")


class PoseSmoother:
    """Streaming smoother for live use: call with one frame's image and world landmarks (33, 3 each,
    NaN for gaps); returns the smoothed pair. Image landmarks are scaled by the person's size as in MediaPipe.

    `fixed-lag` returns the pair of the frame `lag_frames` calls back (None for the first `lag_frames`
    calls), and `flush()` the pairs still waiting at the end of a stream."""

    def __init__(self, method: str, fps: float, image_size: tuple[int, int] = (0, 0),
                 lag_frames: int = DEFAULT_LAG_FRAMES):
        self.method = method
        self.image_size = image_size
        self.lag_frames = lag_frames if method == "fixed-lag" else 0
        self.pixel_scale = np.array(image_size if image_size[0] > 0 else (1, 1))[[0, 1, 0]].astype(np.float64)
        self.image_filter = make_filter(method, fps, world=False, lag_frames=lag_frames)
        self.world_filter = make_filter(method, fps, world=True, lag_frames=lag_frames)

    def __call__(self, timestamp: float, image: np.ndarray,
                 world: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        scale = object_scale(image, self.image_size)
        if not np.isfinite(scale) or scale < 1e-6:
            scale = 1.0 if self.image_size[0] == 0 else float(max(self.image_size))
        value_scale = self.pixel_scale / scale
        image_out, world_out = self.image_filter(timestamp, image, value_scale), self.world_filter(timestamp, world, 1.0)
        return None if image_out is None else (image_out, world_out)

    def flush(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The pairs a lagged filter still holds back (oldest first); nothing for the others."""
        if self.lag_frames == 0:
            return []
        return list(zip(self.image_filter.flush(), self.world_filter.flush()))


def smooth_sequence(sequence: LandmarkSequence, method: str, lag_frames: int = DEFAULT_LAG_FRAMES) -> LandmarkSequence:
    """Smooth a whole sequence: one-euro, kalman and fixed-lag run the streaming PoseSmoother frame by
    frame (so live output equals this, frame t's estimate for fixed-lag being the one returned
    `lag_frames` calls later); rts is fixed-lag with the whole sequence as the lag; savgol runs the
    centred offline filter. Gaps stay gaps."""
    if method == "none":
        return sequence.copy()
    if method == "savgol":
        return sequence.copy(image=savgol_array(sequence.image, sequence.fps),
                             world=savgol_array(sequence.world, sequence.fps))
    if method not in FILTERS:
        raise ValueError(f"unknown filter {method!r}; choose one of {', '.join(FILTERS)}")
    if method == "rts":
        method, lag_frames = "fixed-lag", len(sequence)
    smoother = PoseSmoother(method, sequence.fps, sequence.image_size, lag_frames=lag_frames)
    estimates = [smoother(sequence.timestamps[t], sequence.image[t], sequence.world[t]) for t in range(len(sequence))]
    estimates = [pair for pair in estimates if pair is not None] + smoother.flush()
    return sequence.copy(image=np.array([image for image, _ in estimates]),
                         world=np.array([world for _, world in estimates]))
