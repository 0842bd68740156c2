"""BVH export: channels continuous over time (no 360-degree flips), the up axis and root-motion options,
the angle CSV's unwrapped angles, and the round trip through Blender's own importer (skipped with the
reason where the bpy environment is absent; `make test-blender` creates it and runs these)."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pose_smoothing.bvh import (Z_UP_FROM_Y_UP, build_hierarchy, bvh_motion, bvh_world_positions, read_bvh, rigid_points,
                                rotation_channels, rotation_steps_degrees, vertex_positions, write_bvh)
from pose_smoothing.skeleton import (BONES, REST_DIRECTIONS, ROOT, VERTEX_INDEX, continuous_euler_zxy,
                                     continuous_quaternions, euler_zxy_from_quat, forward_kinematics,
                                     matrix_from_euler_zxy, max_step_degrees, unwrap_degrees)
from pose_smoothing.writers import write_angles_csv
from tests.conftest import shared_data_path


def quat_wxyz(rotation: Rotation) -> np.ndarray:
    xyzw = rotation.as_quat()
    return np.concatenate([xyzw[..., 3:], xyzw[..., :3]], axis=-1)


def turning_skeleton(frames: int = 48, turns: float = 1.0, seed: int = 0) -> np.ndarray:
    """A T-posed body (Y-up, metres) that spins `turns` times about the vertical while its arms swing up past
    the head and down and the root walks forward: every joint's angles cross +-180 degrees somewhere."""
    rng = np.random.default_rng(seed)
    lengths = np.broadcast_to(rng.uniform(0.05, 0.45, size=len(BONES)), (frames, len(BONES)))
    t = np.arange(frames) / frames
    root_q = quat_wxyz(Rotation.from_euler("y", 360.0 * turns * t[:, None], degrees=True))
    local = np.tile([1.0, 0.0, 0.0, 0.0], (frames, len(BONES), 1))
    for side, sign in (("LEFT", 1.0), ("RIGHT", -1.0)):
        shoulder = next(b for b, (p, c) in enumerate(BONES) if c == VERTEX_INDEX[f"{side}_ELBOW"])
        # about the body's forward axis: arm from the side, past straight up (crossing 180 from rest), and back
        local[:, shoulder] = quat_wxyz(Rotation.from_euler("z", sign * 200.0 * np.sin(np.pi * t)[:, None], degrees=True))
    root = np.stack([0.8 * t, np.full(frames, 0.95), np.zeros(frames)], axis=1)
    return forward_kinematics(root, root_q, local, lengths)


# ----------------------------------------------------------------------------------------- unwrapping
def test_continuous_euler_crosses_180_without_a_flip():
    """A rotation about z from 150 to 230 degrees: frame by frame the angle jumps from +180 to -180."""
    z = np.linspace(150.0, 230.0, 41)
    q = quat_wxyz(Rotation.from_euler("ZXY", np.stack([z, np.full_like(z, 20.0), np.full_like(z, -30.0)], 1),
                                      degrees=True))
    per_frame = euler_zxy_from_quat(q)
    assert max_step_degrees(per_frame) > 350.0  # what the files had: a 360-degree jump
    smooth = continuous_euler_zxy(per_frame)
    assert max_step_degrees(smooth) == pytest.approx(2.0, abs=1e-6)
    np.testing.assert_allclose(smooth[:, 0], z, atol=1e-6)  # the equivalent angle nearest the previous frame
    np.testing.assert_allclose(matrix_from_euler_zxy(smooth), matrix_from_euler_zxy(per_frame), atol=1e-9)


def test_continuous_euler_takes_the_other_form_past_90_degrees_of_x():
    """x from 60 to 130 degrees: ZXY keeps x within +-90, so past 90 both z and y jump by 180 frame by frame;
    the continuous channels take the rotation's other form (z + 180, 180 - x, y + 180) and run on."""
    x = np.linspace(60.0, 130.0, 36)
    truth = np.stack([np.full_like(x, 10.0), x, np.full_like(x, 25.0)], axis=1)
    per_frame = euler_zxy_from_quat(quat_wxyz(Rotation.from_euler("ZXY", truth, degrees=True)))
    assert max_step_degrees(per_frame) > 170.0
    smooth = continuous_euler_zxy(per_frame)
    np.testing.assert_allclose(smooth, truth, atol=1e-6)
    np.testing.assert_allclose(matrix_from_euler_zxy(smooth), matrix_from_euler_zxy(truth), atol=1e-9)


