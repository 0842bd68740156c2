"""The benchmark behind `make bench`: results/pose_smoothing.json and the README tables.

1. Real videos (../shared/data/pose_smoothing): the whole extract command on the dancer (1,571 frames)
   and the walker, timed end to end (decode, pose, fill, smooth, angles, writes) -> frames per second,
   detection rate, and jitter (mean |second difference| of image x, y) raw vs each filter. The
   machine's 1-minute load average is recorded before and after: the reference machine is shared.
2. Two simulations with ground truth (pose_smoothing.simulate): the dancer's raw landmarks smoothed
   with a 3 Hz zero-phase low-pass are the truth; noise of the size MediaPipe shows on each landmark
   is added, white (`white`) or correlated in time with limb jumps (`outliers`), and 10% of the
   frames are dropped in bursts of 1-8. Per filter: RMSE of image x, y on the observed frames
   (reduction against raw, and its fraction of the oracle's reduction), RMSE on the dropped frames
   after filling, lag in frames, jitter. The oracle is the truth's own 3 Hz low-pass applied to the
   noisy data (on `outliers` it is also told which values are outliers): about the best a smoother
   can do here.

Lag, three numbers per filter:
  lag_frames     the shift (sub-frame) that best aligns the output with the truth, frame by frame as
                 indexed (positive: late). For a lagged filter the output of frame t is indexed t.
  latency_frames how many later frames the estimate of a frame waits for: 0 for a causal filter,
                 K for fixed-lag-K, null for the offline ones (they wait for the whole recording).
  delay_frames   what a live user sees: latency_frames + lag_frames (null offline).

3. The BVH of each real video (`bvh.<video>`): the largest step of any rotation channel between frames,
   now (continuous channels) and as the files had it before (each frame's angles on their own, in
   (-180, 180]); the round trip through Blender's own importer (bpy, `blender_roundtrip`; Y-up as written,
   and the same points written Z-up) and through the project's reader: mean and largest distance in cm
   between the skeleton the file animates (`bvh.rigid_points`: every frame's rotations with the median
   bone lengths) and the positions read back; the largest coefficient of variation of a bone's length
   after Blender's import; and how far those fixed-length bones are from MediaPipe's own points
   (`stretch`). Without the Blender environment the Blender keys are null with the reason.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401
from core.cli import OutputFolder, run_main  # noqa: E402
from core.env import REPO_ROOT  # noqa: E402
from core.results import markdown_table, publish_table, write_results  # noqa: E402
from pose_smoothing.blender_roundtrip import (blender_positions, blender_unavailable, bone_length_cv,  # noqa: E402
                                              roundtrip_errors)
from pose_smoothing.bvh import (build_hierarchy, bvh_motion, bvh_world_positions, complete_frames, read_bvh,  # noqa: E402
                                rigid_points, rotation_channels, rotation_steps_degrees, vertex_positions, write_bvh)
from pose_smoothing.data import read_landmarks_json  # noqa: E402
from pose_smoothing.extract import (DEFAULT_OUTLIER_THRESHOLD, animation_sequence, clean_sequence, jitter_pair,  # noqa: E402
                                    run)
from pose_smoothing.gaps import mask_low_visibility, outlier_mask  # noqa: E402
from pose_smoothing.simulate import (SIMULATIONS, corrupt, ground_truth, noise_model, oracle_lowpass, score,  # noqa: E402
                                     wiener_bounds)
from pose_smoothing.skeleton import BONES, VERTEX_INDEX, max_step_degrees, skeleton_points  # noqa: E402

TASK = "pose_smoothing"
SHARED = Path(os.environ.get("SHARED_DATA_DIR", REPO_ROOT.parent / "shared" / "data")) / TASK
# bench row -> (extract filter, lag frames); latency None = offline
FILTERS = {"one-euro": ("one-euro", 0), "kalman": ("kalman", 0), "fixed-lag-1": ("fixed-lag", 1),
           "fixed-lag-2": ("fixed-lag", 2), "rts": ("rts", 0), "savgol": ("savgol", 0),
           "neighbour-mean": ("neighbour-mean", 0)}
LATENCY = {"one-euro": 0, "kalman": 0, "fixed-lag-1": 1, "fixed-lag-2": 2}
TARGETS = {"live": 0.70, "nearly_live": 0.90, "outliers_offline_reduction": 0.60, "fps_dancer": 25.0}
BVH_TARGETS = {"max_channel_step_degrees": 180.0, "roundtrip_mean_error_cm": 0.5, "roundtrip_max_error_cm": 2.0,
               "bone_length_cv": 0.001}  # step: below; the others: at most


def smooth(raw, name: str):
    method, lag = FILTERS[name]
    return clean_sequence(raw, method, max_gap=10, visibility_threshold=0.5, lag_frames=lag)


def real_video(path: Path, out_dir: Path) -> dict:
    """Extract (timed, one-euro as the command's default), then every filter's jitter on the same raw landmarks."""
    load_before = os.getloadavg()[0]
    summary = run(path, out_dir, "one-euro", progress=False)
    load_after = os.getloadavg()[0]
    raw = read_landmarks_json(out_dir / "raw_landmarks.json")
    seen = mask_low_visibility(raw, 0.5)
    judged = np.isfinite(seen.image[..., 0])
    rejected = outlier_mask(seen.image, DEFAULT_OUTLIER_THRESHOLD) & judged
    jitter_reduction, jitter_raw = {}, None
    for name in FILTERS:
        jitter_raw, smoothed_jitter = jitter_pair(raw, smooth(raw, name))
        jitter_reduction[name] = 1.0 - smoothed_jitter / jitter_raw
    return {"frames": summary["frames"], "fps": summary["processing_fps"], "pose_fps": summary["pose_fps"],
            "frames_per_cpu_second": summary["frames_per_cpu_second"],
            "detection_rate": summary["detection_rate"], "truncated": summary["truncated"],
            "load_average_1min": [load_before, load_after],
            "outliers_rejected_fraction": float(rejected.sum() / max(judged.sum(), 1)),
            "jitter_raw": jitter_raw, "jitter_reduction": jitter_reduction}


def bvh_checks(out_dir: Path, picture: Path | None = None) -> dict:
    """The extraction's skeleton.bvh (Y-up, root motion, one-euro as extract's default) against the skeleton it
    animates: channel steps now and before, the round trips through Blender and the project's reader."""
    raw = read_landmarks_json(out_dir / "raw_landmarks.json")
    animation, _ = animation_sequence(raw, smooth(raw, "one-euro"), "one-euro", max_gap=10, fill=None)
    points = complete_frames(skeleton_points(animation))      # what extract wrote, from the same raw landmarks
    written = read_bvh(out_dir / "skeleton.bvh")
    expected = rigid_points(points)                             # cm, the file's frame
    own = vertex_positions(bvh_world_positions(written))
    before = bvh_motion(points, build_hierarchy(np.ones(len(BONES))), 100.0, continuous=False)
    own_errors = roundtrip_errors(expected, own)
    stretch = roundtrip_errors(points * 100.0, expected)
    channels, turns = rotation_channels(written), rotation_steps_degrees(written)
    steps = np.abs(np.diff(channels, axis=0)).max(axis=2)                    # (frames - 1, joints)
    frame, joint = np.unravel_index(np.argmax(steps), steps.shape)
    row = {"frames": len(points), "frame_time": written.frame_time,
           "max_channel_step_degrees": max_step_degrees(channels),
           "max_channel_step_degrees_before": max_step_degrees(before[:, 3:]),
           # where the largest step is, and how far that joint's rotation itself turned there
           "max_channel_step_at": {"frame": int(frame), "joint": written.joints[joint].name,
                                   "rotation_step_degrees": float(turns[frame, joint])},
           "max_rotation_step_degrees": float(turns.max()),
           "channel_steps_over_90_degrees": int((np.abs(np.diff(channels, axis=0)) > 90).sum()),
           "channel_steps_over_90_degrees_before": int((np.abs(np.diff(before[:, 3:], axis=0)) > 90).sum()),
           "own_reader_roundtrip_mean_error_cm": own_errors["mean"],
           "own_reader_roundtrip_max_error_cm": own_errors["max"],
           "own_reader_bone_length_cv": bone_length_cv(own, BONES),
           "stretch_mean_cm": stretch["mean"], "stretch_max_cm": stretch["max"]}
    reason = blender_unavailable()
    row["blender"] = None if reason else {}
    if reason:
        row.update({"roundtrip_mean_error_cm": None, "roundtrip_max_error_cm": None, "bone_length_cv": None,
                    "blender_unavailable": reason})
        return row
    frame = None
    if picture is not None:  # the frame with the hands furthest apart, for the README's picture
        frame = int(np.argmax(np.linalg.norm(points[:, VERTEX_INDEX["LEFT_WRIST"]] - points[:, VERTEX_INDEX["RIGHT_WRIST"]],
                                             axis=-1)))
    positions, info = blender_positions(out_dir / "skeleton.bvh", "y", render=picture, render_frame=frame or 0)
    got = vertex_positions(positions)
    errors = roundtrip_errors(expected, got)
    write_bvh(out_dir / "skeleton_z_up.bvh", points, written.frame_time, up="z")
    z_positions, _ = blender_positions(out_dir / "skeleton_z_up.bvh", "z")
    z_got = vertex_positions(z_positions)
    z_errors = roundtrip_errors(rigid_points(points, up="z"), z_got)
    row.update({"roundtrip_mean_error_cm": errors["mean"], "roundtrip_max_error_cm": errors["max"],
                "bone_length_cv": bone_length_cv(got, BONES),
                "z_up": {"roundtrip_mean_error_cm": z_errors["mean"], "roundtrip_max_error_cm": z_errors["max"],
                         "bone_length_cv": bone_length_cv(z_got, BONES)},
                "blender": {**info, "picture": None if picture is None else os.path.relpath(picture, REPO_ROOT),
                            "picture_frame": frame}})
    return row


