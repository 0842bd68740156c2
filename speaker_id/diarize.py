"""Who spoke when in a recording, with the names of enrolled speakers.

    python -m speaker_id.diarize meeting.wav --registry people.json -o turns.rttm
    python -m speaker_id.diarize call.flac -o turns.rttm --num-speakers 2          # no registry: unknown_1, unknown_2
    python -m speaker_id.diarize a.wav b.wav --registry people.json -o turns.rttm --csv turns.csv --plot turns.png
    python -m speaker_id.diarize --microphone --registry people.json -o live.rttm     # online, until Ctrl+C

Writes the turns as RTTM (`SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>`, the format
diarization scorers read), a CSV of the turns with their scores (beside the RTTM unless `--csv`), and a
timeline picture (beside the RTTM unless `--plot`; `--no-plot` to skip it). Recordings are read as a stream
in any format soundfile reads and any rate, so memory stays flat whatever their length.

How (details in speaker_id/diarization.py): Silero VAD finds the speech; GE2E embeds windows of
`--window` seconds of speech every `--step` seconds; agglomerative clustering groups them, with the number
of speakers unknown unless `--num-speakers` (or bounded by `--min-speakers` / `--max-speakers`); each
cluster is named from the registry (enrolled with `python -m speaker_id.enroll enroll`) when its score
reaches the registry's calibrated threshold and leads the runner-up by `--margin`, else `unknown_1`,
`unknown_2`, … Overlapped speech gets one speaker per moment (the dominant voice); the other is missed.

`--online` labels while reading (speaker_id/online.py); `--microphone` reads the microphone with sounddevice
(PortAudio) instead of files, online, for `--seconds` or until Ctrl+C, then writes the same outputs.

A recording with no speech (silence, music, noise) is skipped with the reason; with several recordings the
others are still written and the exit status is 1.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import core  # noqa: F401  (offline environment first)
from core.cli import InputArgument, OutputFile, run_main, skip
from core.io import InputError, check_output, save_figure, write_csv
from core.timeline import SEGMENT_COLUMNS, plot_segments

DEFAULTS = dict(window_seconds=1.0, step_seconds=0.25, cluster_threshold=0.35, margin=0.05)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recordings", nargs="*", type=InputArgument("audio", as_path=False),
                        help="audio files (WAV, FLAC, OGG, MP3, AIFF; any rate and channel count); none with --microphone")
    parser.add_argument("-o", "--output", type=OutputFile((".rttm",)), required=True, help="RTTM file of the turns to write")
    parser.add_argument("--registry", type=Path,
                        help="speaker registry (GE2E) from `speaker_id.enroll enroll`, to name the speakers; "
                             "without it every speaker is unknown_N")
    parser.add_argument("--csv", type=OutputFile((".csv",)),
                        help="CSV of the turns with scores (default: the RTTM's name with .csv)")
    parser.add_argument("--plot", type=OutputFile((".png", ".pdf", ".svg")),
                        help="timeline picture (default: the RTTM's name with .png)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the timeline picture")
    parser.add_argument("--num-speakers", type=int, help="the number of speakers, when known (per recording)")
    parser.add_argument("--min-speakers", type=int, default=1, help="at least this many speakers (default %(default)s)")
    parser.add_argument("--max-speakers", type=int, help="at most this many speakers (default: no limit)")
    parser.add_argument("--threshold", type=float,
                        help="score a cluster needs to be named (default: the registry's calibrated threshold)")
    parser.add_argument("--margin", type=float, default=DEFAULTS["margin"],
                        help="how far a name's score must lead the runner-up's to be given (default %(default)s)")
    parser.add_argument("--cluster-threshold", type=float, default=DEFAULTS["cluster_threshold"],
                        help="cosine distance at which clusters stop merging when the number of speakers is "
                             "unknown; higher gives fewer speakers (default %(default)s)")
    parser.add_argument("--clustering", choices=("ahc", "spectral"), default="ahc",
                        help="ahc: agglomerative, guided by the registry (default); spectral: Google's spectralcluster "
                             "with auto-tuned refinement (worse on the generated development conversations)")
    parser.add_argument("--window", type=float, default=DEFAULTS["window_seconds"],
                        help="seconds of speech per embedding window (default %(default)s)")
    parser.add_argument("--step", type=float, default=DEFAULTS["step_seconds"],
                        help="seconds of speech between window starts (default %(default)s)")
    parser.add_argument("--online", action="store_true",
                        help="label while reading: each speech frame's label is printed (and kept) --delay seconds "
                             "after it, never revised; clustering is done window by window (speaker_id/online.py)")
    parser.add_argument("--delay", type=float, default=1.5,
                        help="with --online, seconds of audio after a moment before its label is emitted "
                             "(default %(default)s; with 0.25 s reads the delay stays under 2 s once the first second of "
                             "speech is heard: the first label needs one embedding window)")
    parser.add_argument("--microphone", action="store_true",
                        help="diarize what the microphone hears (sounddevice; implies --online): labels printed as they "
                             "come, the outputs written when --seconds have been heard or at Ctrl+C")
    parser.add_argument("--device", help="with --microphone, the input device (index or name; default: the system's)")
    parser.add_argument("--seconds", type=float, help="with --microphone, stop after this many seconds (default: Ctrl+C)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _check_arguments(args: argparse.Namespace) -> None:
    for name in ("num_speakers", "min_speakers", "max_speakers", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError("<arguments>", f"--{name.replace('_', '-')} must be at least 1, not {value}")
    if args.max_speakers and args.min_speakers > args.max_speakers:
        raise InputError("<arguments>", f"--min-speakers {args.min_speakers} is above --max-speakers {args.max_speakers}")
    if args.microphone == bool(args.recordings):
        raise InputError("<arguments>", "give recordings or --microphone, one of the two")
    if args.seconds is not None and (not args.microphone or args.seconds <= 0):
        raise InputError("<arguments>", "--seconds is for --microphone and must be positive")
    if args.window <= 0.3 or args.step <= 0 or args.step > args.window:
        raise InputError("<arguments>", "--window must be over 0.3 s and --step between 0 and --window")


def load_registry(path: Path):
    from speaker_id.verification import SpeakerRegistry, describe_encoder

    registry = SpeakerRegistry.load(path)
    if registry.encoder.get("name") != "ge2e":
        raise InputError(path, f"holds {describe_encoder(registry.encoder)} embeddings; diarization embeds with GE2E: "
                               "enrol the speakers into a GE2E registry (`speaker_id.enroll enroll --encoder ge2e`)")
    if not registry.speakers:
        raise InputError(path, "no speaker enrolled in this registry")
    return registry


def turn_rows(diarization, path) -> list[dict]:
    clusters = {c.label: c for c in diarization.clusters}
    rows = []
    for turn in diarization.turns:
        cluster = clusters.get(turn.speaker)
        rows.append({"input": str(path), "start": turn.start, "end": turn.end, "label": turn.speaker,
                     "score": None if math.isnan(turn.score) else round(turn.score, 4),
                     "uri": diarization.uri, "duration": round(turn.duration, 3),
                     "best_enrolled_score": None if cluster is None or math.isnan(cluster.score) else round(cluster.score, 4),
                     "runner_up": cluster.runner_up if cluster else "",
                     "runner_up_score": None if cluster is None or math.isnan(cluster.runner_up_score) else round(cluster.runner_up_score, 4)})
    return rows


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as error:  # the wheel needs the PortAudio library, which Linux wheels leave out
        raise InputError("<microphone>", f"sounddevice cannot be used ({error}); install PortAudio (Debian/Ubuntu: "
                                         "apt install libportaudio2) or diarize a recorded file") from None
    return sounddevice


def diarize_microphone(diarizer, device: str | None = None, seconds: float | None = None,
                       block_seconds: float = 0.25):
    """What the microphone hears, pushed to `diarizer` in `block_seconds` reads, for `seconds` or until Ctrl+C."""
    from speaker_id.frontend import SAMPLE_RATE

    sounddevice = _sounddevice()
    block = int(block_seconds * SAMPLE_RATE)
    device = int(device) if device is not None and device.isdigit() else device
    diarizer.reset()
    heard, overflows = 0, 0
    try:
        with sounddevice.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=block,
                                     device=device) as stream:
            print(f"listening ({'Ctrl+C to stop' if seconds is None else f'{seconds:g} s'})", flush=True)
            while seconds is None or heard < seconds * SAMPLE_RATE:
                samples, overflowed = stream.read(block)
                overflows += bool(overflowed)
                diarizer.push(samples[:, 0])
                heard += len(samples)
    except KeyboardInterrupt:
        pass
    except sounddevice.PortAudioError as error:
        raise InputError("<microphone>", f"cannot be read: {error}") from None
    if overflows:
        print(f"warning: the microphone's buffer overflowed {overflows} time(s): audio was lost (a slow machine? "
              "try --threads or a larger --step)", flush=True)
    return diarizer.finish("microphone")


def _print_label(start: float, end: float, label: str, emitted_at: float) -> None:
    print(f"{emitted_at:8.2f} s: {start:.2f}-{end:.2f} {label}", flush=True)


def _report(path: Path, diarization) -> None:
    speakers = ", ".join(f"{c.label} {c.speech_seconds:.1f} s" for c in sorted(diarization.clusters, key=lambda c: -c.speech_seconds))
    note = " (one speaker only)" if diarization.note == "one_speaker" else ""
    print(f"{path}: {len(diarization.clusters)} speaker(s){note}: {speakers}; {len(diarization.turns)} turns, "
          f"{diarization.speech_seconds:.1f} s of speech in {diarization.duration:.1f} s")


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    _check_arguments(args)
    csv_path = args.csv or args.output.with_suffix(".csv")
    plot_path = None if args.no_plot else (args.plot or args.output.with_suffix(".png"))
    for path in (csv_path, plot_path):
        if path is not None:
            check_output(path)
    if args.microphone:
        _sounddevice()  # no PortAudio: said before the models load
    registry = load_registry(args.registry) if args.registry else None
    if registry is not None and args.threshold is not None:
        registry.set_threshold(args.threshold)

    import torch

    from speaker_id.diarization import Diarizer, _vad_model, diarize_file, turns_panel, write_rttm

    _vad_model()  # loads Silero (whose import sets torch threads) before the thread count is set
    torch.set_num_threads(args.threads)
    if args.online or args.microphone:
        from speaker_id.online import OnlineDiarizer

        diarizer = OnlineDiarizer(registry, delay_seconds=args.delay, window_seconds=args.window, step_seconds=args.step,
                                  margin=args.margin, on_label=None if args.no_progress else _print_label)
    else:
        diarizer = Diarizer(registry, window_seconds=args.window, step_seconds=args.step,
                        cluster_threshold=args.cluster_threshold, num_speakers=args.num_speakers,
                            min_speakers=args.min_speakers, max_speakers=args.max_speakers, margin=args.margin,
                            clustering=args.clustering)
    results, failures, uris = [], [], set()
    if args.microphone:
        diarization = diarize_microphone(diarizer, args.device, args.seconds)
        if not diarization.turns:
            raise InputError("<microphone>", f"no speech heard in {diarization.duration:.1f} s; nothing to diarize")
        results.append((Path("microphone"), diarization))
        _report(results[-1][0], diarization)
    for recording in args.recordings:
        path = Path(recording)
        try:
            if path.is_dir():
                raise InputError(path, "is a folder; give the recordings themselves")
            uri = path.stem if path.stem not in uris else f"{path.stem}_{len(uris)}"
            diarization = diarize_file(path, diarizer, progress=not (args.no_progress or args.online), uri=uri,
                                       block_seconds=0.25 if args.online else 10.0)
            if not diarization.turns:
                raise InputError(path, f"no speech found in {diarization.duration:.1f} s (silence, music or noise?); "
                                       "nothing to diarize")
        except InputError as error:
            failures.append(error)
            continue
        uris.add(uri)
        results.append((path, diarization))
        _report(path, diarization)
    if not results:
        first = failures[0]
        raise first if len(failures) == 1 else InputError(first.path, f"{first.reason} (and {len(failures) - 1} more "
                                                                      "recordings, none usable)")
    for error in failures:
        skip(error.path, error.reason)
    write_rttm(args.output, [d for _, d in results])
    rows = [row for path, d in results for row in turn_rows(d, path)]
    write_csv(csv_path, rows or {column: [] for column in (*SEGMENT_COLUMNS, "uri", "duration")})
    written = [str(args.output), str(csv_path)]
    if plot_path is not None:
        save_figure(plot_segments([turns_panel(f"{path.name}: {len(d.clusters)} speaker(s)", d.turns, duration=d.duration)
                                   for path, d in results]), plot_path)
        written.append(str(plot_path))
    print("wrote " + ", ".join(written))
    return [d for _, d in results]


if __name__ == "__main__":
    run_main(main)
