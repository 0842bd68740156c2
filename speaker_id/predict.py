"""Predict the speaker of audio files with a trained checkpoint.

    python -m speaker_id.predict clips/ -o predictions.csv     # the released FSDD model (weights/speaker_id/cnn.onnx)
    python -m speaker_id.predict --checkpoint runs/speaker_id/fsdd/best.ckpt clips/ -o predictions.csv

Writes a CSV `path,speaker,probability` (one row per readable file, in path order). Unreadable or
too-short files are listed on stderr and left out; the CSV appears only when complete.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.cli import InputArgument, ModelArgument, OutputFile, run_main, skip
from core.io import write_csv
from core.onnx import BACKENDS
from core.weights import released
from speaker_id.data import audio_inputs, read_clips
from speaker_id.inference import load_model, predict_probabilities


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=InputArgument("audio", as_path=False), help="audio files or folders (searched recursively)")
    parser.add_argument("--checkpoint", type=ModelArgument("speaker_id"), help="a best.ckpt from speaker_id.train, or its .onnx export (default: the released "
                        "FSDD model, weights/speaker_id/cnn.onnx)")
    parser.add_argument("-o", "--output", type=OutputFile(), default="predictions.csv", help="CSV to write (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="engine for the CNN: onnxruntime (auto = when installed) or PyTorch")
    return parser


def predict(checkpoint: Path, inputs: list[str], batch_size: int = 64, backend: str = "auto"):
    """Rows (path, speaker, probability) for every readable input, and the skipped files with reasons."""
    model = load_model(checkpoint, backend=backend)
    loaded = read_clips(audio_inputs(inputs), model.sample_rate)
    probabilities = predict_probabilities(model, loaded.waveforms, batch_size)
    best = probabilities.argmax(axis=1)
    rows = [{"path": str(c.path), "speaker": model.labels[b], "probability": float(p[b])}
            for c, b, p in zip(loaded.clips, best, probabilities)]
    return rows, loaded.skipped


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    rows, skipped = predict(args.checkpoint or released("speaker_id", "cnn"), args.inputs, args.batch_size, args.backend)
    for path, reason in skipped:
        skip(path, reason)
    write_csv(args.output, rows, columns=["path", "speaker", "probability"])
    print(f"wrote {len(rows)} predictions to {args.output}" + (f" ({len(skipped)} file(s) skipped)" if skipped else ""))
    return args.output


if __name__ == "__main__":
    run_main(main)