def simulation(raw_path: Path, name: str, seed: int) -> dict:
    raw = read_landmarks_json(raw_path)
    clean, image_std, world_std = ground_truth(raw)
    model = noise_model(name, raw, clean)
    noisy, dropped, outliers = corrupt(clean, image_std, world_std, dropout=0.10, seed=seed, model=model)
    scored = lambda estimate: score(estimate, clean, dropped, outliers=outliers if outliers.any() else None)  # noqa: E731
    baseline = scored(noisy)
    oracle = scored(oracle_lowpass(noisy, outliers=outliers if outliers.any() else None))
    oracle_reduction = 1.0 - oracle.rmse / baseline.rmse
    width = raw.image_size[0] or 1
    rows = {}
    for filter_name, scores in [(f, scored(smooth(noisy, f))) for f in FILTERS] + [("oracle", oracle)]:
        reduction = 1.0 - scores.rmse / baseline.rmse
        latency = LATENCY.get(filter_name)
        rows[filter_name] = {
            "rmse_reduction": reduction, "fraction_of_oracle": reduction / oracle_reduction,
            "lag_frames": scores.lag_frames, "latency_frames": latency,
            "delay_frames": None if latency is None else latency + scores.lag_frames,
            "rmse_px": scores.rmse * width, "rmse_filled_px": scores.rmse_filled * width,
            "rmse_outliers_px": scores.rmse_outliers * width, "jitter_px": scores.jitter * width,
        }
    return {"filters": rows, "frames": len(raw), "seed": seed, "dropped_fraction": float(dropped.mean()),
            "outlier_fraction": float(outliers.mean()), "jitter_correlation": model.correlation,
            "outlier_rate": model.outlier_rate, "noise_std_px_mean": float(image_std[..., :2].mean() * width),
            "raw_rmse_px": baseline.rmse * width, "raw_rmse_outliers_px": baseline.rmse_outliers * width,
            "wiener_bounds": dict(zip(("causal", "non_causal"), wiener_bounds(clean, image_std))) if name == "white"
            else None}


