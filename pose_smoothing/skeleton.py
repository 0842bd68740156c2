"""The skeleton tree, its angles and forward kinematics.

Tree: the 33 MediaPipe landmarks plus two dummy vertices, NECK_BASE (mean of the shoulders) and
SPINE_BASE (mean of the hips), 35 vertices and 34 bones, rooted at SPINE_BASE. Every landmark is in
it, the mouth too (NOSE -> MOUTH_LEFT / MOUTH_RIGHT).

Angles work on 3-D points in a Y-up, right-handed frame (`to_y_up` turns MediaPipe world landmarks,
x right / y down / z away from the camera, into x right / y up / z towards the camera; a person
facing the camera then has their left side at +x):
  spherical  per bone: length r, polar angle theta from +y (up) and azimuth phi = arctan2(z, x),
             both with arctan2 (no division, so no 0/0 for vertical or zero-length bones).
  local      per bone: the quaternion (w, x, y, z) that turns the bone's rest direction into its
             direction seen from the parent's frame (shortest arc), plus the root's orientation (body
             frame from the hips and the spine). A node's frame is its incoming bone's rotation, so a
             child inherits its parent's turn, as in an animation rig.
Forward kinematics rebuilds the points from either form and the bone lengths (round trip < 1e-6).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.transform import Rotation

from pose_smoothing.data import LANDMARK_INDEX, LANDMARK_NAMES, LandmarkSequence

NECK_BASE, SPINE_BASE = "NECK_BASE", "SPINE_BASE"
VERTEX_NAMES: tuple[str, ...] = LANDMARK_NAMES + (NECK_BASE, SPINE_BASE)
VERTEX_INDEX = {name: i for i, name in enumerate(VERTEX_NAMES)}
ROOT = VERTEX_INDEX[SPINE_BASE]

_CHILDREN: dict[str, tuple[str, ...]] = {
    SPINE_BASE: ("LEFT_HIP", "RIGHT_HIP", NECK_BASE),
    NECK_BASE: ("LEFT_SHOULDER", "RIGHT_SHOULDER", "NOSE"),
    "NOSE": ("LEFT_EYE_INNER", "RIGHT_EYE_INNER", "MOUTH_LEFT", "MOUTH_RIGHT"),
}
for _side in ("LEFT", "RIGHT"):
    _CHILDREN.update({
        f"{_side}_HIP": (f"{_side}_KNEE",), f"{_side}_KNEE": (f"{_side}_ANKLE",),
        f"{_side}_ANKLE": (f"{_side}_HEEL", f"{_side}_FOOT_INDEX"),
        f"{_side}_SHOULDER": (f"{_side}_ELBOW",), f"{_side}_ELBOW": (f"{_side}_WRIST",),
        f"{_side}_WRIST": (f"{_side}_PINKY", f"{_side}_INDEX", f"{_side}_THUMB"),
        f"{_side}_EYE_INNER": (f"{_side}_EYE",), f"{_side}_EYE": (f"{_side}_EYE_OUTER",),
        f"{_side}_EYE_OUTER": (f"{_side}_EAR",),
    })


def _breadth_first_bones() -> list[tuple[int, int]]:
    bones, queue = [], [SPINE_BASE]
    while queue:
        parent = queue.pop(0)
        for child in _CHILDREN.get(parent, ()):
            bones.append((VERTEX_INDEX[parent], VERTEX_INDEX[child]))
            queue.append(child)
    return bones


BONES: list[tuple[int, int]] = _breadth_first_bones()   # (parent, child), parents before children
BONE_NAMES: list[str] = [f"{VERTEX_NAMES[p]}-{VERTEX_NAMES[c]}" for p, c in BONES]
PARENT: dict[int, int] = {c: p for p, c in BONES}
CHILDREN: dict[int, list[int]] = {i: [c for p, c in BONES if p == i] for i in range(len(VERTEX_NAMES))}


def _rest_direction(child: str) -> tuple[float, float, float]:
    """T-pose, Y-up, facing +z, the person's left at +x. Only directions matter."""
    side = 1.0 if child.startswith("LEFT") else -1.0
    part = child.split("_", 1)[1] if child.startswith(("LEFT_", "RIGHT_")) else child
    table = {
        "HIP": (side, 0, 0), "KNEE": (0, -1, 0), "ANKLE": (0, -1, 0), "HEEL": (0, -0.6, -0.8),
        "FOOT_INDEX": (0, -0.5, 1), "SHOULDER": (side, 0, 0), "ELBOW": (side, 0, 0), "WRIST": (side, 0, 0),
        "PINKY": (side, 0, -0.4), "INDEX": (side, 0, 0.1), "THUMB": (0.6 * side, 0, 0.8),
        "EYE_INNER": (0.4 * side, 1, 0), "EYE": (side, 0, 0), "EYE_OUTER": (side, 0, 0),
        "EAR": (0.6 * side, -0.2, -1), NECK_BASE: (0, 1, 0), "NOSE": (0, 1, 0.5),
    }
    if child.startswith("MOUTH_"):
        return (0.5 * side, -1, 0)
    return table[part]


