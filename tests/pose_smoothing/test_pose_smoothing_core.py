"""Unit tests of the numpy core: sequence container, gap filling, filters, skeleton tree, angles, writers."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from core.io import InputError
from pose_smoothing.bvh import bvh_world_positions, complete_frames, read_bvh, write_bvh
from pose_smoothing.data import (LANDMARK_NAMES, LandmarkSequence, read_landmarks_json, write_landmarks_json)
from pose_smoothing.filters import (ConstantVelocityKalman, FixedLagKalman, KalmanParams, OneEuroFilter, OneEuroParams,
                                    PoseSmoother, savgol_array, smooth_sequence)
from pose_smoothing.gaps import fill_array, fill_gaps, gap_runs
from pose_smoothing.skeleton import (BONES, CHILDREN, PARENT, ROOT, VERTEX_INDEX, VERTEX_NAMES, euler_zxy_from_quat,
                                     forward_kinematics, forward_kinematics_spherical, local_rotations,
                                     matrix_from_euler_zxy, quat_to_matrix, spherical_angles, with_dummy_vertices)
from pose_smoothing.writers import write_angles_csv


def make_sequence(frames: int = 60, fps: float = 30.0, seed: int = 0, noise: float = 0.0) -> LandmarkSequence:
    """A smooth synthetic motion of 33 landmarks (circles of different phases) plus optional noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    base = rng.uniform(0.3, 0.7, size=(1, 33, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 33, 1))
    motion = 0.05 * np.sin(2 * np.pi * 0.5 * t[:, None, None] + phase + np.array([0, 1, 2]))
    image = base + motion + noise * rng.normal(size=(frames, 33, 3))
    world = (image - 0.5) * 2.0
    return LandmarkSequence(image=image, world=world, visibility=np.full((frames, 33), 0.9), timestamps=t, fps=fps,
                            image_size=(640, 480), source="synthetic")


# ----------------------------------------------------------------------------------------- container
def test_names_match_mediapipe():
    mp_pose = pytest.importorskip("mediapipe").solutions.pose
    assert LANDMARK_NAMES == tuple(landmark.name for landmark in mp_pose.PoseLandmark)


def test_sequence_validates_shapes_and_time():
    sequence = make_sequence(10)
    assert len(sequence) == 10 and sequence.detection_rate == 1.0
    with pytest.raises(ValueError, match="shape"):
        LandmarkSequence(image=np.zeros((10, 32, 3)), world=np.zeros((10, 33, 3)), visibility=np.zeros((10, 33)),
                         timestamps=np.arange(10.0), fps=1.0)
    with pytest.raises(ValueError, match="increase"):
        make_sequence(10).copy(timestamps=np.zeros(10))


# ----------------------------------------------------------------------------------------- gaps
def test_gap_runs():
    assert gap_runs(np.array([1, 0, 0, 1, 0, 1, 0], dtype=bool)) == [(1, 3), (4, 5), (6, 7)]


def test_linear_fill_short_gaps_only():
    column = np.array([0.0, np.nan, np.nan, 3.0, np.nan, np.nan, np.nan, np.nan, 8.0, np.nan])
    filled = fill_array(column[:, None], max_gap=3)[:, 0]
    np.testing.assert_allclose(filled[:4], [0, 1, 2, 3])
    assert np.isnan(filled[4:8]).all()      # 4 frames > max_gap: left as a gap
    assert filled[9] == 8.0                 # trailing gap holds the last value


def test_neighbour_mean_uses_left_and_right_neighbours():
    column = np.array([1.0, 5.0, np.nan, np.nan, 9.0, np.nan])
    filled = fill_array(column[:, None], max_gap=5, method="neighbour-mean")[:, 0]
    # left neighbour of the gap is 5 (index 1, searching backwards), right is 9
    np.testing.assert_allclose(filled, [1, 5, 7, 7, 9, 9])


def test_fill_gaps_treats_low_visibility_as_gap_and_marks_filled():
    sequence = make_sequence(20)
    sequence.image[5:8] = np.nan                  # no person
    sequence.visibility[5:8] = 0.0
    sequence.visibility[12, 3] = 0.1               # one unreliable landmark
    original = sequence.image[12, 3].copy()
    filled = fill_gaps(sequence, max_gap=5, visibility_threshold=0.5)
    assert np.isfinite(filled.image).all() and np.isfinite(filled.world).all()
    np.testing.assert_allclose(filled.image[12, 3], (sequence.image[11, 3] + sequence.image[13, 3]) / 2)
    assert not np.allclose(filled.image[12, 3], original)
    assert filled.visibility[6, 0] == 0.5 and filled.visibility[12, 3] == 0.5