def test_continuous_euler_random_walk_keeps_every_rotation():
    rng = np.random.default_rng(3)
    steps = Rotation.from_rotvec(rng.normal(scale=0.25, size=(400, 3)))
    rotations = [Rotation.identity()]
    for step in steps:
        rotations.append(step * rotations[-1])
    q = quat_wxyz(Rotation.concatenate(rotations))
    smooth = continuous_euler_zxy(euler_zxy_from_quat(q))
    assert max_step_degrees(smooth) < 180.0
    assert max_step_degrees(smooth) < max_step_degrees(euler_zxy_from_quat(q))
    np.testing.assert_allclose(matrix_from_euler_zxy(smooth), Rotation.from_quat(
        np.concatenate([q[:, 1:], q[:, :1]], axis=1)).as_matrix(), atol=1e-9)


def test_unwrap_degrees_and_quaternion_signs_across_gaps():
    phi = np.array([170.0, 178.0, -176.0, np.nan, -168.0, 179.0])
    np.testing.assert_allclose(unwrap_degrees(phi), [170.0, 178.0, 184.0, np.nan, 192.0, 179.0])
    q = np.array([[0.1, 0.0, 0.995, 0.0], [-0.05, 0.0, -0.998, 0.0], [np.nan] * 4, [0.02, 0.0, 0.999, 0.0]])
    q[[0, 1, 3]] /= np.linalg.norm(q[[0, 1, 3]], axis=1, keepdims=True)
    out = continuous_quaternions(q)
    assert out[1, 2] > 0 and np.isnan(out[2]).all() and out[3, 2] > 0


