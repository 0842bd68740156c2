"""Enrol new speakers from a few clips, then identify or verify clips against them, with no retraining.

    python -m speaker_id.enroll enroll --checkpoint best.ckpt --registry speakers.json --name alice a1.wav a2.wav a3.wav
    python -m speaker_id.enroll enroll --checkpoint best.ckpt --registry speakers.json --folders new_speakers/
    python -m speaker_id.enroll identify --registry speakers.json unknown/ -o identified.csv
    python -m speaker_id.enroll verify --registry speakers.json --claim alice test.wav

The registry (JSON) stores each speaker's mean embedding and the checkpoint that made it. Scores are cosine
similarities; the accept threshold defaults to the one calibrated at training time (equal error rate on
validation clips) and can be overridden with --threshold.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.io import InputError, write_csv
from speaker_id.data import audio_inputs, read_clips, scan_speaker_folders
from speaker_id.inference import embed, load_model
from speaker_id.verification import SpeakerRegistry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    enroll = commands.add_parser("enroll", help="add speakers to a registry (created if missing)")
    enroll.add_argument("--checkpoint", type=Path, help="best.ckpt from speaker_id.train (needed for a new registry)")
    enroll.add_argument("--registry", type=Path, required=True, help="registry JSON to create or extend")
    enroll.add_argument("--name", help="speaker name for the clips given as arguments")
    enroll.add_argument("--folders", type=Path, help="a folder with one sub-folder of clips per new speaker")
    enroll.add_argument("clips", nargs="*", help="audio files or folders of one speaker (with --name)")

    for name, text in (("identify", "closest enrolled speaker per clip, or 'unknown'"),
                       ("verify", "accept or reject a claimed identity per clip")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--registry", type=Path, required=True)
        command.add_argument("--threshold", type=float, help="cosine accept threshold (default: the registry's)")
        command.add_argument("-o", "--output", type=Path, help="also write the results as CSV")
        command.add_argument("clips", nargs="+", help="audio files or folders")
        if name == "verify":
            command.add_argument("--claim", required=True, help="the enrolled speaker the clips claim to be")
    return parser


def _embed_paths(model, clips):
    loaded = read_clips(clips, model.sample_rate, progress=False)
    for path, reason in loaded.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return loaded, embed(model, loaded.waveforms)


def enroll_command(args: argparse.Namespace) -> SpeakerRegistry:
    if args.registry.is_file():
        registry = SpeakerRegistry.load(args.registry)
        if args.checkpoint and args.checkpoint.resolve() != Path(registry.checkpoint).resolve():
            raise InputError(args.registry, f"was made with {registry.checkpoint}, not {args.checkpoint}; use a new registry")
    elif args.checkpoint is None:
        raise InputError(args.registry, "registry does not exist yet; pass --checkpoint to create it")
    else:
        registry = SpeakerRegistry(str(args.checkpoint.resolve()), load_model(args.checkpoint).verify_threshold)
    model = load_model(registry.checkpoint)
    groups: dict[str, list] = {}
    if args.folders:
        for clip in scan_speaker_folders(args.folders):
            groups.setdefault(clip.speaker, []).append(clip)
    if args.clips:
        if not args.name:
            raise SystemExit("error: --name is required with clips given as arguments")
        groups[args.name] = audio_inputs(args.clips)
    if not groups:
        raise SystemExit("error: nothing to enrol: give --name with clips, or --folders")
    for name, clips in sorted(groups.items()):
        loaded, embeddings = _embed_paths(model, clips)
        registry.enroll(name, embeddings)
        print(f"enrolled {name!r} from {len(loaded.clips)} clip(s)")
    registry.save(args.registry)
    print(f"registry {args.registry}: {len(registry.names)} speaker(s), threshold {registry.threshold:.3f}")
    return registry


def score_command(args: argparse.Namespace) -> list[dict]:
    registry = SpeakerRegistry.load(args.registry)
    if args.threshold is not None:
        registry.threshold = args.threshold
    loaded, embeddings = _embed_paths(load_model(registry.checkpoint), audio_inputs(args.clips))
    if args.command == "identify":
        rows = [{"path": str(c.path), "speaker": name, "score": score}
                for c, (name, score) in zip(loaded.clips, registry.identify(embeddings))]
    else:
        rows = [{"path": str(c.path), "claimed": args.claim, "accepted": accepted, "score": score}
                for c, (accepted, score) in zip(loaded.clips, registry.verify(embeddings, args.claim))]
    for row in rows:
        print(",".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()))
    if args.output:
        write_csv(args.output, rows)
    return rows


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    return enroll_command(args) if args.command == "enroll" else score_command(args)


if __name__ == "__main__":
    try:
        main()
    except (InputError, KeyError, ValueError) as error:
        sys.exit(f"error: {error}")