def fmt(value, pattern: str) -> str:
    return "-" if value is None or value != value else format(value, pattern)


def tables(results: dict) -> str:
    white, outliers = results["simulation"]["white"], results["simulation"]["outliers"]
    header = ["filter", "use", "RMSE reduction, white (of oracle)", "lag / latency / delay, white (frames)",
              "RMSE reduction, outliers (of oracle)", "RMSE px on outlier values", "jitter reduction, dancer",
              "jitter reduction, walker"]
    use = {"one-euro": "live", "kalman": "live", "fixed-lag-1": "nearly live", "fixed-lag-2": "nearly live",
           "rts": "offline", "savgol": "offline", "neighbour-mean": "offline (original)", "oracle": "bound"}
    rows = []
    for name in (*FILTERS, "oracle"):
        w, o = white["filters"][name], outliers["filters"][name]
        rows.append([name, use[name], f"{w['rmse_reduction']:.1%} ({w['fraction_of_oracle']:.2f})",
                     f"{w['lag_frames']:+.2f} / {fmt(w['latency_frames'], 'd')} / {fmt(w['delay_frames'], '+.2f')}",
                     f"{o['rmse_reduction']:.1%} ({o['fraction_of_oracle']:.2f})", f"{o['rmse_outliers_px']:.2f}",
                     fmt(results["dancer"]["jitter_reduction"].get(name), ".1%"),
                     fmt(results["walker"]["jitter_reduction"].get(name), ".1%")])
    bounds = white["wiener_bounds"]
    first = markdown_table(header, rows)
    real = markdown_table(
        ["video", "frames", "whole extract command (frames/s)", "the same per CPU second (all threads)",
         "MediaPipe alone (frames/s)", "person detected", "load average (1 min) before / after",
         "values rejected as outliers (offline)", "truncated"],
        [[f"{label}", results[key]["frames"], f"{results[key]['fps']:.1f}", f"{results[key]['frames_per_cpu_second']:.1f}",
          f"{results[key]['pose_fps']:.1f}",
          f"{results[key]['detection_rate']:.1%}",
          " / ".join(f"{v:.1f}" for v in results[key]["load_average_1min"]),
          f"{results[key]['outliers_rejected_fraction']:.1%}", "yes" if results[key]["truncated"] else "no"]
         for label, key in (("dancer (518x496, 25 fps)", "dancer"), ("walker (1280x720, 30 fps)", "walker"))])
    return (f"{first}\n\n"
            f"Simulations (dancer, noise seed {white['seed']}; parameters chosen on seed 1): `white`: raw RMSE "
            f"{white['raw_rmse_px']:.2f} px at 518 px wide, white noise; `outliers`: raw RMSE "
            f"{outliers['raw_rmse_px']:.2f} px, jitter AR(1) {outliers['jitter_correlation']:.2f} (fitted to the "
            f"dancer's residual spectrum), limb jumps on {outliers['outlier_rate']:.0%} of the frames "
            f"({outliers['outlier_fraction']:.2%} of the landmark values, raw RMSE on them "
            f"{outliers['raw_rmse_outliers_px']:.1f} px); {white['dropped_fraction']:.0%} of frames dropped in both. "
            f"`oracle`: the truth's own 3 Hz zero-phase low-pass (on `outliers` told which values are outliers). "
            f"Lag: best-aligning shift against the truth (positive: late); latency: later frames an estimate waits "
            f"for; delay = latency + lag, what a live user sees. Linear-filter bounds for this truth with white noise "
            f"(Wiener, from its spectrum): causal {bounds['causal']:.1%}, non-causal {bounds['non_causal']:.1%} "
            f"RMSE reduction.\n\n{real}\n\n{bvh_table(results)}\n\n"
            f"Measured by `python -m pose_smoothing.bench` on {results['machine']}.")


