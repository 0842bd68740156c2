"""BVH motion files from skeleton points, and a small reader to check them.

Hierarchy (from `skeleton.BONES`): ROOT SPINE_BASE with 6 channels (Xposition Yposition Zposition
Zrotation Xrotation Yrotation), every other joint 3 (Zrotation Xrotation Yrotation), degrees,
R = Rz Rx Ry. A BVH joint's rotation moves all of its children together, but a MediaPipe vertex
with several children (the spine base, the neck base, the nose, wrists, ankles) has several bones
that move independently; such a vertex gets one joint with no rotation of its own plus one
zero-offset joint per outgoing bone, named `<VERTEX>_TO_<CHILD>`. Leaves are End Sites.
Offsets are the median bone lengths along the rest (T-pose) directions, in centimetres by default;
every frame's bone directions are then reproduced exactly (lengths are the medians).
Frames where some vertex is missing (a long gap) repeat the nearest complete frame.

Channels are continuous over time (`skeleton.continuous_euler_zxy`): no rotation channel steps by 180
degrees or more between frames, so a turn through 180 degrees never reads as a 360-degree flip.
Export options: `up` "y" (BVH's usual frame, what Blender's importer expects by default) or "z" (Blender's
own frame: x right, z up, the person facing -y; import it with Forward Y, Up Z), and `root_motion`
False to keep the root in place horizontally (its height still moves).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.io import InputError, atomic_open
from pose_smoothing.skeleton import (BONES, CHILDREN, REST_DIRECTIONS, ROOT, VERTEX_NAMES, continuous_euler_zxy,
                                     euler_zxy_from_quat, forward_kinematics, local_rotations, matrix_from_euler_zxy,
                                     matrix_to_quat, quat_conjugate, quat_multiply)

ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
JOINT_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
UP_AXES = ("y", "z")
# Y-up (x right, y up, z towards the camera) -> Z-up (x right, z up, -y towards the camera): +90 degrees about x,
# the same turn Blender's BVH importer makes with its defaults (Forward -Z, Up Y)
Z_UP_FROM_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class BvhJoint:
    name: str
    parent: int                       # index into the joint list, -1 for the root
    offset: np.ndarray
    channels: tuple[str, ...]
    bone: int | None = None           # BONES index whose local rotation this joint carries; None: identity
    end_site: np.ndarray | None = None


@dataclass
class BvhFile:
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray = field(repr=False)   # (frames, channels)

    @property
    def channel_count(self) -> int:
        return sum(len(j.channels) for j in self.joints)


def build_hierarchy(lengths: np.ndarray, rest: np.ndarray = REST_DIRECTIONS) -> list[BvhJoint]:
    """BVH joints for bone lengths (34,) in the output unit."""
    bone_of = {(p, c): b for b, (p, c) in enumerate(BONES)}
    joints: list[BvhJoint] = []

    def add(name: str, parent: int, offset: np.ndarray, bone: int | None) -> int:
        channels = ROOT_CHANNELS if parent < 0 else JOINT_CHANNELS
        joints.append(BvhJoint(name, parent, np.asarray(offset, dtype=np.float64), channels, bone))
        return len(joints) - 1

    def attach(child: int, bone: int, joint: int) -> None:
        """The bone's far end: an End Site for a leaf, otherwise the child's own branch."""
        tip = lengths[bone] * rest[bone]
        if CHILDREN[child]:
            branch(child, tip, joint)
        else:
            joints[joint].end_site = tip

    def branch(vertex: int, offset: np.ndarray, parent: int) -> None:
        children = CHILDREN[vertex]
        if len(children) == 1 and parent >= 0:
            bone = bone_of[(vertex, children[0])]
            attach(children[0], bone, add(VERTEX_NAMES[vertex], parent, offset, bone))
            return
        joint = add(VERTEX_NAMES[vertex], parent, offset, None)
        for child in children:
            bone = bone_of[(vertex, child)]
            sub = add(f"{VERTEX_NAMES[vertex]}_TO_{VERTEX_NAMES[child]}", joint, np.zeros(3), bone)
            attach(child, bone, sub)

    branch(ROOT, np.zeros(3), -1)
    return joints


def complete_frames(points: np.ndarray, label: str = "<points>") -> np.ndarray:
    """Replace every frame that has a missing vertex by the nearest complete frame."""
    complete = np.isfinite(points).all(axis=(1, 2))
    if not complete.any():
        raise InputError(label, "no frame has every landmark: cannot write a skeleton animation")
    good, index = np.flatnonzero(complete), np.arange(len(points))
    slot = np.searchsorted(good, index)
    right, left = good[np.minimum(slot, len(good) - 1)], good[np.maximum(slot - 1, 0)]
    pick = np.where(np.abs(index - left) <= np.abs(right - index), left, right)
    return points[pick]


def _frame_change(up: str) -> np.ndarray:
    if up not in UP_AXES:
        raise ValueError(f"up must be one of {', '.join(UP_AXES)}, got {up!r}")
    return np.eye(3) if up == "y" else Z_UP_FROM_Y_UP


def _median_lengths(points: np.ndarray) -> np.ndarray:
    return np.median(np.linalg.norm(points[:, [c for _, c in BONES]] - points[:, [p for p, _ in BONES]], axis=-1), axis=0)


def _root_track(root_position: np.ndarray, up: str, root_motion: bool) -> np.ndarray:
    """Root positions in the output frame; without root motion the horizontal axes stay at 0 (height moves)."""
    position = root_position @ _frame_change(up).T
    if not root_motion:
        position = position * (np.arange(3) == UP_AXES.index(up) + 1)
    return position


def bvh_motion(points: np.ndarray, joints: list[BvhJoint], scale: float, up: str = "y", root_motion: bool = True,
               continuous: bool = True) -> np.ndarray:
    """(T, 35, 3) complete Y-up points -> (T, channels) motion rows in the `up` frame. `continuous=False` gives
    each frame's angles on their own (in (-180, 180]), as files written before the channels were unwrapped."""
    root_position, root_q, local, _ = local_rotations(points)
    change = matrix_to_quat(_frame_change(up))
    turn = lambda q: quat_multiply(quat_multiply(change, q), quat_conjugate(change))  # noqa: E731  (C R C^T)
    columns = [_root_track(root_position, up, root_motion) * scale]
    rotations = [euler_zxy_from_quat(turn(root_q))]
    for joint in joints[1:]:
        rotations.append(np.zeros((len(points), 3)) if joint.bone is None else euler_zxy_from_quat(turn(local[:, joint.bone])))
    rotations = np.stack(rotations, axis=1)
    if continuous:
        rotations = continuous_euler_zxy(rotations)
    columns.append(rotations[:, 0])
    columns.extend(rotations[:, j] for j in range(1, len(joints)))
    return np.concatenate(columns, axis=1)


