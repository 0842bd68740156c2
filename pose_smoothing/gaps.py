"""Gaps: frames with no person and landmarks with low visibility, and how to fill the short ones.

Two fill methods, both limited to gaps of at most `max_gap` frames (longer gaps stay NaN, so that
an animation never invents a second of motion):
  linear          straight-line interpolation between the last value before and the first after the gap;
                  leading/trailing gaps hold the nearest value.
  neighbour-mean  the original script's rule, done right: every frame of the gap gets the mean of the
                  nearest valid frame on the left (searching backwards, the side the original got wrong)
                  and on the right; at the ends the one neighbour that exists.
"""
from __future__ import annotations

import numpy as np

from core.io import InputError
from pose_smoothing.data import LandmarkSequence

FILL_METHODS = ("linear", "neighbour-mean")


def gap_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) index ranges where `valid` (1-D bool) is False."""
    invalid = np.concatenate([[False], ~np.asarray(valid, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(invalid.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _fill_column(column: np.ndarray, max_gap: int, method: str) -> np.ndarray:
    valid = np.isfinite(column)
    if valid.all() or not valid.any():
        return column
    out = column.copy()
    frames = column.shape[0]
    for start, end in gap_runs(valid):
        if end - start > max_gap:
            continue
        left = column[start - 1] if start > 0 else None
        right = column[end] if end < frames else None
        if left is not None and right is not None:
            if method == "linear":
                weights = (np.arange(start, end) - (start - 1)) / (end - (start - 1))
                out[start:end] = left + weights * (right - left)
            else:
                out[start:end] = 0.5 * (left + right)
        else:
            out[start:end] = left if left is not None else right
    return out


def fill_array(values: np.ndarray, max_gap: int, method: str = "linear") -> np.ndarray:
    """Fill NaN runs of at most `max_gap` frames along axis 0 of `values` (T, ...), column by column."""
    if method not in FILL_METHODS:
        raise ValueError(f"unknown fill method {method!r}; choose one of {', '.join(FILL_METHODS)}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    flat = np.asarray(values, dtype=np.float64).reshape(values.shape[0], -1)
    filled = np.stack([_fill_column(flat[:, c], max_gap, method) for c in range(flat.shape[1])], axis=1)
    return filled.reshape(values.shape)


def mask_low_visibility(sequence: LandmarkSequence, threshold: float) -> LandmarkSequence:
    """Turn landmarks with visibility below `threshold` into gaps (NaN) in both coordinate sets."""
    low = sequence.visibility < threshold
    image, world = sequence.image.copy(), sequence.world.copy()
    image[low] = np.nan
    world[low] = np.nan
    return sequence.copy(image=image, world=world)


# A frame's reference value: the quadratic least-squares fit through the frames 2 and 3 before and after
# it, evaluated at the frame. Leaving out the frame and its direct neighbours keeps a jump of 1 or 2
# frames out of its own reference; a centred quadratic follows fast, curved motion (a median would not).
REFERENCE_OFFSETS = np.array([-3, -2, 2, 3])
REFERENCE_WEIGHTS = np.linalg.pinv(np.vander(REFERENCE_OFFSETS.astype(np.float64), 3, increasing=True))[0]


def outlier_mask(image: np.ndarray, threshold: float = 6.0) -> np.ndarray:
    """(T, 33) True where a landmark's image x, y jumps away from its reference (above) by more than
    `threshold` times that landmark's typical distance to it (1.4826 x the median over the sequence,
    a robust standard deviation). Uses later frames, so it is for offline use; the first and last 3
    frames, and frames next to a gap, are not judged."""
    xy = image[..., :2]
    frames, reach = xy.shape[0], int(REFERENCE_OFFSETS.max())
    mask = np.zeros(xy.shape[:2], dtype=bool)
    if frames < 2 * reach + 1:
        return mask
    centre = slice(reach, frames - reach)
    reference = sum(weight * xy[reach + offset:frames - reach + offset]
                    for weight, offset in zip(REFERENCE_WEIGHTS, REFERENCE_OFFSETS))
    distance = np.linalg.norm(xy[centre] - reference, axis=2)
    typical = 1.4826 * np.nanmedian(distance, axis=0)
    with np.errstate(invalid="ignore"):
        mask[centre] = distance > threshold * np.maximum(typical, 1e-9)
    return mask


def reject_outliers(sequence: LandmarkSequence, threshold: float = 6.0) -> tuple[LandmarkSequence, int]:
    """Outlier landmarks (`outlier_mask`) become gaps in both coordinate sets, to be filled like the others.
    Returns the sequence and how many landmark values were rejected."""
    outliers = outlier_mask(sequence.image, threshold)
    image, world = sequence.image.copy(), sequence.world.copy()
    image[outliers], world[outliers] = np.nan, np.nan
    return sequence.copy(image=image, world=world), int(outliers.sum())


def check_not_all_gaps(sequence: LandmarkSequence) -> None:
    if len(sequence) == 0 or not np.isfinite(sequence.image).any():
        raise InputError(sequence.source or "<landmark sequence>",
                         "no frame with a detected person: every frame is a gap, nothing to fill or smooth")


def fill_gaps(sequence: LandmarkSequence, method: str = "linear", max_gap: int = 10,
              visibility_threshold: float = 0.5) -> LandmarkSequence:
    """Low-visibility landmarks become gaps, then gaps of at most `max_gap` frames are filled.

    Filled landmarks get visibility = `visibility_threshold` (an estimate, just trusted enough).
    Raises InputError when the whole sequence is a gap."""
    check_not_all_gaps(sequence)
    masked = mask_low_visibility(sequence, visibility_threshold)
    check_not_all_gaps(masked)
    image = fill_array(masked.image, max_gap, method)
    world = fill_array(masked.world, max_gap, method)
    visibility = masked.visibility.copy()
    newly_filled = np.isnan(masked.image[..., 0]) & np.isfinite(image[..., 0])
    visibility[newly_filled] = visibility_threshold
    return masked.copy(image=image, world=world, visibility=visibility)
