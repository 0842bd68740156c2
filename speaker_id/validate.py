"""Score a checkpoint on a labelled dataset: accuracy, macro-F1, per-speaker recall, confusion matrix.

    python -m speaker_id.validate --checkpoint runs/speaker_id/fsdd/best.ckpt --split test -o runs/speaker_id/fsdd/eval
"""
from __future__ import annotations

import argparse
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.cli import ModelArgument, OutputFolder, run_main
from core.io import save_figure, write_json
from core.metrics import plot_confusion
from core.weights import released
from speaker_id.data import assign_splits, load_clips, read_clips
from speaker_id.inference import evaluate, load_model
from speaker_id.train import DEFAULT_DATA


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=ModelArgument("speaker_id"), help="a best.ckpt from speaker_id.train (default: the released model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FSDD folder, folder per speaker or CSV (default %(default)s)")
    parser.add_argument("--split", default="test", choices=["train", "test", "all"])
    parser.add_argument("--test-fraction", type=float, default=0.1, help="as in training, for clips without a split")
    parser.add_argument("--seed", type=int, default=0, help="as in training, for clips without a split")
    parser.add_argument("-o", "--output-dir", type=OutputFolder(), default="runs/speaker_id/eval")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    model = load_model(args.checkpoint or released("speaker_id", "cnn"))
    clips = assign_splits(load_clips(args.data), args.test_fraction, args.seed)
    loaded = read_clips(clips, model.sample_rate)
    subset = loaded if args.split == "all" else loaded.select(args.split)
    report = evaluate(model, subset.select(speakers=set(model.labels)))
    write_json(args.output_dir / "metrics.json", report.as_dict())
    save_figure(plot_confusion(report.confusion, report.labels), args.output_dir / "confusion.png")
    print(f"{args.split}: accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f} on {report.n_samples} clips; "
          f"confusion matrix in {args.output_dir / 'confusion.png'}")
    return report.as_dict()


if __name__ == "__main__":
    run_main(main)
