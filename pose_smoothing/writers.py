"""Outputs of one extraction, all written atomically (a failure leaves the previous file or none).

The angle table is written with the csv module, so this package needs no pandas.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from core.io import atomic_open
from pose_smoothing.skeleton import (BONE_NAMES, continuous_quaternions, local_rotations, spherical_angles,
                                     unwrap_degrees)


def angles_table(points: np.ndarray, timestamps: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame (index `time_s`): root position and orientation, and per bone its length, spherical
    angles theta/phi in degrees and local quaternion (qw, qx, qy, qz). Frames with a missing vertex are NaN.
    Continuous over time: phi is unwrapped (the value nearest the previous frame's, not kept in (-180, 180]),
    and each quaternion takes the sign nearer the previous frame's (theta, in [0, 180], needs nothing)."""
    complete = np.isfinite(points).all(axis=(1, 2))
    columns: dict[str, np.ndarray] = {}
    frames = len(points)
    r, theta, phi = (np.full((frames, len(BONE_NAMES)), np.nan) for _ in range(3))
    root, root_q = np.full((frames, 3), np.nan), np.full((frames, 4), np.nan)
    local = np.full((frames, len(BONE_NAMES), 4), np.nan)
    if complete.any():
        r[complete], theta[complete], phi[complete] = spherical_angles(points[complete])
        root[complete], root_q[complete], local[complete], _ = local_rotations(points[complete])
    phi, root_q, local = unwrap_degrees(np.degrees(phi)), continuous_quaternions(root_q), continuous_quaternions(local)
    for axis, name in enumerate("xyz"):
        columns[f"root_{name}"] = root[:, axis]
    for axis, name in enumerate(("qw", "qx", "qy", "qz")):
        columns[f"root_{name}"] = root_q[:, axis]
    for b, bone in enumerate(BONE_NAMES):
        columns[f"{bone}_length"] = r[:, b]
        columns[f"{bone}_theta_deg"] = np.degrees(theta[:, b])
        columns[f"{bone}_phi_deg"] = phi[:, b]
        for axis, name in enumerate(("qw", "qx", "qy", "qz")):
            columns[f"{bone}_{name}"] = local[:, b, axis]
    return {"time_s": np.asarray(timestamps, dtype=np.float64), **columns}


def write_angles_csv(path: str | os.PathLike, points: np.ndarray, timestamps: np.ndarray) -> Path:
    """CSV with one row per frame, first column `time_s`; missing values are empty cells."""
    table = angles_table(points, timestamps)
    with atomic_open(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(table)
        for row in np.stack(list(table.values()), axis=1):
            writer.writerow("" if np.isnan(v) else f"{v:.6f}" for v in row)
    return Path(path)
