"""End-to-end demo on generated videos (no network): serve them on 127.0.0.1, download and cut them with
the downloader (some URLs fail on purpose), train a GRU over frozen MobileNetV2 features, predict.

    python -m action_recognition.demo            # outputs under runs/demo/action_recognition/
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
from action_recognition import download, predict, train  # noqa: E402
from action_recognition.synthetic import make_source_videos, serve_videos, write_kinetics_csv  # noqa: E402
from core.cli import run_main  # noqa: E402
from core.env import REPO_ROOT  # noqa: E402
from core.results import SMOKE_TEST_NOTE  # noqa: E402


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "runs" / "demo", help="demo root (default %(default)s)")
    parser.add_argument("--per-class", type=int, default=8, help="generated videos per action")
    parser.add_argument("--max-epochs", type=int, default=25)
    args = parser.parse_args(argv)
    out = args.output_dir / "action_recognition"
    served, clips, cache = out / "served", out / "clips", out / "cache"
    for folder in (served, clips, cache):
        shutil.rmtree(folder, ignore_errors=True)

    rows = make_source_videos(served, per_class=args.per_class, seconds=4.0)
    gone = [r["youtube_id"] for r in rows[::6]]  # these URLs answer 404, as removed YouTube videos would
    csv_path = write_kinetics_csv(out / "kinetics_style.csv", rows)
    print(f"generated {len(rows)} videos in {served}; {len(gone)} of their URLs will fail")
    with serve_videos(served, gone=gone) as (url, _):
        summary = download.main([str(csv_path), "-o", str(clips), "--url-template", url, "--short-side", "96",
                                 "--fps", "10", "--workers", "4", "--no-progress-bar"])

    result = train.main(["--data", str(clips), "--model", "gru", "--num-frames", "6", "--frame-size", "96",
                         "--image-size", "96", "--dev-fraction", "0.2", "--max-epochs", str(args.max_epochs),
                         "--batch-size", "8", "--learning-rate", "3e-3", "--runs-root", str(args.output_dir),
                         "--run-name", "train", "--cache-dir", str(cache), "--no-progress-bar"])
    predictions = predict.main(["--checkpoint", str(result["best_checkpoint"]), str(clips / "val"),
                                "-o", str(out / "predictions.csv"), "--top-k", "3"])
    print(f"\naction_recognition demo outputs in {out}:\n  clips/ (downloaded and cut), clips/manifest.csv, "
          f"clips/failures.csv ({summary['failed']} failures)\n  run: {result['run_dir']} (curves.png, confusion.png, "
          f"metrics.json)\n  predictions: {predictions}")
    print(SMOKE_TEST_NOTE.format(readme="action_recognition/README.md"))
    return out


if __name__ == "__main__":
    run_main(main)