def rigid_points(points: np.ndarray, scale: float = 100.0, up: str = "y", root_motion: bool = True) -> np.ndarray:
    """The skeleton a BVH written from these points animates, (T, 35, 3) in its unit and frame: every frame's
    rotations with the median bone lengths (a BVH's bones cannot stretch). The round trips compare with it."""
    points = complete_frames(np.asarray(points, dtype=np.float64))
    root_position, root_q, local, _ = local_rotations(points)
    lengths = np.broadcast_to(_median_lengths(points), (len(points), len(BONES)))
    rebuilt = forward_kinematics(np.zeros_like(root_position), root_q, local, lengths) @ _frame_change(up).T
    return (rebuilt + _root_track(root_position, up, root_motion)[:, None, :]) * scale


def write_bvh(path: str | os.PathLike, points: np.ndarray, frame_time: float, scale: float = 100.0, up: str = "y",
              root_motion: bool = True) -> BvhFile:
    """Write Y-up skeleton points (T, 35, 3) in metres (see `skeleton.to_y_up`) as a BVH file, atomically:
    in the `up` frame ("y" or "z"), with or without the root's horizontal motion, channels continuous."""
    if frame_time <= 0:
        raise ValueError(f"frame_time must be > 0, got {frame_time}")
    change = _frame_change(up)
    points = complete_frames(np.asarray(points, dtype=np.float64), str(path))
    joints = build_hierarchy(_median_lengths(points) * scale, REST_DIRECTIONS @ change.T)
    motion = bvh_motion(points, joints, scale, up, root_motion)
    with atomic_open(path) as handle:
        handle.write("HIERARCHY\n")
        _write_joint(handle, joints, 0, 0)
        handle.write(f"MOTION\nFrames: {len(motion)}\nFrame Time: {frame_time:.8f}\n")
        for row in motion:
            handle.write(" ".join(f"{v:.6f}" for v in row) + "\n")
    return BvhFile(joints, frame_time, motion)


