"""Benchmark on the UCF101 10-class mini set (train split -> val split) -> results/action_recognition.json.

    python -m action_recognition.bench                  # what `make bench` runs
    python -m action_recognition.bench --reuse all      # timing only: reuse every trained run, re-measure
                                                        # clips/s and the downloader, re-fuse (minutes)

1. frame, tsn and gru models on frozen ImageNet MobileNetV2 features (3 frames of 64x64 per clip,
   upscaled to --image-size), trained with mirrored clips added and scored with test-time flip.
   tsn_ft: the same TSN with MobileNetV2's last blocks (11-18) fine-tuned at --finetune-image-size on
   cached maps of the frozen blocks 0-10 for the plain, mirrored and 6 augmented views of each clip;
   a fixed cosine schedule, the last epoch kept.
   gru_ft: the same fine-tuning under the bidirectional GRU (it shares tsn_ft's cached maps).
   tsn_ft_seed1: tsn_ft with seed 1 (its own augmented views), as one more ensemble member.
   tsm_ft: tsn_ft with a temporal shift (TSM) in the fine-tuned residual blocks, so each frame's
   features see its neighbours' (the temporal module inside the CNN; gru_ft's is on top of it).
   Each of these frame-based recipes is trained twice: once without its dev clips (the last 15% of each
   class's train clips, from videos the rest does not share; run bench-<model>), whose dev predictions
   choose the ensemble's weights and give dev_accuracy, and once on every train clip with the last
   epoch kept (bench-<model>-all), which is the model scored in the table (`accuracy`; the first
   run's val score is `accuracy_without_dev_clips`).
2. keypoint model: MediaPipe Pose through pose_smoothing's person follower on each frame (upscaled
   to 256 px), a GRU over the 3 normalised poses; trained on the first --keypoint-train-per-class
   train clips of each class (MediaPipe is the slow part), scored on the whole val split.
3. ensemble: the frame-based models averaged with weights from greedy ensemble selection on the
   dev clips (action_recognition/ensemble.py; weights found with the bench-<model> runs, applied to
   the bench-<model>-all runs). fused: the ensemble with the keypoint model, weight chosen on dev
   clips; clips where MediaPipe found nobody keep the ensemble's answer.
4. clips_per_second: from decoded frames to probabilities, no cache (CNN features or MediaPipe
   included), on --speed-clips val clips, 2 CPU threads.
5. downloader: --download-clips generated videos served on 127.0.0.1, 20% of the URLs answering 404.
Features and keypoints are cached under .cache/action_recognition/, so a rerun only retrains heads.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401  (offline environment first)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from action_recognition import download, ensemble, fusion, train  # noqa: E402
from action_recognition.data import read_ucf_zip  # noqa: E402
from action_recognition.inference import load_model, predict_probabilities  # noqa: E402
from action_recognition.keypoints import cached_keypoints  # noqa: E402
from action_recognition.synthetic import make_source_videos, serve_videos, write_kinetics_csv  # noqa: E402
from core.cli import run_main  # noqa: E402
from core.metrics import ClassificationReport  # noqa: E402
from core.results import markdown_table, publish_table, write_results  # noqa: E402
from core.training import RUNS_DIR  # noqa: E402

FROZEN = {"frame": ["--model", "frame", "--hidden", "0"], "tsn": ["--model", "tsn", "--hidden", "512"],
          "gru": ["--model", "gru", "--hidden", "256"]}
FINETUNED = {"tsn_ft": ["--model", "tsn", "--hidden", "0", "--finetune-from", "11", "--views", "6",
                        "--backbone-lr-scale", "0.3", "--weight-decay", "0.05", "--select", "last"],
             "gru_ft": ["--model", "gru", "--hidden", "256", "--finetune-from", "11", "--views", "6",
                        "--backbone-lr-scale", "0.3", "--weight-decay", "0.05", "--select", "last"]}
# tsn_ft once more with another seed (other weights' draw, data order and augmented views): one more
# ensemble member, since runs of one recipe differ by up to 3 points on val
FINETUNED["tsn_ft_seed1"] = [*FINETUNED["tsn_ft"], "--seed", "1"]
FINETUNED["tsm_ft"] = [*FINETUNED["tsn_ft"], "--temporal-shift"]
FRAME_MODELS = (*FROZEN, *FINETUNED)
MODEL_NAMES = (*FRAME_MODELS, "keypoint")
DATA_NOTE = "UCF101 10 classes, 3 frames of 64x64 px per clip (train 3,000 clips -> val 2,230)"


def clips_per_second(checkpoints: list[Path], zip_path: Path, count: int, tta_flip: bool) -> float:
    """Clips per second from decoded frames to probabilities with no cache (every model in `checkpoints`)."""
    loaded = read_ucf_zip(zip_path, splits=("val",))
    subset = loaded.take(np.linspace(0, len(loaded) - 1, count).astype(int).tolist())
    models = [load_model(c) for c in checkpoints]
    predict_probabilities(models[0], subset.take([0]), tta_flip and models[0].hparams.model != "keypoint", use_cache=False)  # warm-up
    started = time.perf_counter()
    for model in models:
        predict_probabilities(model, subset, tta_flip and model.hparams.model != "keypoint", use_cache=False)
    return count / (time.perf_counter() - started)


def trained(name: str, reuse: set[str], argv: list[str], run_name: str) -> dict:
    """train.main(argv + run name), or, for a model named in `reuse`, the records of its earlier bench run
    (trained when there is none yet)."""
    run_dir = RUNS_DIR / "action_recognition" / run_name
    if name not in reuse or not (run_dir / "metrics.json").is_file():
        return train.main([*argv, "--run-name", run_name])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    e = metrics["evaluation"]
    report = ClassificationReport(e["labels"], e["accuracy"], e["macro_f1"], e["per_class_recall"],
                                  np.array(e["confusion"]), e["n_samples"])
    print(f"{name}: reusing {run_dir} ({report.accuracy:.4f} accuracy)", flush=True)
    return {"run_dir": run_dir, "best_checkpoint": run_dir / "best.ckpt", "report": report, **metrics}


def _keypoints_for(sources: list[str], zip_path: Path):
    loaded = read_ucf_zip(zip_path)
    frames = dict(zip([c.source for c in loaded.clips], loaded.frames))
    return cached_keypoints(sources, [frames[s] for s in sources])


def dev_accuracy(run_dir: Path) -> float:
    """A run's accuracy on its dev clips."""
    dev = fusion.read_probabilities(run_dir, "dev")
    return float((dev["probabilities"].argmax(axis=1) == dev["targets"]).mean())