def test_all_gap_sequence_is_a_clear_error():
    sequence = LandmarkSequence.empty(5, fps=25.0, source="clip.mp4")
    with pytest.raises(InputError, match="clip.mp4: no frame with a detected person"):
        fill_gaps(sequence)
    with pytest.raises(InputError, match="no frame"):
        fill_gaps(make_sequence(5).copy(visibility=np.zeros((5, 33))))  # every landmark below the threshold


# ----------------------------------------------------------------------------------------- filters
def reference_one_euro(values, timestamps, params, frequency, scale=1.0):
    """Scalar transcription of MediaPipe's OneEuroFilter::Apply (util/filtering/one_euro_filter.cc)."""
    out, raw, smoothed, derivative, last = [], None, None, None, None

    def alpha(cutoff):
        return 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) / (1.0 / frequency))

    for value, time in zip(values, timestamps):
        if last is not None:
            frequency = 1.0 / (time - last)
        last = time
        dvalue = 0.0 if raw is None else (value - raw) * scale * frequency
        derivative = dvalue if derivative is None else derivative + alpha(params.derivate_cutoff) * (dvalue - derivative)
        cutoff = params.min_cutoff + params.beta * abs(derivative)
        smoothed = value if smoothed is None else smoothed + alpha(cutoff) * (value - smoothed)
        raw = value
        out.append(smoothed)
    return np.array(out)


def test_one_euro_matches_mediapipe_formula():
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.02, 0.05, size=80))
    values = np.sin(times * 3) + 0.05 * rng.normal(size=80)
    params = OneEuroParams(min_cutoff=0.5, beta=2.0, derivate_cutoff=1.0)
    one_euro = OneEuroFilter(params, frequency=30.0)
    ours = np.array([one_euro(t, np.array([v]), 0.7)[0] for t, v in zip(times, values)])
    np.testing.assert_allclose(ours, reference_one_euro(values, times, params, 30.0, scale=0.7), rtol=1e-12)


@pytest.mark.parametrize("method", ["one-euro", "kalman"])
def test_streaming_equals_batch(method):
    sequence = fill_gaps(make_sequence(90, noise=0.005), max_gap=0)
    sequence.image[40:45] = np.nan   # a long gap that stays: filters restart after it
    batch = smooth_sequence(sequence, method)
    live = PoseSmoother(method, sequence.fps, sequence.image_size)
    for t in range(len(sequence)):
        image, world = live(sequence.timestamps[t], sequence.image[t], sequence.world[t])
        np.testing.assert_array_equal(image, batch.image[t])
        np.testing.assert_array_equal(world, batch.world[t])
    assert np.isnan(batch.image[40:45]).all() and np.isfinite(batch.image[45]).all()
    np.testing.assert_array_equal(batch.image[45], sequence.image[45])  # restart: first value passes through


@pytest.mark.parametrize("method, ceiling", [("one-euro", 0.97), ("kalman", 0.9), ("savgol", 0.6)])
def test_filters_reduce_noise(method, ceiling):
    """Realistic noise (0.3% of the image, ~2 px); MediaPipe's One Euro parameters smooth little at
    this level, the others more (see the README's simulation for numbers on real motion)."""
    clean = make_sequence(150, seed=3)
    noisy = make_sequence(150, seed=3, noise=0.003)
    smoothed = smooth_sequence(noisy, method)
    error = lambda s: np.sqrt(np.mean((s.image[20:] - clean.image[20:]) ** 2))  # noqa: E731
    assert error(smoothed) < ceiling * error(noisy), method