def bvh_table(results: dict) -> str:
    rows = []
    for label, key in (("dancer", "dancer"), ("walker", "walker")):
        row = results["bvh"][key]
        blender = row["blender"] or {}
        at = row["max_channel_step_at"]
        rows.append([label, f"{row['max_channel_step_degrees_before']:.1f} / {row['max_channel_step_degrees']:.1f}",
                     f"{at['rotation_step_degrees']:.1f} ({at['joint']}, frame {at['frame']})",
                     f"{fmt(row['roundtrip_mean_error_cm'], '.5f')} / {fmt(row['roundtrip_max_error_cm'], '.5f')}",
                     f"{fmt((row.get('z_up') or {}).get('roundtrip_mean_error_cm'), '.5f')} / "
                     f"{fmt((row.get('z_up') or {}).get('roundtrip_max_error_cm'), '.5f')}",
                     f"{row['own_reader_roundtrip_mean_error_cm']:.5f} / {row['own_reader_roundtrip_max_error_cm']:.5f}",
                     fmt(row["bone_length_cv"], ".2e"), fmt(blender.get("scene_fps"), ".2f"),
                     f"{row['stretch_mean_cm']:.2f} / {row['stretch_max_cm']:.1f}"])
    version = next((results["bvh"][k]["blender"]["blender"] for k in ("dancer", "walker") if results["bvh"][k]["blender"]),
                   None)
    table = markdown_table(
        ["BVH of", "largest channel step, before / now (degrees)",
         "the rotation's own turn there (degrees; joint, frame)", "Blender round trip, Y-up: mean / max (cm)",
         "Blender, Z-up file: mean / max (cm)", "project's reader: mean / max (cm)",
         "bone length CV after Blender's import (largest bone)", "Blender scene frame rate",
         "fixed-length bones vs MediaPipe's points: mean / max (cm)"], rows)
    note = (f"Blender {version} (the bpy wheel), File > Import > Motion Capture (.bvh) as a script, Scale 0.01" if version
            else f"Blender not run: {results['bvh']['dancer'].get('blender_unavailable')}")
    return (f"{table}\n\n{note}. Targets: channel step < {BVH_TARGETS['max_channel_step_degrees']:.0f}, round trip mean "
            f"<= {BVH_TARGETS['roundtrip_mean_error_cm']} cm and max <= {BVH_TARGETS['roundtrip_max_error_cm']} cm, "
            f"bone length CV <= {BVH_TARGETS['bone_length_cv']}. The round trips compare with the skeleton the file "
            f"animates (each frame's rotations, the clip's median bone lengths); the last column is how far that is from "
            f"MediaPipe's own points, whose bones change length from frame to frame.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_smoothing.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED), help=f"folder with the two videos (default {SHARED})")
    parser.add_argument("--out-dir", type=OutputFolder(), default=str(REPO_ROOT / "runs" / TASK / "bench"),
                        help="where the extractions go (default runs/pose_smoothing/bench)")
    parser.add_argument("--picture", default=str(REPO_ROOT / TASK / "blender_import.png"),
                        help="render the dancer's imported armature (the frame with the hands furthest apart) to this "
                             "PNG with Blender; '' for none (default pose_smoothing/blender_import.png)")
    parser.add_argument("--seed", type=int, default=0,
                        help="noise, dropout and outlier seed of the simulations (default 0; parameters were chosen on 1)")
    args = parser.parse_args(argv)
    data, out_dir = Path(args.data), Path(args.out_dir)
    missing = [name for name in ("mgt_dancer.avi", "assemblyai_walking.mp4") if not (data / name).is_file()]
    if missing:
        print(f"error: {data}: missing {', '.join(missing)} (set --data or SHARED_DATA_DIR)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    dancer = real_video(data / "mgt_dancer.avi", out_dir / "dancer")
    walker = real_video(data / "assemblyai_walking.mp4", out_dir / "walker")
    bvh = {"dancer": bvh_checks(out_dir / "dancer", Path(args.picture) if args.picture else None),
           "walker": bvh_checks(out_dir / "walker")}
    simulations = {name: simulation(out_dir / "dancer" / "raw_landmarks.json", name, args.seed) for name in SIMULATIONS}
    results = {name: {f: {k: row[k] for k in ("rmse_reduction", "fraction_of_oracle", "lag_frames")}
                      for f, row in sim["filters"].items()} for name, sim in simulations.items()}
    live = max(("one-euro", "kalman"), key=lambda f: simulations["white"]["filters"][f]["fraction_of_oracle"])
    results.update({
        "fps_dancer": dancer["fps"],
        "targets": {
            "best_causal_filter": live,
            "best_causal_fraction_of_oracle": simulations["white"]["filters"][live]["fraction_of_oracle"],
            "fixed_lag_1_fraction_of_oracle": simulations["white"]["filters"]["fixed-lag-1"]["fraction_of_oracle"],
            "fixed_lag_2_fraction_of_oracle": simulations["white"]["filters"]["fixed-lag-2"]["fraction_of_oracle"],
            "outliers_savgol_rmse_reduction": simulations["outliers"]["filters"]["savgol"]["rmse_reduction"],
            "fps_dancer": dancer["fps"], "wanted": TARGETS},
        "dancer": dancer, "walker": walker, "simulation": simulations,
        "bvh": {**bvh, "wanted": BVH_TARGETS},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads, no GPU",
        "bench_seconds": time.perf_counter() - started,
    })
    write_results(TASK, results)
    publish_table(TASK, tables(results))
    print(tables(results))
    print(f"wrote {REPO_ROOT / 'results' / (TASK + '.json')}")
    return 0


if __name__ == "__main__":
    run_main(main)
