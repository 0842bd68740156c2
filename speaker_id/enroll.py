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

Enrolment never loses a voice: with `--folders`, every speaker with a usable clip is enrolled, each clip or
speaker that fails is listed with its reason, the registry is written with the rest and the exit status
is 1. A name already in the registry is refused unless `--replace` (a new voiceprint) or `--add` (these
clips added to it). The registry records each speaker's seconds of speech; under `--min-total-speech`
(10 s) the enrolment is kept with a warning.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.cli import InputArgument, ModelArgument, OutputFile, run_main, skip
from core.io import AUDIO_EXTENSIONS, InputError, write_csv
from speaker_id.calibrate import default_calibration_path, read_speech
from speaker_id.data import audio_inputs, scan_speaker_folders
from speaker_id.encoders import ENCODERS, SpeakerEncoder, encoder_from_spec, load_encoder
from speaker_id.frontend import MIN_SPEECH_SECONDS, SAMPLE_RATE, SpeechFrontend
from speaker_id.verification import TOO_SHORT, ScoreNormaliser, SpeakerRegistry, describe_encoder

MIN_ENROLMENT_SPEECH = 10.0  # seconds: below it an enrolment is accepted with a warning


def _add_frontend_options(parser: argparse.ArgumentParser, min_speech: float, why: str = "") -> None:
    parser.add_argument("--no-vad", action="store_true",
                        help="keep every sample instead of cutting silences (for clips already trimmed to speech)")
    parser.add_argument("--min-speech", type=float, default=min_speech,
                        help=f"skip clips with less speech than this, in seconds (default %(default)s{why})")


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
    existing = enroll.add_mutually_exclusive_group()
    existing.add_argument("--replace", action="store_true",
                          help="a name already in the registry gets a new voiceprint from these clips (default: refused)")
    existing.add_argument("--add", action="store_true",
                          help="a name already in the registry keeps its voiceprint and these clips are added to it")
    enroll.add_argument("--min-total-speech", type=float, default=MIN_ENROLMENT_SPEECH,
                        help="warn when a speaker's clips hold less speech than this in all, in seconds "
                             "(default %(default)s): the voiceprint is kept, but names given from it are less sure")
    _add_frontend_options(enroll, MIN_SPEECH_SECONDS)

    for name, text in (("identify", "closest enrolled speaker per clip, or 'unknown'"),
                       ("verify", "accept or reject a claimed identity per clip")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--registry", type=Path, required=True)
        command.add_argument("--threshold", type=float, help="accept threshold (default: the registry's)")
        command.add_argument("-o", "--output", type=OutputFile(), help="also write the results as CSV (skipped clips marked)")
        command.add_argument("clips", nargs="+", type=InputArgument("audio", as_path=False), help="audio files or folders")
        if name == "verify":
            command.add_argument("--claim", required=True, help="the enrolled speaker the clips claim to be")
        _add_frontend_options(command, 0.0, ": every clip with speech gets an answer, `too_short` under the "
                                            "shortest speech the registry's thresholds were calibrated for")
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
        return SpeakerRegistry(encoder.spec(), threshold, normaliser, {"file": str(path), **data.get("calibration", {})},
                               speech_thresholds=SpeakerRegistry.thresholds_from_calibration(data.get("by_speech_seconds", {})))
    if calibration is not None:
        raise InputError(calibration, "calibration file not found")
    if encoder.name == "cnn":
        # its own validation threshold separates the few speakers it was trained on, not new voices
        raise InputError(encoder.checkpoint, "the CNN is not calibrated for speakers it was not trained on (its embedding "
                                             "barely tells new voices apart: open-set EER 14% on multispeaker, and its "
                                             "own validation threshold names almost every stranger as somebody). Enrol "
                                             "with the default --encoder ge2e, or calibrate this checkpoint on development "
                                             "speakers (`python -m speaker_id.calibrate --encoder cnn --checkpoint "
                                             f"{encoder.checkpoint} --data dev_speakers/ -o cnn.json`) and pass "
                                             "--calibration cnn.json")
    raise InputError(path, f"no calibration for encoder {encoder.name}; make one with `python -m speaker_id.calibrate`")


def _empty_speaker_folders(folder: Path) -> list[Path]:
    return [sub for sub in sorted(folder.iterdir()) if sub.is_dir()
            and not any(p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS for p in sub.rglob("*"))]


def enroll_command(args: argparse.Namespace) -> SpeakerRegistry:
    """Every usable speaker is enrolled; each clip or speaker that fails is listed with its reason (`skip`, exit
    status 1) and the registry holds the rest. Nothing usable at all: an error and no registry written."""
    groups: dict[str, list] = {}
    failed_speakers: list[tuple[Path, str]] = []
    if args.folders:
        for clip in scan_speaker_folders(args.folders):
            groups.setdefault(clip.speaker, []).append(clip)
        failed_speakers += [(sub, "no audio files in this speaker's folder") for sub in _empty_speaker_folders(args.folders)]
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
    taken = sorted(set(groups) & set(registry.speakers))
    if taken and not (args.replace or args.add):
        raise InputError(args.registry, f"already holds {', '.join(map(repr, taken))}: pass --replace for a new voiceprint, "
                                        "--add to add these clips to it, or choose another --name")
    frontend = _frontend(args)
    enrolled, failed_clips = [], []
    for name, clips in sorted(groups.items()):
        speech, used, failed = read_speech([c.path for c in clips], frontend, tell=False)  # failures listed at the end
        failed_clips += failed
        if not speech:
            where = args.folders / name if args.folders and name != args.name else Path(clips[0].path)
            failed_speakers.append((where, f"speaker {name!r} not enrolled: no clip with enough speech "
                                           f"({len(failed)} clip(s) skipped, listed above)"))
            continue
        seconds = sum(len(w) for w in speech) / SAMPLE_RATE
        registry.enroll(name, encoder.embed(speech, progress=len(speech) > 20), seconds, add=args.add)
        enrolled.append(name)
        verb = "added to" if args.add and name in taken else "replaced" if name in taken else "enrolled"
        print(f"{verb} {name!r} from {len(used)} clip(s), {seconds:.1f} s of speech"
              + (f" ({registry.clip_counts[name]} clips, {registry.speech_seconds.get(name, seconds):.1f} s in all)"
                 if verb == "added to" else ""))
        total = registry.speech_seconds.get(name, seconds)
        if total < args.min_total_speech:
            print(f"warning: {name!r}: only {total:.1f} s of speech in all (under {args.min_total_speech:g} s): enrolled, "
                  "but names given from this voiceprint are less sure; add clips with --add", file=sys.stderr)
    for path, reason in failed_clips:
        skip(path, reason)
    for path, reason in failed_speakers:
        skip(path, reason)
    if not enrolled:
        first = failed_speakers[0] if failed_speakers else (Path(failed_clips[0][0]), failed_clips[0][1])
        raise InputError(first[0], f"{first[1]}; nothing enrolled, {args.registry} not written")
    registry.save(args.registry)
    print(f"registry {args.registry}: {len(registry.names)} speaker(s), encoder {describe_encoder(registry.encoder)}, "
          f"{registry.normaliser.method} scores, threshold {registry.threshold:.3f}")
    return registry


def score_command(args: argparse.Namespace) -> list[dict]:
    """Each clip's answer: a name (or accepted), `unknown` (or rejected), or `too_short` when it holds less speech
    than the registry's thresholds were calibrated for (its best score is still given); clips without speech are
    skipped."""
    registry = SpeakerRegistry.load(args.registry)
    if args.threshold is not None:
        registry.set_threshold(args.threshold)
    if args.command == "verify" and args.claim not in registry.speakers:
        raise InputError(args.registry, f"speaker {args.claim!r} is not enrolled; enrolled: {registry.names}")
    paths = [c.path for c in audio_inputs(args.clips)]
    speech, kept, skipped = read_speech(paths, _frontend(args))
    if not speech:
        raise InputError(skipped[0][0], skipped[0][1] + (f" (and {len(skipped) - 1} more clips, none usable)"
                                                         if len(skipped) > 1 else ""))
    seconds = [len(w) / SAMPLE_RATE for w in speech]
    embeddings = encoder_from_spec(registry.encoder).embed(speech, progress=len(speech) > 20)
    answers = (registry.identify(embeddings, seconds) if args.command == "identify"
               else registry.verify(embeddings, args.claim, seconds))
    rows = []
    for index, clip_seconds, (answer, score) in zip(kept, seconds, answers):
        row = {"path": str(paths[index]), "speech_seconds": round(clip_seconds, 2)}
        if args.command == "identify":
            row.update(speaker=answer, score=score)
        else:
            row.update(claimed=args.claim, accepted=TOO_SHORT if answer is None else answer, score=score)
        too_short = answer in (None, TOO_SHORT)
        rows.append({**row, "note": f"{clip_seconds:.2f} s of speech; an answer needs at least "
                                    f"{registry.min_speech_seconds:.2f} s" if too_short else ""})
    blank = {"speaker": ""} if args.command == "identify" else {"claimed": args.claim, "accepted": ""}
    rows += [{"path": str(p), "speech_seconds": "", **blank, "score": "", "note": f"skipped: {reason}"} for p, reason in skipped]
    for row in rows:
        if not row["note"].startswith("skipped"):
            print(",".join(f"{v:.4f}" if k == "score" else str(v)
                           for k, v in row.items() if k not in ("note", "speech_seconds")))
    if args.output:
        write_csv(args.output, rows)
    return rows


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    return enroll_command(args) if args.command == "enroll" else score_command(args)


if __name__ == "__main__":
    run_main(main)