def rotation_steps_degrees(bvh: BvhFile) -> np.ndarray:
    """(frames - 1, joints) the angle of each joint's rotation change between consecutive frames, whatever its
    Euler channels say: a channel step near this is motion in the data, one far above it is the angles' doing."""
    matrices = matrix_from_euler_zxy(rotation_channels(bvh))
    relative = np.einsum("tjik,tjil->tjkl", matrices[:-1], matrices[1:])   # R_t^T R_(t+1)
    cosine = (np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def rotation_channels(bvh: BvhFile) -> np.ndarray:
    """(frames, joints, 3) rotation channels in degrees, in each joint's channel order."""
    columns, at = [], 0
    for joint in bvh.joints:
        columns.extend(at + i for i, c in enumerate(joint.channels) if c.endswith("rotation"))
        at += len(joint.channels)
    return bvh.motion[:, columns].reshape(len(bvh.motion), -1, 3)


def _write_joint(handle, joints: list[BvhJoint], index: int, depth: int) -> None:
    pad, joint = "  " * depth, joints[index]
    handle.write(f"{pad}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}\n{pad}{{\n")
    handle.write(f"{pad}  OFFSET {' '.join(f'{v:.6f}' for v in joint.offset)}\n")
    handle.write(f"{pad}  CHANNELS {len(joint.channels)} {' '.join(joint.channels)}\n")
    for child in (i for i, j in enumerate(joints) if j.parent == index):
        _write_joint(handle, joints, child, depth + 1)
    if joint.end_site is not None:
        handle.write(f"{pad}  End Site\n{pad}  {{\n{pad}    OFFSET {' '.join(f'{v:.6f}' for v in joint.end_site)}\n"
                     f"{pad}  }}\n")
    handle.write(f"{pad}}}\n")


# ----------------------------------------------------------------------------------------- reading
def read_bvh(path: str | os.PathLike) -> BvhFile:
    """Parse a BVH file (the subset any exporter writes: one ROOT, JOINT, End Site, MOTION)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    tokens = path.read_text().split()
    position, joints, stack = 0, [], []

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise InputError(path, "unexpected end of file")
        position += 1
        return tokens[position - 1]

    if take() != "HIERARCHY":
        raise InputError(path, "does not start with HIERARCHY")
    while True:
        token = take()
        if token in ("ROOT", "JOINT"):
            joints.append(BvhJoint(take(), stack[-1] if stack else -1, np.zeros(3), ()))
            stack.append(len(joints) - 1)
            take()  # {
        elif token == "End":
            take(), take()  # Site {
            if take() != "OFFSET":
                raise InputError(path, f"End Site of {joints[stack[-1]].name} has no OFFSET")
            joints[stack[-1]].end_site = np.array([float(take()) for _ in range(3)])
            take()  # }
        elif token == "OFFSET":
            joints[stack[-1]].offset = np.array([float(take()) for _ in range(3)])
        elif token == "CHANNELS":
            joints[stack[-1]].channels = tuple(take() for _ in range(int(take())))
        elif token == "}":
            stack.pop()
        elif token == "MOTION":
            break
        else:
            raise InputError(path, f"unexpected token {token!r} in HIERARCHY")
    if take() != "Frames:":
        raise InputError(path, "MOTION without 'Frames:'")
    frames = int(take())
    if (take(), take()) != ("Frame", "Time:"):
        raise InputError(path, "MOTION without 'Frame Time:'")
    frame_time = float(take())
    values = np.array(tokens[position:], dtype=np.float64)
    channels = sum(len(j.channels) for j in joints)
    if values.size != frames * channels:
        raise InputError(path, f"{values.size} motion values, expected {frames} frames x {channels} channels")
    return BvhFile(joints, frame_time, values.reshape(frames, channels))


def bvh_world_positions(bvh: BvhFile) -> dict[str, np.ndarray]:
    """Forward kinematics of a parsed BVH: name -> (frames, 3) positions of every joint and End Site
    (End Sites named `<joint>/end`). Handles the channel layouts written here (ROOT 6, JOINT 3 ZXY)."""
    frames = bvh.motion.shape[0]
    rotations, positions, out = [], [], {}
    column = 0
    for joint in bvh.joints:
        values = bvh.motion[:, column:column + len(joint.channels)]
        column += len(joint.channels)
        local_translation = np.broadcast_to(joint.offset, (frames, 3)).copy()
        if "Xposition" in joint.channels:
            local_translation = values[:, [joint.channels.index(c) for c in ("Xposition", "Yposition", "Zposition")]]
        degrees = values[:, [joint.channels.index(c) for c in JOINT_CHANNELS]]
        local_rotation = matrix_from_euler_zxy(degrees)
        if joint.parent < 0:
            rotation, position = local_rotation, local_translation
        else:
            parent_rotation = rotations[joint.parent]
            rotation = parent_rotation @ local_rotation
            position = positions[joint.parent] + np.einsum("fij,fj->fi", parent_rotation, local_translation)
        rotations.append(rotation)
        positions.append(position)
        out[joint.name] = position
        if joint.end_site is not None:
            out[f"{joint.name}/end"] = position + np.einsum("fij,j->fi", rotation, joint.end_site)
    return out


def vertex_positions(positions: dict[str, np.ndarray]) -> np.ndarray:
    """Joint and End Site positions named as `bvh_world_positions` names them (also what
    `blender_roundtrip` reads back from Blender) -> (frames, 35, 3) skeleton vertices."""
    out = []
    for vertex, name in enumerate(VERTEX_NAMES):
        if name in positions:
            out.append(positions[name])
            continue
        parent = VERTEX_NAMES[next(p for p, c in BONES if c == vertex)]
        for key in (f"{parent}/end", f"{parent}_TO_{name}/end"):
            if key in positions:
                out.append(positions[key])
                break
        else:
            raise KeyError(f"no joint or End Site for {name}")
    return np.stack(out, axis=1)