def test_kalman_matches_textbook_matrices():
    """The hand-expanded 2x2 covariance algebra against the matrix form, with uneven time steps."""
    params = KalmanParams(measurement_std=0.05, acceleration_std=1.5, initial_velocity_std=2.0)
    rng = np.random.default_rng(5)
    times = np.cumsum(rng.uniform(0.02, 0.06, size=60))
    values = np.sin(3 * times) + 0.05 * rng.normal(size=60)
    kalman = ConstantVelocityKalman(params)
    ours = [kalman(t, np.array([v]), 2.0)[0] for t, v in zip(times, values)]   # value_scale 2: noise halved
    r, q = (params.measurement_std / 2) ** 2, (params.acceleration_std / 2) ** 2
    x, p, reference = np.array([values[0], 0.0]), np.diag([r, (params.initial_velocity_std / 2) ** 2]), [values[0]]
    h = np.array([[1.0, 0.0]])
    for k in range(1, 60):
        dt = times[k] - times[k - 1]
        f = np.array([[1.0, dt], [0.0, 1.0]])
        x, p = f @ x, f @ p @ f.T + q * np.array([[dt ** 3 / 3, dt ** 2 / 2], [dt ** 2 / 2, dt]])
        gain = p @ h.T / (h @ p @ h.T + r)
        x = x + (gain * (values[k] - h @ x)).ravel()
        p = (np.eye(2) - gain @ h) @ p
        reference.append(x[0])
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)


def test_kalman_tracks_constant_velocity_without_lag():
    kalman = ConstantVelocityKalman(KalmanParams(measurement_std=0.01, acceleration_std=0.1))
    times = np.arange(200) / 30.0
    out = np.array([kalman(t, np.array([2.0 * t]))[0] for t in times])
    assert abs(out[-1] - 2.0 * times[-1]) < 1e-3


def test_savgol_keeps_polynomials_and_respects_gaps():
    t = np.arange(40, dtype=np.float64)
    column = 0.01 * t ** 2
    column[20:23] = np.nan
    out = savgol_array(column[:, None], fps=30.0)[:, 0]
    finite = np.isfinite(column)
    np.testing.assert_allclose(out[finite], column[finite], atol=1e-9)
    assert np.isnan(out[20:23]).all()


# ----------------------------------------------------------------------------------------- skeleton
def test_tree_contains_every_landmark_and_is_rooted_at_spine_base():
    assert len(VERTEX_NAMES) == 35 and len(BONES) == 34
    children = {c for _, c in BONES}
    assert children == set(range(35)) - {ROOT}             # every vertex but the root has one parent
    for vertex in range(35):                                # and every path leads to the root
        steps = 0
        while vertex != ROOT:
            vertex, steps = PARENT[vertex], steps + 1
            assert steps < 35
    assert PARENT[VERTEX_INDEX["MOUTH_LEFT"]] == VERTEX_INDEX["NOSE"]
    assert VERTEX_INDEX["MOUTH_RIGHT"] in CHILDREN[VERTEX_INDEX["NOSE"]]
    assert PARENT[VERTEX_INDEX["NECK_BASE"]] == ROOT


def test_dummy_vertices_are_means():
    points = with_dummy_vertices(make_sequence(3).world)
    np.testing.assert_allclose(points[:, VERTEX_INDEX["NECK_BASE"]],
                               points[:, [VERTEX_INDEX["LEFT_SHOULDER"], VERTEX_INDEX["RIGHT_SHOULDER"]]].mean(1))
    np.testing.assert_allclose(points[:, ROOT], points[:, [VERTEX_INDEX["LEFT_HIP"], VERTEX_INDEX["RIGHT_HIP"]]].mean(1))


def test_spherical_round_trip_and_vertical_bones():
    points = with_dummy_vertices(make_sequence(30, noise=0.01).world)
    points[0, VERTEX_INDEX["LEFT_KNEE"]] = points[0, VERTEX_INDEX["LEFT_HIP"]] + [0, 0.4, 0]  # straight up
    points[1, VERTEX_INDEX["LEFT_KNEE"]] = points[1, VERTEX_INDEX["LEFT_HIP"]]                # zero length
    r, theta, phi = spherical_angles(points)
    assert np.isfinite(theta).all() and np.isfinite(phi).all()
    rebuilt = forward_kinematics_spherical(points[:, ROOT], r, theta, phi)
    assert np.abs(rebuilt - points).max() < 1e-6


def test_quaternion_round_trip():
    points = with_dummy_vertices(make_sequence(30, noise=0.01).world)
    root, root_q, local, lengths = local_rotations(points)
    np.testing.assert_allclose(np.linalg.norm(local, axis=-1), 1.0, atol=1e-12)
    assert np.abs(forward_kinematics(root, root_q, local, lengths) - points).max() < 1e-6