REST_DIRECTIONS = np.array([_rest_direction(VERTEX_NAMES[c]) for _, c in BONES], dtype=np.float64)
REST_DIRECTIONS /= np.linalg.norm(REST_DIRECTIONS, axis=1, keepdims=True)


def with_dummy_vertices(landmarks: np.ndarray) -> np.ndarray:
    """(..., 33, 3) -> (..., 35, 3): append NECK_BASE (mean of shoulders) and SPINE_BASE (mean of hips)."""
    neck = landmarks[..., [LANDMARK_INDEX["LEFT_SHOULDER"], LANDMARK_INDEX["RIGHT_SHOULDER"]], :].mean(axis=-2)
    spine = landmarks[..., [LANDMARK_INDEX["LEFT_HIP"], LANDMARK_INDEX["RIGHT_HIP"]], :].mean(axis=-2)
    return np.concatenate([landmarks, neck[..., None, :], spine[..., None, :]], axis=-2)


def to_y_up(world: np.ndarray) -> np.ndarray:
    """MediaPipe world (x right, y down, z away) -> Y-up right-handed (x right, y up, z towards camera)."""
    return world * np.array([1.0, -1.0, -1.0])


def bone_vectors(points: np.ndarray) -> np.ndarray:
    """(..., 35, 3) -> (..., 34, 3) child minus parent, in BONES order."""
    parents, children = np.array(BONES).T
    return points[..., children, :] - points[..., parents, :]


