"""The benchmark behind `make bench`: results/pose_smoothing.json and the README tables.

1. Real videos (../shared/data/pose_smoothing): the whole extract command on the dancer (1,571 frames)
   and the walker, timed end to end (decode, pose, fill, smooth, angles, writes) -> frames per second,
   detection rate, and jitter (mean |second difference| of image x, y) raw vs each filter.
2. Simulation with ground truth: the dancer's raw landmarks smoothed with a 3 Hz zero-phase low-pass
   are the truth; white noise of the size MediaPipe shows on each landmark (the residual around the
   truth) is added and 10% of the frames are dropped in bursts of 1-8. Per filter: RMSE of image x, y
   on the observed frames (reduction against raw), RMSE on the dropped frames after filling, lag in
   frames, jitter. The same 3 Hz low-pass applied to the noisy data (`oracle`) shows the best any
   smoother can do here.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401
from core.env import REPO_ROOT  # noqa: E402
from core.results import markdown_table, publish_table, write_results  # noqa: E402
from pose_smoothing.data import read_landmarks_json  # noqa: E402
from pose_smoothing.extract import clean_sequence, jitter_pair, run  # noqa: E402
from pose_smoothing.simulate import corrupt, ground_truth, oracle_lowpass, score  # noqa: E402

TASK = "pose_smoothing"
SHARED = Path(os.environ.get("SHARED_DATA_DIR", REPO_ROOT.parent / "shared" / "data")) / TASK
FILTERS = ("one-euro", "savgol", "kalman", "neighbour-mean")


def real_video(path: Path, out_dir: Path) -> dict:
    """Extract (timed, one-euro as the command's default), then every filter's jitter on the same raw landmarks."""
    summary = run(path, out_dir, "one-euro", progress=False)
    raw = read_landmarks_json(out_dir / "raw_landmarks.json")
    jitter_reduction, jitter_raw = {}, None
    for method in FILTERS:
        jitter_raw, smoothed_jitter = jitter_pair(raw, clean_sequence(raw, method, max_gap=10, visibility_threshold=0.5))
        jitter_reduction[method] = 1.0 - smoothed_jitter / jitter_raw
    return {"frames": summary["frames"], "fps": summary["processing_fps"], "pose_fps": summary["pose_fps"],
            "detection_rate": summary["detection_rate"], "jitter_raw": jitter_raw, "jitter_reduction": jitter_reduction}


def simulation(raw_path: Path, seed: int) -> dict:
    raw = read_landmarks_json(raw_path)
    clean, image_std, world_std = ground_truth(raw)
    noisy, dropped = corrupt(clean, image_std, world_std, dropout=0.10, seed=seed)
    baseline = score(noisy, clean, dropped)
    rows = {"raw": baseline}
    for method in FILTERS:
        rows[method] = score(clean_sequence(noisy, method, max_gap=10, visibility_threshold=0.5), clean, dropped)
    rows["oracle"] = score(oracle_lowpass(noisy), clean, dropped)
    width = raw.image_size[0] or 1
    return {
        "frames": len(raw), "dropped_fraction": float(dropped.mean()), "seed": seed,
        "noise_std_px_mean": float(image_std[..., :2].mean() * width),
        "rmse_px": {k: v.rmse * width for k, v in rows.items()},
        "rmse_filled_px": {k: v.rmse_filled * width for k, v in rows.items() if k != "raw"},
        "rmse_reduction": {k: 1.0 - v.rmse / baseline.rmse for k, v in rows.items() if k != "raw"},
        "lag_frames": {k: v.lag_frames for k, v in rows.items() if k != "raw"},
        "jitter_px": {k: v.jitter * width for k, v in rows.items()},
    }


def tables(results: dict) -> str:
    sim = results["simulation"]
    rows = [[method, f"{results['rmse_reduction'][method]:.1%}", f"{sim['rmse_px'][method]:.2f}",
             f"{sim['rmse_filled_px'][method]:.2f}", f"{results['lag_frames'][method]:+.2f}",
             f"{results['jitter_reduction_dancer'][method]:.1%}" if method in results["jitter_reduction_dancer"] else "-",
             f"{results['walker']['jitter_reduction'][method]:.1%}" if method in results["walker"]["jitter_reduction"] else "-"]
            for method in (*FILTERS, "oracle")]
    first = markdown_table(
        ["filter", "RMSE reduction (sim.)", "RMSE px (sim.)", "RMSE px on dropped frames", "lag (frames)",
         "jitter reduction, dancer", "jitter reduction, walker"], rows)
    real = markdown_table(
        ["video", "frames", "whole extract command (frames/s)", "MediaPipe alone (frames/s)", "person detected"],
        [["dancer (518x496, 25 fps)", results["dancer"]["frames"], f"{results['fps_dancer']:.1f}",
          f"{results['dancer']['pose_fps']:.1f}", f"{results['detection_rate_dancer']:.1%}"],
         ["walker (1280x720, 30 fps)", results["walker"]["frames"], f"{results['walker']['fps']:.1f}",
          f"{results['walker']['pose_fps']:.1f}", f"{results['walker']['detection_rate']:.1%}"]])
    return (f"{first}\n\nSimulation: raw RMSE {sim['rmse_px']['raw']:.2f} px at 518 px wide, "
            f"{sim['dropped_fraction']:.0%} of frames dropped; `oracle` = the truth's own 3 Hz zero-phase low-pass "
            f"(the best a smoother can do here). Lag: positive = output late.\n\n{real}\n\n"
            f"Measured by `python -m pose_smoothing.bench` on {results['machine']}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_smoothing.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED), help=f"folder with the two videos (default {SHARED})")
    parser.add_argument("--out-dir", default=str(REPO_ROOT / "runs" / TASK / "bench"),
                        help="where the extractions go (default runs/pose_smoothing/bench)")
    parser.add_argument("--seed", type=int, default=0, help="noise and dropout seed of the simulation (default 0)")
    args = parser.parse_args(argv)
    data, out_dir = Path(args.data), Path(args.out_dir)
    missing = [name for name in ("mgt_dancer.avi", "assemblyai_walking.mp4") if not (data / name).is_file()]
    if missing:
        print(f"error: {data}: missing {', '.join(missing)} (set --data or SHARED_DATA_DIR)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    dancer = real_video(data / "mgt_dancer.avi", out_dir / "dancer")
    walker = real_video(data / "assemblyai_walking.mp4", out_dir / "walker")
    sim = simulation(out_dir / "dancer" / "raw_landmarks.json", args.seed)
    results = {
        "rmse_reduction": sim["rmse_reduction"],
        "lag_frames": sim["lag_frames"],
        "fps_dancer": dancer["fps"],
        "detection_rate_dancer": dancer["detection_rate"],
        "jitter_reduction_dancer": dancer["jitter_reduction"],
        "dancer": dancer, "walker": walker, "simulation": sim,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads, no GPU",
        "bench_seconds": time.perf_counter() - started,
    }
    write_results(TASK, results)
    publish_table(TASK, tables(results))
    print(tables(results))
    print(f"wrote {REPO_ROOT / 'results' / (TASK + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
