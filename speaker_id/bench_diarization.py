"""The diarization part of the benchmark (`python -m speaker_id.bench --only diarization`).

Sets:
- `generated` / `generated_overlap`: conversations made by `speaker_id.conversations` from `multispeaker`
  (seed 0; the defaults were chosen on other conversations, seed 100, of the same speakers). Speakers are
  enrolled from their first 5 clips, which no conversation uses; `vcc2016_TM3` and `vctk_p228` are never
  enrolled, and every third conversation has one of them.
- each folder of `conversations/` (real recordings with RTTM references). `ami_debug`: each file is named
  from enrolment clips cut from the *other* files (AMI speakers recur across meetings; a speaker with none is
  a stranger); `trn02` (one 0.7 s turn) is left out, as its SOURCE.md advises. The other folders have no
  recurring speakers, so their enrolment clips come from the same recording (optimistic).

Per set: DER (pyannote.metrics, collar 0.25 s, overlapped speech scored), the time of enrolled speakers
labelled with their name, the time of strangers labelled with an enrolled name, the processing seconds per
audio second (read + VAD + embeddings + clustering, `--threads` PyTorch threads), and the DER of the same
pipeline told the true number of speakers. Online (`speaker_id/online.py`, fed 0.25 s blocks): DER and the
largest delay between a speech frame's end and the emission of its label.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from core.env import SHARED_DATA
from core.io import InputError
from core.results import markdown_table
from speaker_id.conversations import MULTISPEAKER, STRANGERS, enrolment_clips, make_conversations, overlap_fraction
from speaker_id.diarization import (Diarizer, audio_blocks, diarize_file, read_rttm, score_diarization, summarise_scores,
                                    turns_panel)

CONVERSATIONS = SHARED_DATA / "speaker_id" / "conversations"
REAL_SETS = ("ami_debug", "pyannote_sample", "pyaudioanalysis_examples", "picovoice_falcon_test")
LEFT_OUT = {"ami_debug": {"trn02"}}


def _registry(clips: dict[str, list[Path]]):
    from speaker_id.encoders import load_encoder
    from speaker_id.enroll import new_registry
    from speaker_id.frontend import SpeechFrontend

    encoder, frontend = load_encoder("ge2e"), SpeechFrontend()
    registry = new_registry(encoder, None)
    for name, paths in sorted(clips.items()):
        speech = []
        for path in paths:
            try:
                speech.append(frontend.read(path))
            except InputError as error:  # e.g. an AMI clip with 0.35 s of speech: that speaker stays a stranger
                print(f"  enrolment: {error}")
        if speech:
            registry.enroll(name, encoder.embed(speech), sum(len(w) for w in speech) / 16000)
    return registry


def _run(diarizer: Diarizer, audio: np.ndarray, uri: str, block: int = 16000 * 10):
    diarizer.reset()
    for start in range(0, len(audio), block):
        diarizer.push(audio[start:start + block])
    return diarizer.finish(uri)


def _online(registry, audio: np.ndarray, uri: str):
    """The online pass, fed 0.25 s blocks as a stream would be: (diarization, its largest label delay)."""
    from speaker_id.online import OnlineDiarizer

    diarizer = OnlineDiarizer(registry)
    result = _run(diarizer, audio, uri, block=4000)
    latencies = diarizer.latencies()
    return result, float(latencies.max()) if len(latencies) else 0.0


def _online_summary(rows: list, latencies: list) -> dict:
    summary = summarise_scores(rows)
    return {"der": summary["der"], "named_time_accuracy": summary["named_time_accuracy"],
            "stranger_named_rate": summary["stranger_named_rate"], "latency_seconds": max(latencies),
            "block_seconds": 0.25, "delay_seconds": 1.5}


def generated_set(count: int, seed: int, overlap: bool, registry, figure_items: list) -> dict:
    conversations = make_conversations(count, seed, overlap=overlap)
    rows, known_rows, seconds, audio_seconds = [], [], 0.0, 0.0
    online_rows, online_latencies = [], []
    for conversation in conversations:
        online, latency = _online(registry, conversation.audio, conversation.uri)
        online_rows.append(score_diarization(conversation.turns, online.turns, conversation.duration, registry.names))
        online_latencies.append(latency)
        started = time.perf_counter()
        result = _run(Diarizer(registry), conversation.audio, conversation.uri)
        seconds += time.perf_counter() - started
        audio_seconds += conversation.duration
        rows.append(score_diarization(conversation.turns, result.turns, conversation.duration, registry.names))
        known = _run(Diarizer(registry, num_speakers=len(conversation.speakers)), conversation.audio, conversation.uri)
        known_rows.append(score_diarization(conversation.turns, known.turns, conversation.duration, registry.names))
        if len(figure_items) < 2 and (overlap or any(s in STRANGERS for s in conversation.speakers)):
            figure_items.append((f"{conversation.uri} (generated{', overlap' if overlap else ''}): reference (ref) and "
                                 "diarization", result.turns, conversation.turns))
    summary = summarise_scores(rows)
    summary.update(der_known_speakers=summarise_scores(known_rows)["der"], realtime_factor=seconds / audio_seconds,
                   audio_seconds=audio_seconds, overlap_fraction=float(np.mean([overlap_fraction(c.turns) for c in conversations])),
                   conversations=len(conversations), with_stranger=sum(any(s in STRANGERS for s in c.speakers) for c in conversations),
                   speakers_per_conversation=[len(c.speakers) for c in conversations], seed=seed,
                   online=_online_summary(online_rows, online_latencies))
    return summary


def _enrolment_table(folder: Path) -> list[dict]:
    path = folder / "enrolment.tsv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or not {"speaker", "source_uri", "file"} <= set(rows[0]):
        raise InputError(path, "needs the columns speaker, source_uri, file")
    return rows


def real_set(name: str, figure_items: list) -> dict:
    folder = CONVERSATIONS / name
    enrolment = _enrolment_table(folder)
    rows, known_rows, seconds, audio_seconds, files = [], [], 0.0, 0.0, []
    online_rows, online_latencies = [], []
    for wav in sorted(folder.glob("*.wav")):
        uri = wav.stem
        if uri in LEFT_OUT.get(name, ()):
            continue
        reference = read_rttm(folder / f"{uri}.rttm").get(uri)
        if reference is None:
            raise InputError(folder / f"{uri}.rttm", f"no turns for {uri}")
        same_file = name != "ami_debug"
        clips: dict[str, list[Path]] = {}
        for row in enrolment:
            if (row["source_uri"] == uri) == same_file:
                clips.setdefault(row["speaker"], []).append(folder / row["file"])
        registry = _registry(clips)
        duration = sum(len(b) for b in audio_blocks(wav)) / 16000
        started = time.perf_counter()
        result = diarize_file(wav, Diarizer(registry), uri=uri)
        seconds += time.perf_counter() - started
        audio_seconds += duration
        score = score_diarization(reference, result.turns, duration, registry.names)
        speakers = sorted({t.speaker for t in reference})
        known = diarize_file(wav, Diarizer(registry, num_speakers=len(speakers)), uri=uri)
        known_rows.append(score_diarization(reference, known.turns, duration, registry.names))
        rows.append(score)
        online, latency = _online(registry, np.concatenate(list(audio_blocks(wav))), uri)
        online_rows.append(score_diarization(reference, online.turns, duration, registry.names))
        online_latencies.append(latency)
        files.append({"uri": uri, "speakers": len(speakers), "enrolled": sorted(set(speakers) & set(registry.names)),
                      "found": len(result.clusters), "der": score["der"], "der_known_speakers": known_rows[-1]["der"]})
        print(f"  {name}/{uri}: {len(speakers)} speakers, {len(result.clusters)} found, DER {score['der']:.3f} "
              f"(told the number: {known_rows[-1]['der']:.3f})")
        if name == "ami_debug" and uri == "dev00" or name == "pyannote_sample":
            figure_items.append((f"{name}/{uri} (real): reference (ref) and diarization", result.turns, reference))
    summary = summarise_scores(rows)
    summary.update(der_known_speakers=summarise_scores(known_rows)["der"], realtime_factor=seconds / audio_seconds,
                   audio_seconds=audio_seconds, files=files,
                   enrolment="clips from the other recordings" if name == "ami_debug" else "clips from the same recording",
                   online=_online_summary(online_rows, online_latencies))
    return summary


DEVELOPMENT_SEED = 100  # the conversations the diarizer's defaults were chosen on (`bench --only development`)


def diarization_benchmark(conversations: int = 20, seed: int = 0, figure: Path | None = None, real: bool = True) -> dict:
    """The generated sets of `seed` and, with `real`, the real recordings; `figure`: the timeline picture."""
    import torch

    registry = _registry(enrolment_clips(MULTISPEAKER))
    figure_items: list = []
    results = {"command_threads": torch.get_num_threads()}
    for key, overlap in (("generated", False), ("generated_overlap", True)):
        results[key] = generated_set(conversations, seed, overlap, registry, figure_items)
        print(f"diarization {key}: DER {results[key]['der']:.4f}, named {results[key]['named_time_accuracy']:.3f}, "
              f"strangers named {results[key]['stranger_named_rate']}, RTF {results[key]['realtime_factor']:.4f}")
    for name in REAL_SETS if real else ():
        if (CONVERSATIONS / name).is_dir():
            results[name] = real_set(name, figure_items)
            print(f"diarization {name}: DER {results[name]['der']:.4f} (told the number of speakers: "
                  f"{results[name]['der_known_speakers']:.4f})")
    results["online"] = {key: value.pop("online") for key, value in results.items() if isinstance(value, dict) and "online" in value}
    if figure is not None and figure_items:
        from core.io import save_figure
        from core.timeline import plot_segments

        save_figure(plot_segments([turns_panel(title, turns, reference) for title, turns, reference in figure_items]), figure)
    return results


def _value(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def diarization_table(results: dict) -> str:
    rows = []
    targets = {"generated": ("≤ 0.05", "≥ 0.97", "≤ 0.05", "≤ 0.05"), "generated_overlap": ("≤ 0.12", "≥ 0.97", "≤ 0.05", "≤ 0.05")}
    for key, r in results.items():
        if not isinstance(r, dict) or key == "online":
            continue
        rows.append([f"`{key}`", f"{r['audio_seconds'] / 60:.1f}", _value(r["der"]), _value(r["der_known_speakers"]),
                     _value(r["missed"]), _value(r["confusion"]), _value(r["named_time_accuracy"]),
                     _value(r["stranger_named_rate"]), _value(r["realtime_factor"], 4)])
        if key in targets:
            rows.append([f"target (`{key}`)", "", targets[key][0], "", "", "", targets[key][1], targets[key][2], targets[key][3]])
    table = markdown_table(["set", "minutes", "DER", "DER, number of speakers given", "missed", "confusion",
                            "named time", "stranger time named", "s per audio s"], rows)
    online = [[f"`{key}`", _value(results[key]["der"]), _value(r["der"]), f"{r['der'] - results[key]['der']:+.3f}",
               _value(r["named_time_accuracy"]), _value(r["stranger_named_rate"]), f"{r['latency_seconds']:.2f}"]
              for key, r in results.get("online", {}).items()]
    online.append(["target (generated sets)", "", "", "≤ +0.03", "", "", "≤ 2.00"])
    lost = [[f"`{key}`", _value(r["named_time_accuracy"]), _value(r["named_time_lost"]["wrong_name"]),
             _value(r["named_time_lost"]["unknown"]), _value(r["named_time_lost"]["unlabelled"]),
             _value(r["named_time_accuracy_collar"])]
            for key, r in results.items() if isinstance(r, dict) and r.get("named_time_lost")]
    return (table + "\n\nOnline (`--online`: fed 0.25 s blocks, each label emitted 1.5 s of audio after its frame, never "
            "revised):\n\n" + markdown_table(["set", "offline DER", "online DER", "difference", "named time",
                                                  "stranger time named", "largest delay (s)"], online)
            + "\n\nWhere the enrolled speakers' time went (offline; time where exactly one reference speaker talks):\n\n"
            + markdown_table(["set", "their own name", "another enrolled name", "unknown_N / too_short", "no label",
                              "own name, outside ±0.25 s of reference turn ends"], lost))