def bone_lengths(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(bone_vectors(points), axis=-1)


# ----------------------------------------------------------------------------------------- spherical
def spherical_angles(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bone (length r, polar theta from +y, azimuth phi from +x towards +z), radians."""
    v = bone_vectors(points)
    r = np.linalg.norm(v, axis=-1)
    theta = np.arctan2(np.hypot(v[..., 0], v[..., 2]), v[..., 1])
    phi = np.arctan2(v[..., 2], v[..., 0])
    return r, theta, phi


def forward_kinematics_spherical(root: np.ndarray, r: np.ndarray, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Inverse of `spherical_angles`: root (..., 3) and per-bone (..., 34) -> points (..., 35, 3)."""
    directions = np.stack([np.sin(theta) * np.cos(phi), np.cos(theta), np.sin(theta) * np.sin(phi)], axis=-1)
    points = np.zeros(root.shape[:-1] + (len(VERTEX_NAMES), 3))
    points[..., ROOT, :] = root
    for b, (p, c) in enumerate(BONES):
        points[..., c, :] = points[..., p, :] + r[..., b, None] * directions[..., b, :]
    return points


# ----------------------------------------------------------------------------------------- quaternions
def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(xyz, v)
    return v + w * t + np.cross(xyz, t)


def quat_from_two_vectors(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternion turning direction u into direction v (both (..., 3), any length > 0)."""
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    w = 1.0 + np.sum(u * v, axis=-1, keepdims=True)
    xyz = np.cross(u, v)
    opposite = (w[..., 0] < 1e-9)
    if np.any(opposite):  # 180 degrees: any axis perpendicular to u
        axis = np.cross(u, np.array([1.0, 0.0, 0.0]))
        small = np.linalg.norm(axis, axis=-1) < 1e-6
        axis[small] = np.cross(u[small], np.array([0.0, 1.0, 0.0]))
        w = np.where(opposite[..., None], 0.0, w)
        xyz = np.where(opposite[..., None], axis, xyz)
    q = np.concatenate([w, xyz], axis=-1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1)], axis=-2)


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4), (w, x, y, z) with w >= 0."""
    xyzw = Rotation.from_matrix(np.asarray(m).reshape(-1, 3, 3)).as_quat()
    q = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(np.shape(m)[:-2] + (4,))


def root_orientation(points: np.ndarray) -> np.ndarray:
    """Body frame at the root as a quaternion: x from the right hip to the left hip, y up the spine
    (made orthogonal to x), z = x cross y. Identity for the rest pose."""
    x = points[..., VERTEX_INDEX["LEFT_HIP"], :] - points[..., VERTEX_INDEX["RIGHT_HIP"], :]
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = points[..., VERTEX_INDEX[NECK_BASE], :] - points[..., ROOT, :]
    y = y - np.sum(y * x, axis=-1, keepdims=True) * x
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    z = np.cross(x, y)
    return matrix_to_quat(np.stack([x, y, z], axis=-1))


def local_rotations(points: np.ndarray, rest: np.ndarray = REST_DIRECTIONS
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points (T, 35, 3) -> (root position (T, 3), root orientation (T, 4), local quaternions (T, 34, 4),
    bone lengths (T, 34)). A zero-length bone keeps its rest direction (identity rotation)."""
    frames = points.shape[0]
    vectors = bone_vectors(points)
    lengths = np.linalg.norm(vectors, axis=-1)
    node_frame = np.zeros((frames, len(VERTEX_NAMES), 4))
    root_q = root_orientation(points)
    node_frame[:, ROOT] = root_q
    local = np.zeros((frames, len(BONES), 4))
    for b, (p, c) in enumerate(BONES):
        seen_from_parent = quat_rotate(quat_conjugate(node_frame[:, p]), vectors[:, b])
        degenerate = lengths[:, b] < 1e-12
        seen_from_parent[degenerate] = rest[b]
        local[:, b] = quat_from_two_vectors(np.broadcast_to(rest[b], seen_from_parent.shape), seen_from_parent)
        node_frame[:, c] = quat_multiply(node_frame[:, p], local[:, b])
    return points[:, ROOT].copy(), root_q, local, lengths


def forward_kinematics(root_position: np.ndarray, root_q: np.ndarray, local: np.ndarray, lengths: np.ndarray,
                       rest: np.ndarray = REST_DIRECTIONS) -> np.ndarray:
    """Inverse of `local_rotations`: rebuild (T, 35, 3) points from the root, rotations and bone lengths."""
    frames = root_position.shape[0]
    points = np.zeros((frames, len(VERTEX_NAMES), 3))
    node_frame = np.zeros((frames, len(VERTEX_NAMES), 4))
    points[:, ROOT], node_frame[:, ROOT] = root_position, root_q
    for b, (p, c) in enumerate(BONES):
        node_frame[:, c] = quat_multiply(node_frame[:, p], local[:, b])
        points[:, c] = points[:, p] + lengths[:, b, None] * quat_rotate(node_frame[:, c], np.broadcast_to(rest[b], (frames, 3)))
    return points


# ----------------------------------------------------------------------------------------- Euler (BVH)
def euler_zxy_from_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) -> degrees (z, x, y) with R = Rz Rx Ry, BVH's `Zrotation Xrotation Yrotation`."""
    flat = np.asarray(q).reshape(-1, 4)
    with warnings.catch_warnings():  # at gimbal lock scipy puts all of z + y into z; continuous_euler_zxy splits it
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        angles = Rotation.from_quat(np.concatenate([flat[:, 1:], flat[:, :1]], axis=1)).as_euler("ZXY", degrees=True)
    return angles.reshape(np.shape(q)[:-1] + (3,))


def continuous_euler_zxy(degrees: np.ndarray) -> np.ndarray:
    """Per-frame ZXY angles (T, ..., 3) -> the same rotations with angles continuous over time (axis 0).

    `euler_zxy_from_quat` gives each frame's angles on their own, z and y in (-180, 180] and x in
    [-90, 90], so a joint turning through 180 degrees jumps by 360 from one frame to the next. Each
    frame here takes, of the rotation's two ZXY forms, (z, x, y) and (z + 180, 180 - x, y + 180), each
    channel moved by the multiple of 360 nearest the previous frame, the one closer to the previous
    frame (the rule of Blender's `Euler.make_compatible`). No channel then steps by more than 180. At gimbal
    lock (x = +-90 degrees, where only z + y or z - y is defined) z and y split it nearest the previous frame."""
    angles = np.array(degrees, dtype=np.float64, copy=True)
    for t in range(1, len(angles)):
        previous = angles[t - 1]
        dual = np.stack([angles[t, ..., 0] + 180.0, 180.0 - angles[t, ..., 1], angles[t, ..., 2] + 180.0], axis=-1)
        candidates = [c - 360.0 * np.round((c - previous) / 360.0) for c in (angles[t], dual)]
        use_dual = np.abs(candidates[1] - previous).sum(axis=-1) < np.abs(candidates[0] - previous).sum(axis=-1)
        chosen = np.where(use_dual[..., None], candidates[1], candidates[0])
        # gimbal lock (x = +-90): only z + sin(x) y is defined; split it to stay nearest the previous frame
        x = np.radians(chosen[..., 1])
        locked, k = np.abs(np.cos(x)) < 1e-7, np.sign(np.sin(x))
        miss = (chosen[..., 0] + k * chosen[..., 2]) - (previous[..., 0] + k * previous[..., 2])
        chosen[..., 0] = np.where(locked, previous[..., 0] + miss / 2, chosen[..., 0])
        chosen[..., 2] = np.where(locked, previous[..., 2] + k * miss / 2, chosen[..., 2])
        angles[t] = chosen
    return angles


def unwrap_degrees(values: np.ndarray) -> np.ndarray:
    """Angles in degrees (T, ...) made continuous over time (axis 0): each finite value moves by the multiple
    of 360 nearest the last finite value before it in its column (NaN gaps stay NaN)."""
    out = np.array(values, dtype=np.float64, copy=True)
    flat = out.reshape(len(out), -1)
    for column in flat.T:
        finite = np.flatnonzero(np.isfinite(column))
        if len(finite) > 1:
            column[finite] = np.degrees(np.unwrap(np.radians(column[finite])))
    return out


def continuous_quaternions(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (T, ..., 4): q and -q are the same rotation; each frame takes the sign nearer the last
    finite frame before it (positive dot product), so no component flips sign between frames. NaN stays NaN."""
    out = np.array(q, dtype=np.float64, copy=True)
    flat = out.reshape(len(out), -1, 4)
    for k in range(flat.shape[1]):
        previous = None
        for t in range(len(flat)):
            if not np.isfinite(flat[t, k]).all():
                continue
            if previous is not None and np.dot(flat[t, k], previous) < 0:
                flat[t, k] *= -1.0
            previous = flat[t, k]
    return out


def max_step_degrees(angles: np.ndarray) -> float:
    """The largest change of any angle channel between consecutive frames (T, ...), in degrees."""
    steps = np.abs(np.diff(np.asarray(angles, dtype=np.float64), axis=0))
    return float(np.nanmax(steps)) if steps.size and np.isfinite(steps).any() else 0.0


def matrix_from_euler_zxy(degrees: np.ndarray) -> np.ndarray:
    flat = np.asarray(degrees).reshape(-1, 3)
    return Rotation.from_euler("ZXY", flat, degrees=True).as_matrix().reshape(np.shape(degrees)[:-1] + (3, 3))


# ----------------------------------------------------------------------------------------- from a sequence
def skeleton_points(sequence: LandmarkSequence) -> np.ndarray:
    """Y-up world skeleton (T, 35, 3) in metres, with the hip centre moved as it moves in the image:
    MediaPipe's world landmarks are hip-centred, so the root translation is estimated from the image
    (pixels times metres per pixel, from the median torso length in both), with no depth motion."""
    points = with_dummy_vertices(to_y_up(sequence.world))
    width, height = sequence.image_size
    if width <= 0:
        return points
    image = with_dummy_vertices(sequence.image)[..., :2] * np.array([width, height])
    root_px = image[:, ROOT]
    torso_px = np.linalg.norm(image[:, VERTEX_INDEX[NECK_BASE]] - image[:, VERTEX_INDEX[SPINE_BASE]], axis=-1)
    torso_m = np.linalg.norm(points[:, VERTEX_INDEX[NECK_BASE]] - points[:, ROOT], axis=-1)
    ratio = torso_m / torso_px
    if not np.isfinite(ratio).any() or not np.isfinite(root_px).all(axis=1).any():
        return points
    metres_per_px = float(np.nanmedian(ratio))
    start = root_px[np.flatnonzero(np.isfinite(root_px).all(axis=1))[0]]
    shift = (root_px - start) * metres_per_px * np.array([1.0, -1.0])
    return points + np.concatenate([shift, np.zeros((len(points), 1))], axis=1)[:, None, :]