def test_euler_zxy_matches_matrices():
    rng = np.random.default_rng(2)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(matrix_from_euler_zxy(euler_zxy_from_quat(q)), quat_to_matrix(q), atol=1e-9)
    # ZXY means R = Rz Rx Ry
    a, b, c = np.radians([30.0, 20.0, 10.0])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    np.testing.assert_allclose(matrix_from_euler_zxy(np.array([30.0, 20.0, 10.0])), rz @ rx @ ry, atol=1e-12)


# ----------------------------------------------------------------------------------------- writers
def test_landmarks_json_schema_and_round_trip(tmp_path):
    sequence = make_sequence(6)
    sequence.image[2] = np.nan
    sequence.world[2] = np.nan
    sequence.image[3, 5] = np.nan
    path = write_landmarks_json(tmp_path / "landmarks.json", sequence)
    document = json.loads(path.read_text())
    assert document["frames"][2] is None and document["world_frames"][2] is None
    frame = document["frames"][0]
    assert set(frame) == set(LANDMARK_NAMES)
    assert set(frame["NOSE"]) == {"x", "y", "z", "visibility"}
    assert document["frames"][3][LANDMARK_NAMES[5]]["x"] is None
    assert len(document["timestamps"]) == 6 and document["fps"] == 30.0
    back = read_landmarks_json(path)
    np.testing.assert_allclose(back.image, sequence.image, atol=1e-6)
    np.testing.assert_allclose(back.timestamps, sequence.timestamps, atol=1e-6)
    # the original script's format: a bare list of {name: {x, y, z}}
    (tmp_path / "original.json").write_text(json.dumps(document["frames"][:2]))
    assert len(read_landmarks_json(tmp_path / "original.json")) == 2
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        read_landmarks_json(tmp_path / "bad.json")


