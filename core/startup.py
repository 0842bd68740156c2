"""How long a new user waits: each task's documented one-input `predict` command, run as a fresh process
with the released weights, timed from launch to exit (Python start, imports and model loading included).

    python -m core.startup            # prints startup seconds per task (median of --repeats runs)
    python -m core.startup --write    # and records them: results/live.json startup_seconds.<task>, README tables

The inputs are files installed packages ship (a face and a photo with hands), generated ones (a video, a
fingertip trajectory) and, for speaker_id, one FSDD recording from ../shared/data. Target: <= 5 s each on a
quiet 2-core machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401

import numpy as np  # noqa: E402

from core.cli import run_main  # noqa: E402
from core.env import REPO_ROOT, SHARED_DATA  # noqa: E402
from core.io import AtomicVideoWriter, read_image, write_json  # noqa: E402
from core.results import RESULTS_DIR, publish_live_table, read_results  # noqa: E402

TARGET_SECONDS = 5.0


def one_input_commands(folder: Path) -> dict[str, list[str]]:
    """task -> the predict command for one input, its inputs written into `folder`."""
    import skimage
    import ultralytics

    faces = folder / "faces"
    faces.mkdir()
    shutil.copy(Path(skimage.__file__).parent / "data" / "astronaut.png", faces / "astronaut.png")
    hands = Path(ultralytics.__file__).parent / "assets" / "zidane.jpg"
    video = folder / "clip.mp4"
    writer = AtomicVideoWriter(video, 10.0, (256, 256))
    for _ in range(10):  # a 1-second clip of the photo, for the video tasks
        writer.write(np.ascontiguousarray(read_image(faces / "astronaut.png")[::2, ::2]))
    writer.close()
    np.savetxt(folder / "history.csv", np.zeros((1, 32)), delimiter=",")
    out = str(folder / "out.csv")
    commands = {
        "emotion": ["emotion.predict", "--test-dir", str(faces), "--output", out],
        "gesture_detection": ["gesture_detection.predict", str(hands), "--output", out],
        "action_recognition": ["action_recognition.predict", str(video), "-o", out],
        "video_gestures": ["video_gestures.predict", str(folder / "history.csv"), "-o", out],
        "pose_smoothing": ["pose_smoothing.extract", str(faces), "-o", str(folder / "pose"), "--quiet"],  # one image
    }
    recording = SHARED_DATA / "speaker_id" / "recordings" / "7_theo_3.wav"
    if recording.is_file():
        commands["speaker_id"] = ["speaker_id.predict", str(recording), "-o", out]
    return commands


def time_command(module_and_args: list[str], threads: int) -> float:
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", *module_and_args], cwd=REPO_ROOT, env=environment, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per task; the median is kept (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default %(default)s)")
    parser.add_argument("--write", action="store_true",
                        help="record the figures in results/live.json and the README tables (default: print only)")
    args = parser.parse_args(argv)
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        for task, command in one_input_commands(Path(folder)).items():
            runs = [time_command(command, args.threads) for _ in range(args.repeats)]
            seconds[task] = round(statistics.median(runs), 2)
            print(f"{task}: {seconds[task]:.2f} s (runs: {', '.join(f'{r:.2f}' for r in runs)}): python -m {command[0]}")
    if not args.write:
        print("not recorded (add --write to update results/live.json and the README)")
        return {"startup_seconds": seconds}
    path = RESULTS_DIR / "live.json"
    results = read_results("live") if path.is_file() else {}
    results["startup_seconds"] = seconds
    results["startup"] = {"target_seconds": TARGET_SECONDS, "threads": args.threads, "repeats": args.repeats,
                          "load_average": os.getloadavg()[0], "measured": time.strftime("%Y-%m-%d %H:%M"),
                          "command": "python -m core.startup" + (" " + " ".join(argv) if argv else "")}
    write_json(path, results)
    publish_live_table()
    return results


if __name__ == "__main__":
    run_main(main)
