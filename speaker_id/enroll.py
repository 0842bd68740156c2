"""Enrol new speakers from a few clips, then identify or verify clips against them, with no retraining.

    python -m speaker_id.enroll enroll --registry speakers.json --name alice a1.wav a2.wav a3.wav
    python -m speaker_id.enroll enroll --registry speakers.json --folders new_speakers/
    python -m speaker_id.enroll identify --registry speakers.json unknown/ -o identified.csv
    python -m speaker_id.enroll verify --registry speakers.json --claim alice test.wav
    python -m speaker_id.enroll enroll --encoder cnn --checkpoint best.ckpt --registry fsdd.json --folders ...

Embeddings come from the pretrained GE2E speaker encoder by default (`--encoder ge2e`), or from a
`speaker_id.train` checkpoint (`--encoder cnn`). Recordings may have any rate and channel count; the
silences are cut out with Silero VAD and a clip with too little speech is skipped, with the reason.

The registry (JSON) stores each speaker's mean embedding, the encoder that made it (a registry refuses
clips embedded by another), the score normalisation with its cohort, and the accept threshold. A new
registry takes these from a calibration file (`speaker_id.calibrate`; default
`speaker_id/calibration/<encoder>.json`, calibrated on development speakers none of yours are); for a CNN
without one, the threshold calibrated on the checkpoint's validation clips. `--threshold` overrides it.
`identify` answers `unknown` when no enrolled speaker reaches the threshold.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.cli import InputArgument, ModelArgument, OutputFile, run_main
from core.io import InputError, write_csv
from speaker_id.calibrate import default_calibration_path, embed_files
from speaker_id.data import audio_inputs, scan_speaker_folders
from speaker_id.encoders import ENCODERS, SpeakerEncoder, encoder_from_spec, load_encoder
from speaker_id.frontend import MIN_SPEECH_SECONDS, SpeechFrontend
from speaker_id.verification import ScoreNormaliser, SpeakerRegistry, describe_encoder


def _add_frontend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-vad", action="store_true",
                        help="keep every sample instead of cutting silences (for clips already trimmed to speech)")
    parser.add_argument("--min-speech", type=float, default=MIN_SPEECH_SECONDS,
                        help="skip clips with less speech than this, in seconds (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    enroll = commands.add_parser("enroll", help="add speakers to a registry (created if missing)")
    enroll.add_argument("--encoder", choices=ENCODERS, help="embedding model for a new registry (default ge2e); "
                                                            "an existing registry keeps its own")
    enroll.add_argument("--checkpoint", type=ModelArgument("speaker_id"), help="best.ckpt from speaker_id.train (with --encoder cnn)")
    enroll.add_argument("--calibration", type=Path, help="threshold, normalisation and cohort for a new registry "
                                                         "(default speaker_id/calibration/<encoder>.json)")
    enroll.add_argument("--registry", type=OutputFile(), required=True, help="registry JSON to create or extend")
    enroll.add_argument("--name", help="speaker name for the clips given as arguments")
    enroll.add_argument("--folders", type=Path, help="a folder with one sub-folder of clips per new speaker")
    enroll.add_argument("clips", nargs="*", type=InputArgument("audio", as_path=False), help="audio files or folders of one speaker (with --name)")
    _add_frontend_options(enroll)

    for name, text in (("identify", "closest enrolled speaker per clip, or 'unknown'"),
                       ("verify", "accept or reject a claimed identity per clip")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--registry", type=Path, required=True)
        command.add_argument("--threshold", type=float, help="accept threshold (default: the registry's)")
        command.add_argument("-o", "--output", type=OutputFile(), help="also write the results as CSV (skipped clips marked)")
        command.add_argument("clips", nargs="+", type=InputArgument("audio", as_path=False), help="audio files or folders")
        if name == "verify":
            command.add_argument("--claim", required=True, help="the enrolled speaker the clips claim to be")
        _add_frontend_options(command)
    return parser


def _frontend(args: argparse.Namespace) -> SpeechFrontend:
    return SpeechFrontend(vad=not args.no_vad, min_speech_seconds=args.min_speech)


def new_registry(encoder: SpeakerEncoder, calibration: Path | None) -> SpeakerRegistry:
    """An empty registry with the calibration's threshold and normalisation (the checkpoint's own for a CNN)."""
    path = calibration or default_calibration_path(encoder.name)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            calibrated_encoder, threshold = data["encoder"], float(data["threshold"])
            normaliser = ScoreNormaliser.from_json(data["normalisation"])
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(path, f"not a calibration file ({error}); make one with `python -m speaker_id.calibrate`") from error
        if calibrated_encoder != encoder.spec():
            raise InputError(path, f"calibrates {describe_encoder(calibrated_encoder)}, not {describe_encoder(encoder.spec())}")
        return SpeakerRegistry(encoder.spec(), threshold, normaliser, {"file": str(path), **data.get("calibration", {})})
    if calibration is not None:
        raise InputError(calibration, "calibration file not found")
    if encoder.name == "cnn":
        return SpeakerRegistry(encoder.spec(), encoder.model.verify_threshold,
                               calibration={"source": "EER point on the checkpoint's validation clips"})
    raise InputError(path, f"no calibration for encoder {encoder.name}; make one with `python -m speaker_id.calibrate`")


def _embed(encoder: SpeakerEncoder, clips, frontend: SpeechFrontend):
    paths = [c.path for c in clips]
    embeddings, kept, skipped = embed_files(paths, encoder, frontend, progress=len(paths) > 20)
    return embeddings, [paths[i] for i in kept], skipped


def enroll_command(args: argparse.Namespace) -> SpeakerRegistry:
    groups: dict[str, list] = {}
    if args.folders:
        for clip in scan_speaker_folders(args.folders):
            groups.setdefault(clip.speaker, []).append(clip)
    if args.clips:
        if not args.name:
            raise InputError("<arguments>", "--name is required with clips given as arguments")
        groups[args.name] = audio_inputs(args.clips)
    if not groups:
        raise InputError("<arguments>", "nothing to enrol: give --name with clips, or --folders")

    if args.registry.is_file():
        registry = SpeakerRegistry.load(args.registry)
        # the encoder asked for (by default the registry's own), loaded once and checked against the registry
        encoder = load_encoder(args.encoder or registry.encoder["name"], args.checkpoint or registry.encoder.get("checkpoint"))
        registry.check_encoder(encoder.spec(), args.registry)
    else:
        encoder = load_encoder(args.encoder or "ge2e", args.checkpoint)
        registry = new_registry(encoder, args.calibration)
    frontend = _frontend(args)
    for name, clips in sorted(groups.items()):
        embeddings, used, _ = _embed(encoder, clips, frontend)
        registry.enroll(name, embeddings)
        print(f"enrolled {name!r} from {len(used)} clip(s)")
    registry.save(args.registry)
    print(f"registry {args.registry}: {len(registry.names)} speaker(s), encoder {describe_encoder(registry.encoder)}, "
          f"{registry.normaliser.method} scores, threshold {registry.threshold:.3f}")
    return registry


def score_command(args: argparse.Namespace) -> list[dict]:
    registry = SpeakerRegistry.load(args.registry)
    if args.threshold is not None:
        registry.threshold = args.threshold
    if args.command == "verify" and args.claim not in registry.speakers:
        raise InputError(args.registry, f"speaker {args.claim!r} is not enrolled; enrolled: {registry.names}")
    embeddings, used, skipped = _embed(encoder_from_spec(registry.encoder), audio_inputs(args.clips), _frontend(args))
    if args.command == "identify":
        rows = [{"path": str(p), "speaker": name, "score": score, "note": ""}
                for p, (name, score) in zip(used, registry.identify(embeddings))]
        rows += [{"path": str(p), "speaker": "", "score": "", "note": f"skipped: {reason}"} for p, reason in skipped]
    else:
        rows = [{"path": str(p), "claimed": args.claim, "accepted": accepted, "score": score, "note": ""}
                for p, (accepted, score) in zip(used, registry.verify(embeddings, args.claim))]
        rows += [{"path": str(p), "claimed": args.claim, "accepted": "", "score": "", "note": f"skipped: {reason}"}
                 for p, reason in skipped]
    for row in rows:
        if not row["note"]:
            print(",".join(f"{v:.4f}" if isinstance(v, float) else str(v) for k, v in row.items() if k != "note"))
    if args.output:
        write_csv(args.output, rows)
    return rows


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    return enroll_command(args) if args.command == "enroll" else score_command(args)


if __name__ == "__main__":
    run_main(main)
