"""Conversations made of real read speech, with exact reference turns, for measuring diarization.

From a folder of one sub-folder per speaker (`../shared/data/speaker_id/multispeaker/audio`): each speaker's
first `ENROLL_CLIPS` clips by file name are kept for enrolment and never used in a conversation; the
`STRANGERS` are never enrolled. A conversation has 2–5 speakers (some with one stranger) taking turns of
1–8 s of speech cut from their other clips, with pauses of 0.1–0.6 s; in the overlap variant a turn starts
before the previous one ends often enough for about 10% of the speech to be overlapped. The reference turn
of a piece is the span from its first to its last speech frame (Silero VAD on the piece alone), as a human
annotator would mark a sentence. Every piece is scaled to the same loudness (-26 dBFS), as voices on one
channel would be roughly; the corpora still differ in microphone and room, which makes between-corpus
speakers easier to tell apart than in a real meeting (see multispeaker/SOURCE.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.env import SHARED_DATA
from core.io import read_audio
from speaker_id.diarization import Turn
from speaker_id.frontend import SAMPLE_RATE, speech_segments

MULTISPEAKER = SHARED_DATA / "speaker_id" / "multispeaker" / "audio"
ENROLL_CLIPS = 5
STRANGERS = ("vcc2016_TM3", "vctk_p228")  # never enrolled: one voice per corpus family with enrolled neighbours


@dataclass
class Conversation:
    uri: str
    audio: np.ndarray  # 16 kHz mono
    turns: list[Turn]

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def speakers(self) -> list[str]:
        return sorted({t.speaker for t in self.turns})


def speaker_clips(root: Path = MULTISPEAKER) -> dict[str, list[Path]]:
    return {folder.name: sorted(folder.glob("*.wav")) for folder in sorted(root.iterdir()) if folder.is_dir()}


def enrolment_clips(root: Path = MULTISPEAKER, strangers=STRANGERS) -> dict[str, list[Path]]:
    return {name: clips[:ENROLL_CLIPS] for name, clips in speaker_clips(root).items() if name not in strangers}


class PieceSource:
    """Speech pieces of each speaker's conversation clips (not the enrolment ones), trimmed to speech."""

    def __init__(self, root: Path = MULTISPEAKER):
        self.clips = {name: clips[ENROLL_CLIPS:] for name, clips in speaker_clips(root).items()}
        self._cache: dict[Path, tuple[np.ndarray, list[tuple[int, int]]]] = {}

    def speech(self, path: Path) -> tuple[np.ndarray, list[tuple[int, int]]]:
        if path not in self._cache:
            audio = read_audio(path, SAMPLE_RATE)
            segments = speech_segments(audio)
            if segments:
                audio = audio[segments[0][0]:segments[-1][1]]
                segments = [(s - segments[0][0], e - segments[0][0]) for s, e in segments]
            rms = float(np.sqrt(np.mean(audio ** 2))) if len(audio) else 0.0
            self._cache[path] = (audio * (10 ** (-26 / 20) / rms) if rms > 0 else audio, segments)
        return self._cache[path]

    def piece(self, speaker: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
        """Up to `seconds` of a random clip of the speaker, starting at a speech segment, ending with speech."""
        for _ in range(20):
            audio, segments = self.speech(self.clips[speaker][rng.integers(len(self.clips[speaker]))])
            if len(audio) >= 0.8 * SAMPLE_RATE:
                break
        starts = [s for s, _ in segments if len(audio) - s >= SAMPLE_RATE] or [0]
        start = int(starts[rng.integers(len(starts))])
        end = min(len(audio), start + int(seconds * SAMPLE_RATE))
        ends = [e for _, e in segments if start < e <= end]  # end on the end of a speech segment when one fits
        if ends and ends[-1] - start >= 0.8 * SAMPLE_RATE:
            end = ends[-1]
        return audio[start:end]


def make_conversation(source: PieceSource, uri: str, rng: np.random.Generator, overlap: bool = False,
                      stranger: bool = False, min_speakers: int = 2, max_speakers: int = 5) -> Conversation:
    names = [n for n in source.clips if n not in STRANGERS]
    count = int(rng.integers(min_speakers, max_speakers + 1))
    chosen = list(rng.choice(names, count - int(stranger), replace=False))
    if stranger:
        chosen.append(str(rng.choice(list(STRANGERS))))
    order = list(rng.permutation(chosen))  # everyone speaks at least once, then random turn-taking
    for _ in range(int(rng.integers(2, 7))):
        order.append(str(rng.choice([n for n in chosen if n != order[-1]])))
    pieces, turns, cursor, previous_end = [], [], 0.0, 0.0
    for speaker in order:
        audio = source.piece(str(speaker), float(rng.uniform(1.0, 8.0)), rng)
        if overlap and turns and rng.random() < 0.45:
            start = max(turns[-1].start + 0.5, previous_end - float(rng.uniform(0.4, 1.5)))
        else:
            start = previous_end + float(rng.uniform(0.1, 0.6))
        start = round(start, 3)
        pieces.append((start, audio))
        turns.append(Turn(start, round(start + len(audio) / SAMPLE_RATE, 3), str(speaker)))
        previous_end = max(previous_end, turns[-1].end)
        cursor = max(cursor, previous_end)
    total = np.zeros(int((cursor + 0.5) * SAMPLE_RATE), np.float32)
    for start, audio in pieces:
        offset = int(round(start * SAMPLE_RATE))
        total[offset:offset + len(audio)] += audio
    return Conversation(uri, total, turns)


def make_conversations(count: int, seed: int, overlap: bool = False, root: Path = MULTISPEAKER,
                       source: PieceSource | None = None) -> list[Conversation]:
    """`count` conversations; every third one has a stranger in it."""
    rng = np.random.default_rng(seed)
    source = source or PieceSource(root)
    prefix = "overlap" if overlap else "plain"
    return [make_conversation(source, f"{prefix}_{seed}_{i:02d}", rng, overlap=overlap, stranger=i % 3 == 2)
            for i in range(count)]


def overlap_fraction(turns: list[Turn], step: float = 0.01) -> float:
    """Overlapped speech / speech (time where two or more speak, over time where anyone speaks)."""
    end = max(t.end for t in turns)
    grid = np.arange(0, end, step)
    count = np.zeros(len(grid), int)
    for t in turns:
        count[(grid >= t.start) & (grid < t.end)] += 1
    return float((count >= 2).sum() / max(1, (count >= 1).sum()))