def test_angles_csv_phi_is_continuous(tmp_path):
    points = turning_skeleton(48)
    path = write_angles_csv(tmp_path / "angles.csv", points, np.arange(48) / 24.0)
    with open(path, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    table = np.array(rows, dtype=float)
    phi = table[:, header.index("SPINE_BASE-LEFT_HIP_phi_deg")]
    assert max_step_degrees(phi) < 20.0 and np.ptp(phi) > 300.0  # a whole turn, unwrapped
    quats = table[:, [i for i, name in enumerate(header) if name.endswith(("_qw", "_qx", "_qy", "_qz"))]]
    assert max_step_degrees(quats) < 0.5  # no sign flips (values, not degrees)


# ----------------------------------------------------------------------------------------- the BVH file
def test_bvh_channels_never_flip_on_a_spinning_body(tmp_path):
    points = turning_skeleton(48, turns=1.5)
    bvh = write_bvh(tmp_path / "spin.bvh", points, frame_time=1 / 24)
    read = read_bvh(tmp_path / "spin.bvh")
    assert max_step_degrees(rotation_channels(read)) < 30.0
    rotation_steps = rotation_steps_degrees(read)  # the rotations themselves: at most the arms' first step
    assert rotation_steps.shape == (47, len(read.joints))
    assert rotation_steps.max() == pytest.approx(200 * np.sin(np.pi / 48), abs=0.01)
    joints = build_hierarchy(np.ones(len(BONES)))
    before = bvh_motion(points, joints, 100.0, continuous=False)
    assert max_step_degrees(before[:, 3:]) > 300.0  # per-frame angles, as written before
    np.testing.assert_allclose(bvh.motion[:, :3], before[:, :3])
    got = vertex_positions(bvh_world_positions(read))
    assert np.abs(got - rigid_points(points)).max() < 1e-3  # cm
    assert np.abs(got - points * 100.0).max() < 1e-3        # constant bone lengths: the points themselves


@pytest.mark.parametrize("up", ["y", "z"])
@pytest.mark.parametrize("root_motion", [True, False])
def test_bvh_up_axis_and_root_motion(tmp_path, up, root_motion):
    points = turning_skeleton(24)
    write_bvh(tmp_path / "x.bvh", points, frame_time=1 / 24, up=up, root_motion=root_motion)
    read = read_bvh(tmp_path / "x.bvh")
    got = vertex_positions(bvh_world_positions(read))
    expected = rigid_points(points, up=up, root_motion=root_motion)
    assert np.abs(got - expected).max() < 1e-3
    vertical = 1 if up == "y" else 2
    head_above_hips = got[:, VERTEX_INDEX["NOSE"], vertical] - got[:, ROOT, vertical]
    assert (head_above_hips > 0).all()
    offsets = {j.name: j.offset for j in read.joints}
    if up == "z":  # the rest pose stands along z, arms out along x, the toes towards -y (Blender's front)
        assert offsets["NECK_BASE"][2] > 0 and offsets["LEFT_ELBOW"][0] > 0
        assert np.allclose(Z_UP_FROM_Y_UP @ REST_DIRECTIONS[0], [1.0, 0.0, 0.0])
    horizontal = [a for a in range(3) if a != vertical]
    root = read.motion[:, :3]
    if root_motion:
        assert np.ptp(root[:, 0]) > 70.0  # walked 0.8 m along x
    else:
        assert np.all(root[:, horizontal] == 0.0) and np.ptp(root[:, vertical]) < 1e-6 + np.ptp(points[:, ROOT, 1]) * 100


def test_bvh_refuses_an_unknown_up_axis(tmp_path):
    with pytest.raises(ValueError, match="up must be one of y, z"):
        write_bvh(tmp_path / "x.bvh", turning_skeleton(4), frame_time=0.04, up="x")


# ----------------------------------------------------------------------------------------- Blender
def _require_blender():
    from pose_smoothing.blender_roundtrip import blender_unavailable

    reason = blender_unavailable()
    if reason:
        pytest.skip(f"Blender round trip not run: {reason}")


@pytest.mark.parametrize("up", ["y", "z"])
def test_blender_roundtrip_matches_the_skeleton(tmp_path, up):
    """Blender's own importer (bpy) reads the file; its bones' world positions over the clip equal the
    skeleton the file animates, in the file's frame and centimetres, and no bone changes length."""
    _require_blender()
    from pose_smoothing.blender_roundtrip import blender_positions, bone_length_cv, roundtrip_errors

    points = turning_skeleton(36, turns=1.2)
    write_bvh(tmp_path / "clip.bvh", points, frame_time=1 / 25, up=up)
    positions, info = blender_positions(tmp_path / "clip.bvh", up)
    got = vertex_positions(positions)
    errors = roundtrip_errors(rigid_points(points, up=up), got)
    assert errors["max"] < 0.01, errors  # cm
    assert bone_length_cv(got, BONES) < 1e-4
    assert info["frames"] == 36 and info["scene_fps"] == pytest.approx(25.0, rel=1e-5)


@pytest.mark.real_data
def test_blender_roundtrip_of_a_short_extracted_clip(tmp_path):
    """The real walking video's first second through the whole extract command, then Blender."""
    _require_blender()
    from pose_smoothing.blender_roundtrip import blender_positions, bone_length_cv, roundtrip_errors
    from pose_smoothing.extract import run

    video = shared_data_path("pose_smoothing", "assemblyai_walking.mp4")
    run(video, tmp_path, progress=False, max_frames=30)
    own = vertex_positions(bvh_world_positions(read_bvh(tmp_path / "skeleton.bvh")))
    positions, info = blender_positions(tmp_path / "skeleton.bvh", "y")
    got = vertex_positions(positions)
    errors = roundtrip_errors(own, got)
    assert errors["mean"] <= 0.5 and errors["max"] <= 2.0, errors
    assert bone_length_cv(got, BONES) <= 0.001
    assert info["frames"] == 30 and info["scene_fps"] == pytest.approx(30.0, rel=1e-5)


@pytest.mark.real_data
def test_extract_up_z_without_root_motion(tmp_path):
    """The command's export options: a Z-up file whose root stays in place horizontally, frame time from the video."""
    from pose_smoothing.extract import main

    video = shared_data_path("pose_smoothing", "assemblyai_walking.mp4")
    assert main([str(video), "-o", str(tmp_path), "--max-frames", "12", "--quiet", "--up", "z",
                 "--root-motion", "off"]) == 0
    read = read_bvh(tmp_path / "skeleton.bvh")
    assert read.frame_time == pytest.approx(1 / 30, rel=1e-6) and read.motion.shape[0] == 12
    assert np.all(read.motion[:, :2] == 0.0)  # x, y: no horizontal root motion; z (up) moves
    offsets = {j.name: j.offset for j in read.joints}
    assert offsets["NECK_BASE"][2] > 0 and abs(offsets["NECK_BASE"][1]) < 1e-9
    got = vertex_positions(bvh_world_positions(read))
    assert (got[:, VERTEX_INDEX["NOSE"], 2] > got[:, VERTEX_INDEX["LEFT_ANKLE"], 2]).all()