def accuracy_where(run_dir: Path, keep: dict[str, bool]) -> float | None:
    """A run's val accuracy on the clips with keep[source] true (None if there are none)."""
    val = fusion.read_probabilities(run_dir, "evaluation")
    right = val["probabilities"].argmax(axis=1) == val["targets"]
    mask = np.array([keep[s] for s in val["sources"]])
    return float(right[mask].mean()) if mask.any() else None


def clips_with_person(keypoint_run: Path, zip_path: Path) -> dict[str, bool]:
    """Source -> whether MediaPipe found a person in any frame, for the keypoint run's dev and val clips."""
    sources = [s for name in ("dev", "evaluation") for s in fusion.read_probabilities(keypoint_run, name)["sources"]]
    return dict(zip(sources, _keypoints_for(sources, zip_path).detected.any(axis=1).tolist()))


def frames_with_person(sources: list[str], zip_path: Path) -> float:
    return float(_keypoints_for(sources, zip_path).detected.mean())


def downloader_benchmark(count: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="action_download_") as folder:
        folder = Path(folder)
        rows = make_source_videos(folder / "served", per_class=count // 3, seconds=4.0)
        gone = [r["youtube_id"] for r in rows[::5]]
        csv_path = write_kinetics_csv(folder / "list.csv", rows)
        with serve_videos(folder / "served", gone=gone) as (url, _):
            summary = download.main([str(csv_path), "-o", str(folder / "clips"), "--url-template", url,
                                     "--workers", str(workers), "--short-side", "128", "--no-progress-bar"])
        logged = sum(1 for _ in open(summary["failures"])) - 1
    return {"clips_per_minute": summary["clips_per_minute"], "failures_logged": logged, "urls": len(rows),
            "failing_urls": len(gone), "downloaded": summary["downloaded"], "workers": workers,
            "seconds": summary["seconds"], "failure_reasons": summary["failure_reasons"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=train.DEFAULT_DATA, help="the UCF101 mini-set zip (default %(default)s)")
    parser.add_argument("--image-size", type=int, default=112, help="CNN input size for the 64 px frames")
    parser.add_argument("--max-epochs", type=int, default=12, help="epochs for each head on frozen features")
    parser.add_argument("--finetune-image-size", type=int, default=128, help="CNN input size for tsn_ft and gru_ft")
    parser.add_argument("--finetune-epochs", type=int, default=10, help="epochs for tsn_ft and gru_ft")
    parser.add_argument("--train-threads", type=int, default=1,
                        help="torch threads while training (the timing always uses 2; default %(default)s)")
    parser.add_argument("--keypoint-train-per-class", type=int, default=100, help="train clips per class for the keypoint model")
    parser.add_argument("--speed-clips", type=int, default=50, help="val clips timed for clips_per_second")
    parser.add_argument("--download-clips", type=int, default=30, help="generated videos for the downloader benchmark")
    parser.add_argument("--download-workers", type=int, default=4)
    parser.add_argument("--keypoint-epochs", type=int, default=60, help="epochs for the keypoint GRU (small data, fast)")
    parser.add_argument("--reuse", default="", help="comma-separated models whose earlier bench runs are reused, not "
                        f"retrained ({', '.join(MODEL_NAMES)}), or `all`: then only the timing and the downloader run "
                        "(a run that does not exist yet is trained)")
    args = parser.parse_args(argv)
    argv = list(argv) if argv is not None else sys.argv[1:]
    torch.set_num_threads(args.train_threads)
    common = ["--data", str(args.data), "--max-epochs", str(args.max_epochs), "--batch-size", "128", "--no-progress-bar"]

    reuse = set(MODEL_NAMES) if args.reuse == "all" else {n for n in args.reuse.split(",") if n}
    unknown = reuse - set(MODEL_NAMES)
    if unknown:
        parser.error(f"--reuse: unknown model(s) {sorted(unknown)}; choose from {', '.join(MODEL_NAMES)} or all")
    recipes = {name: [*common, "--image-size", str(args.image_size), "--flip-augment", "--tta-flip", *extra]
               for name, extra in FROZEN.items()}
    recipes.update({name: [*common, "--flip-augment", "--tta-flip", "--image-size", str(args.finetune_image_size), *extra,
                           "--max-epochs", str(args.finetune_epochs)] for name, extra in FINETUNED.items()})
    dev_runs = {name: trained(name, reuse, recipe, f"bench-{name}") for name, recipe in recipes.items()}
    # the same recipes once more on every train clip (dev included): more videos to learn from; these are scored
    runs = {name: trained(name, reuse, [*recipe, "--dev-fraction", "0", "--select", "last"], f"bench-{name}-all")
            for name, recipe in recipes.items()}
    runs["keypoint"] = trained("keypoint", reuse, [*common, "--model", "keypoint", "--hidden", "64",
                                                   "--limit-per-class", str(args.keypoint_train_per_class),
                                                   "--learning-rate", "3e-3", "--max-epochs", str(args.keypoint_epochs),
                                                   "--batch-size", "32"], "bench-keypoint")
    ensembled = ensemble.ensemble_runs([dev_runs[n]["run_dir"] for n in FRAME_MODELS], RUNS_DIR / "action_recognition" / "bench-ensemble",
                                       final_runs=[runs[n]["run_dir"] for n in FRAME_MODELS])
    members = [n for n, m in zip(FRAME_MODELS, ensembled["members"]) if m["weight"] > 0]
    has_person = clips_with_person(runs["keypoint"]["run_dir"], args.data)
    fused = fusion.fuse_runs(ensembled["output"], runs["keypoint"]["run_dir"], has_person)
    evaluation_sources = fusion.read_probabilities(runs["keypoint"]["run_dir"], "evaluation")["sources"]
    person = np.array([has_person[s] for s in evaluation_sources])

    torch.set_num_threads(2)
    results: dict = {"data": DATA_NOTE, "image_size": args.image_size, "finetune_image_size": args.finetune_image_size}
    for name, run in runs.items():
        report = run["report"]
        speed = clips_per_second([run["best_checkpoint"]], args.data, args.speed_clips, name != "keypoint")
        results[name] = {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "clips_per_second": speed,
                         "val_clips": report.n_samples, "train_clips": run["clips"]["train"],
                         "train_seconds": run["train_seconds"],
                         "dev_accuracy": dev_accuracy(dev_runs.get(name, run)["run_dir"]),
                         "per_class_recall": report.per_class_recall,
                         "labels": report.labels, "confusion": report.confusion.tolist()}
        if name in dev_runs:   # the model trained without its dev clips, whose dev predictions chose the weights
            results[name]["accuracy_without_dev_clips"] = dev_runs[name]["report"].accuracy
    member_checkpoints = [runs[n]["best_checkpoint"] for n in members]
    report = ensembled["report"]
    results["ensemble"] = {"accuracy": report.accuracy, "macro_f1": report.macro_f1,
                           "clips_per_second": clips_per_second(member_checkpoints, args.data, args.speed_clips, True),
                           "weights": {n: m["weight"] for n, m in zip(FRAME_MODELS, ensembled["members"])},
                           "val_clips": report.n_samples, "dev_accuracy": ensembled["dev_accuracy"],
                           "per_class_recall": report.per_class_recall,
                           "labels": report.labels, "confusion": report.confusion.tolist()}
    speed = clips_per_second([*member_checkpoints, runs["keypoint"]["best_checkpoint"]], args.data, args.speed_clips, True)
    results["fused"] = {"accuracy": fused["report"].accuracy, "macro_f1": fused["report"].macro_f1, "clips_per_second": speed,
                        "frame_model": "ensemble", "frame_weight": fused["weight"], "val_clips": fused["report"].n_samples,
                        "per_class_recall": fused["report"].per_class_recall,
                        "labels": fused["report"].labels, "confusion": fused["report"].confusion.tolist()}
    results["keypoint"]["val_clips_with_person"] = float(person.mean())
    results["keypoint"]["val_frames_with_person"] = frames_with_person(evaluation_sources, args.data)
    results["keypoint"]["accuracy_on_clips_with_person"] = accuracy_where(runs["keypoint"]["run_dir"], has_person)
    results["fused"]["frame_model_accuracy_on_clips_with_person"] = accuracy_where(ensembled["output"], has_person)
    results["best_model"] = max((*MODEL_NAMES, "ensemble", "fused"), key=lambda n: results[n]["accuracy"])
    results["downloader"] = downloader_benchmark(args.download_clips, args.download_workers)
    command = "python -m action_recognition.bench" + (" " + " ".join(argv) if argv else "")
    results.update(torch_threads=torch.get_num_threads(), command=command,
                   reused_runs=sorted(reuse), runs={n: str(r["run_dir"]) for n, r in runs.items()})
    write_results("action_recognition", results)

    descriptions = {"frame": "frame: linear head per frame, probabilities averaged over the 3 frames",
                    "tsn": "tsn: MLP head, class scores averaged over the 3 segments (TSN consensus)",
                    "gru": "gru: bidirectional GRU over the 3 frame features",
                    "tsn_ft": f"tsn_ft: TSN, MobileNetV2 blocks 11-18 fine-tuned at {args.finetune_image_size} px "
                              "(augmented views, label smoothing, cosine schedule)",
                    "gru_ft": f"gru_ft: bidirectional GRU, MobileNetV2 blocks 11-18 fine-tuned at {args.finetune_image_size} px "
                              "(as tsn_ft)",
                    "tsn_ft_seed1": "tsn_ft_seed1: tsn_ft with seed 1",
                    "tsm_ft": "tsm_ft: tsn_ft with a temporal shift (TSM) in the fine-tuned residual blocks",
                    "keypoint": "keypoint: GRU over MediaPipe body keypoints",
                    "ensemble": "ensemble: " + " + ".join(f"{results['ensemble']['weights'][n]:.2f} {n}" for n in members)
                                + " (weights chosen on dev)",
                    "fused": f"fused: ensemble + keypoint, weight {fused['weight']:.2f} chosen on dev"}
    rows = [[descriptions[n], f"{results[n]['accuracy']:.4f}", f"{results[n]['macro_f1']:.4f}",
             f"{results[n]['clips_per_second']:.1f}"] for n in (*MODEL_NAMES, "ensemble", "fused")]
    table = markdown_table(["model (val split, 2,230 clips of 3 frames at 64x64 px)", "accuracy", "macro-F1", "clips/s"], rows)
    d = results["downloader"]
    table += (f"\n\nBest: **{results['best_model']}**, {results[results['best_model']]['accuracy']:.1%} on frames of "
              f"64x64 px, 3 per clip (target 92%; frozen MobileNetV2 + logistic regression reference 83.6%). "
              f"The keypoint model found a person in {results['keypoint']['val_clips_with_person']:.1%} of the val clips "
              f"({results['keypoint']['val_frames_with_person']:.1%} of frames); on those clips it scores "
              f"{results['keypoint']['accuracy_on_clips_with_person']:.1%}, the ensemble "
              f"{results['fused']['frame_model_accuracy_on_clips_with_person']:.1%}. frame/tsn/gru: frozen ImageNet "
              f"MobileNetV2 at {args.image_size} px; clips/s counts CNN features (or MediaPipe) from decoded frames, "
              f"test-time flip included, 2 CPU threads.\n\n"
              f"Downloader against a local server: {d['clips_per_minute']:.1f} clips/min with {d['workers']} workers; "
              f"{d['failing_urls']} of {d['urls']} URLs failing, {d['failures_logged']} failures logged.\n\n"
              f"From `results/action_recognition.json`, written by `{command}`.")
    publish_table("action_recognition", table)
    print(table)
    return results


if __name__ == "__main__":
    run_main(main)