def test_angles_csv_indexed_by_time(tmp_path):
    points = with_dummy_vertices(make_sequence(8).world)
    points[4] = np.nan
    path = write_angles_csv(tmp_path / "angles.csv", points, np.arange(8) / 30.0)
    with open(path, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header[0] == "time_s" and len(rows) == 8 and float(rows[1][0]) == pytest.approx(1 / 30, abs=1e-6)
    assert {"LEFT_KNEE-LEFT_ANKLE_theta_deg", "NOSE-MOUTH_LEFT_phi_deg", "LEFT_ELBOW-LEFT_WRIST_qw"} <= set(header)
    assert all(cell == "" for cell in rows[4][1:]) and all(cell != "" for cell in rows[3])


def test_bvh_structure_and_motion(tmp_path):
    rng = np.random.default_rng(4)
    frames = 12
    lengths = np.broadcast_to(rng.uniform(0.05, 0.4, size=34), (frames, 34))
    local = rng.normal(size=(frames, 34, 4))
    local /= np.linalg.norm(local, axis=-1, keepdims=True)
    root_q = np.tile([1.0, 0, 0, 0], (frames, 1))
    points = forward_kinematics(rng.normal(size=(frames, 3)), root_q, local, lengths)
    points[7] = np.nan  # a gap frame repeats the nearest complete one
    write_bvh(tmp_path / "skeleton.bvh", points, frame_time=1 / 25)
    bvh = read_bvh(tmp_path / "skeleton.bvh")
    assert bvh.motion.shape == (frames, bvh.channel_count)
    assert bvh.frame_time == pytest.approx(0.04)
    assert bvh.joints[0].name == "SPINE_BASE" and len(bvh.joints[0].channels) == 6
    assert all(j.channels == ("Zrotation", "Xrotation", "Yrotation") for j in bvh.joints[1:])
    assert bvh.channel_count == 6 + 3 * (len(bvh.joints) - 1)
    names = {j.name for j in bvh.joints}
    assert {"LEFT_KNEE", "NECK_BASE", "NOSE_TO_MOUTH_LEFT"} <= names
    positions = bvh_world_positions(bvh)
    expected = complete_frames(points) * 100.0  # centimetres
    for name in ("LEFT_KNEE", "RIGHT_WRIST", "NOSE"):
        assert np.abs(positions[name] - expected[:, VERTEX_INDEX[name]]).max() < 1e-3
    assert np.abs(positions["NOSE_TO_MOUTH_LEFT/end"] - expected[:, VERTEX_INDEX["MOUTH_LEFT"]]).max() < 1e-3


def test_bvh_refuses_all_gap_points(tmp_path):
    with pytest.raises(InputError, match="no frame has every landmark"):
        write_bvh(tmp_path / "x.bvh", np.full((3, 35, 3), np.nan), frame_time=0.04)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_animation_uses_mediapipe_estimates_for_invisible_landmarks():
    from pose_smoothing.extract import animation_sequence, clean_sequence

    raw = make_sequence(30, noise=0.002)
    raw.visibility[:, LANDMARK_NAMES.index("LEFT_ANKLE")] = 0.1   # never rated visible
    smoothed = clean_sequence(raw, "kalman", max_gap=10, visibility_threshold=0.5)
    assert np.isnan(smoothed.world[:, LANDMARK_NAMES.index("LEFT_ANKLE")]).all()   # a gap in landmarks.json
    animation, fraction = animation_sequence(raw, smoothed, "kalman", 10, None)
    assert np.isfinite(animation.world).all() and fraction == pytest.approx(1 / 33)
    np.testing.assert_array_equal(animation.world[:, 0], smoothed.world[:, 0])       # visible ones untouched


def test_causal_savgol_is_exact_on_quadratics_and_restarts_after_gaps():
    from pose_smoothing.filters import CausalSavGol

    stream = CausalSavGol(fps=30.0)
    t = np.arange(30, dtype=np.float64)
    values = 0.5 + 0.2 * t - 0.01 * t ** 2
    values[12] = np.nan
    out = np.array([stream(i / 30, np.array([v]))[0] for i, v in enumerate(values)])
    finite = np.isfinite(values)
    np.testing.assert_allclose(out[finite], values[finite], atol=1e-9)   # no lag on a quadratic motion
    assert np.isnan(out[12]) and out[13] == values[13]                   # restart: first value passes through


# ----------------------------------------------------------------------------------------- fixed-lag smoother
def reference_rts(values, times, params, value_scale):
    """Textbook Kalman filter + Rauch-Tung-Striebel smoother in matrix form, one coordinate, no gaps."""
    r, q = (params.measurement_std / value_scale) ** 2, (params.acceleration_std / value_scale) ** 2
    x, p = np.array([values[0], 0.0]), np.diag([r, (params.initial_velocity_std / value_scale) ** 2])
    filtered, covariances, predicted, predicted_cov, transitions = [x], [p], [None], [None], [None]
    h = np.array([[1.0, 0.0]])
    for k in range(1, len(values)):
        dt = times[k] - times[k - 1]
        f = np.array([[1.0, dt], [0.0, 1.0]])
        x, p = f @ x, f @ p @ f.T + q * np.array([[dt ** 3 / 3, dt ** 2 / 2], [dt ** 2 / 2, dt]])
        predicted.append(x), predicted_cov.append(p), transitions.append(f)
        gain = p @ h.T / (h @ p @ h.T + r)
        x = x + (gain * (values[k] - h @ x)).ravel()
        p = (np.eye(2) - gain @ h) @ p
        filtered.append(x), covariances.append(p)
    smoothed = [filtered[-1]]
    for k in range(len(values) - 2, -1, -1):
        gain = covariances[k] @ transitions[k + 1].T @ np.linalg.inv(predicted_cov[k + 1])
        smoothed.append(filtered[k] + gain @ (smoothed[-1] - predicted[k + 1]))
    return np.array([s[0] for s in smoothed[::-1]])


def test_fixed_lag_with_a_long_lag_is_the_full_rts_smoother():
    params = KalmanParams(measurement_std=0.05, acceleration_std=1.5, initial_velocity_std=2.0)
    rng = np.random.default_rng(6)
    times = np.cumsum(rng.uniform(0.02, 0.06, size=50))
    values = np.sin(3 * times) + 0.05 * rng.normal(size=50)
    for lag in (50, 80):
        smoother = FixedLagKalman(params, lag_frames=lag)
        assert all(smoother(t, np.array([v]), 2.0) is None for t, v in zip(times, values))
        ours = np.array([estimate[0] for estimate in smoother.flush()])
        np.testing.assert_allclose(ours, reference_rts(values, times, params, 2.0), rtol=1e-9, atol=1e-12)


def test_fixed_lag_estimate_of_a_frame_is_the_rts_of_the_frames_up_to_lag_later():
    params = KalmanParams(measurement_std=0.05, acceleration_std=1.5)
    rng = np.random.default_rng(7)
    times = np.arange(40) / 25.0
    values = np.sin(3 * times) + 0.05 * rng.normal(size=40)
    smoother = FixedLagKalman(params, lag_frames=3)
    outputs = [smoother(t, np.array([v])) for t, v in zip(times, values)]
    assert outputs[:3] == [None] * 3
    for frame in (0, 10, 30):  # returned at call frame + 3, it has seen frames 0 .. frame + 3
        expected = reference_rts(values[:frame + 4], times[:frame + 4], params, 1.0)[frame]
        assert outputs[frame + 3][0] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert len(smoother.flush()) == 3 and smoother.flush() == []


def test_fixed_lag_streaming_equals_batch_and_never_smooths_across_a_gap():
    sequence = fill_gaps(make_sequence(90, noise=0.005), max_gap=0)
    sequence.image[40:45] = np.nan
    batch = smooth_sequence(sequence, "fixed-lag", lag_frames=4)
    live = PoseSmoother("fixed-lag", sequence.fps, sequence.image_size, lag_frames=4)
    emitted = [live(sequence.timestamps[t], sequence.image[t], sequence.world[t]) for t in range(len(sequence))]
    assert emitted[:4] == [None] * 4
    emitted = emitted[4:] + live.flush()
    for t, (image, world) in enumerate(emitted):
        np.testing.assert_array_equal(image, batch.image[t])
        np.testing.assert_array_equal(world, batch.world[t])
    assert np.isnan(batch.image[40:45]).all() and np.isfinite(batch.image[:40]).all()
    # frames before the gap: what the filter alone gives on the frames up to the gap, smoothed backwards
    before_gap = smooth_sequence(sequence.copy(image=sequence.image[:40], world=sequence.world[:40],
                                               visibility=sequence.visibility[:40], timestamps=sequence.timestamps[:40]),
                                 "rts")
    np.testing.assert_allclose(batch.image[36:40], before_gap.image[36:40], rtol=1e-12)


def test_causal_filters_use_no_future_frames():
    sequence = make_sequence(60, noise=0.005)
    changed = sequence.copy()
    changed.image[30:] += 0.05
    changed.world[30:] -= 0.05
    for method in ("one-euro", "kalman"):
        np.testing.assert_array_equal(smooth_sequence(sequence, method).image[:30],
                                      smooth_sequence(changed, method).image[:30])
    lagged, lagged_changed = smooth_sequence(sequence, "fixed-lag", 4), smooth_sequence(changed, "fixed-lag", 4)
    np.testing.assert_array_equal(lagged.image[:26], lagged_changed.image[:26])   # frame t waits for t + 4 only
    assert not np.allclose(lagged.image[26:30], lagged_changed.image[26:30])


# ----------------------------------------------------------------------------------------- outliers
def test_outlier_simulation_moves_whole_limbs_for_one_or_two_frames():
    from pose_smoothing.simulate import LIMBS, NoiseModel, corrupt

    clean = make_sequence(400, fps=25.0)
    std = np.full((33, 3), 1e-9)  # next to no jitter: what differs from the truth is the jumps
    model = NoiseModel(outlier_rate=0.03)
    noisy, dropped, outliers = corrupt(clean, std, std, dropout=0.0, seed=2, model=model)
    assert outliers.any() and not dropped.any()
    moved = np.linalg.norm(noisy.image[..., :2] - clean.image[..., :2], axis=2) > 1e-6
    np.testing.assert_array_equal(moved, outliers)
    limb_sets = [set(limb) for limb in LIMBS.values()]
    for frame in np.flatnonzero(outliers.any(axis=1)):
        assert set(np.flatnonzero(outliers[frame])) in limb_sets or \
            any(set(np.flatnonzero(outliers[frame])) == a | b for a in limb_sets for b in limb_sets)
    runs = [end - start for column in outliers.T for start, end in gap_runs(~column)]
    assert max(runs) <= 2 * model.max_jump_frames  # two jumps in a row at most join up
    size = np.mean(np.ptp(clean.image[0, :, :2], axis=0))
    jump = np.linalg.norm(noisy.image[outliers][:, :2] - clean.image[outliers][:, :2], axis=1)
    assert jump.min() >= 0.1 * size * 0.99


def test_white_simulation_is_unchanged_by_the_outlier_machinery():
    from pose_smoothing.simulate import corrupt, correlated_noise

    clean = make_sequence(100, fps=25.0)
    std = np.full((33, 3), 0.002)
    noisy, dropped, outliers = corrupt(clean, std, std, seed=4)
    rng = np.random.default_rng(4)
    np.testing.assert_array_equal(noisy.image[~dropped], (clean.image + rng.normal(size=clean.image.shape) * std)[~dropped])
    assert not outliers.any()
    white = np.random.default_rng(0).normal(size=(20000, 2))
    ar = correlated_noise(white, 0.6)
    assert np.std(ar) == pytest.approx(1.0, rel=0.05)
    assert np.mean(ar[1:] * ar[:-1]) == pytest.approx(0.6, abs=0.05)


def test_outlier_rejection_finds_limb_jumps_and_the_chain_repairs_them():
    from pose_smoothing.extract import clean_sequence
    from pose_smoothing.gaps import outlier_mask
    from pose_smoothing.simulate import NoiseModel, corrupt

    clean = make_sequence(400, fps=25.0)
    std = np.full((33, 3), 0.001)
    noisy, dropped, outliers = corrupt(clean, std, std, dropout=0.0, seed=3, model=NoiseModel(outlier_rate=0.02))
    found = outlier_mask(noisy.image)
    judged = np.zeros_like(outliers)
    judged[3:-3] = True
    assert (found & outliers).sum() >= 0.95 * (outliers & judged).sum()    # nearly every jump found
    assert (found & ~outliers).sum() <= 0.01 * (~outliers).sum()           # few false alarms
    error = lambda s: np.sqrt(np.mean((s.image[outliers][:, :2] - clean.image[outliers][:, :2]) ** 2))  # noqa: E731
    kept = clean_sequence(noisy, "savgol", max_gap=10, visibility_threshold=0.5, outlier_threshold=0)
    rejected = clean_sequence(noisy, "savgol", max_gap=10, visibility_threshold=0.5)
    assert error(rejected) < 0.3 * error(kept)


# ----------------------------------------------------------------------------------------- plots
def test_gap_spans_cover_each_unseen_run_by_half_frames():
    from pose_smoothing.render import gap_spans

    times = np.arange(10) / 10.0
    visible = np.array([1, 1, 0, 1, 0, 0, 0, 1, 1, 0], dtype=bool)
    spans = gap_spans(times, visible)
    np.testing.assert_allclose(spans, [(0.15, 0.25), (0.35, 0.65), (0.85, 0.95)])
    assert gap_spans(times, np.ones(10, dtype=bool)) == []


def test_trajectory_plot_shades_gaps_and_draws_no_line_through_them(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from pose_smoothing import render

    raw = make_sequence(75, fps=25.0)
    wrist = LANDMARK_NAMES.index("RIGHT_WRIST")
    raw.visibility[35:65, wrist] = 0.1  # not seen for 1.2 s: longer than --max-gap, stays a gap
    raw.visibility[68:, wrist] = 0.1    # seen again briefly, then lost until the end
    raw.visibility[10:13, wrist] = 0.1  # and a short gap the fill bridges
    smoothed = smooth_sequence(fill_gaps(raw, max_gap=10), "kalman")
    assert np.isfinite(smoothed.image[68:, wrist]).all()  # the fill holds the last value: a flat line to hide
    figures = []
    monkeypatch.setattr(render, "save_figure", lambda figure, target: figures.append(figure) or target)
    render.plot_trajectory(raw, smoothed, "RIGHT_WRIST", tmp_path / "t.png")
    axes = figures[0].axes[0]
    spans = sorted((patch.get_x(), patch.get_x() + patch.get_width()) for patch in axes.patches)
    np.testing.assert_allclose(spans, [(9.5 / 25, 12.5 / 25), (34.5 / 25, 64.5 / 25), (67.5 / 25, 74.5 / 25)])
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels.count("not visible") == 1 and "filled across a gap" in labels
    for line in axes.lines:
        y = np.asarray(line.get_data()[1], dtype=float)
        assert np.isnan(y[35:65]).all() and np.isnan(y[68:]).all()  # no line where the wrist was not seen
        if line.get_label() == "filled across a gap":
            assert np.isfinite(y[10:13]).all()


def test_rts_is_offline_only():
    with pytest.raises(ValueError, match="frame-by-frame"):
        PoseSmoother("rts", fps=25.0)
