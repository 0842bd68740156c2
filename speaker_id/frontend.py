"""Front-end for real recordings: any file → mono 16 kHz speech with the silences cut out.

Voice embeddings should describe the voice, not the room tone between sentences, and a clip that holds no
speech at all (silence, music, a door slam) must be refused rather than enrolled as somebody. Speech is
found with Silero VAD (the ONNX model that the `silero-vad` wheel ships, run in onnxruntime); the speech
segments are joined.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.io import InputError, read_audio

SAMPLE_RATE = 16_000  # Silero VAD and GE2E both work at 16 kHz
MIN_SPEECH_SECONDS = 0.5


class TooLittleSpeech(InputError):
    """The recording decodes, but holds too little speech to say whose voice it is."""


@lru_cache(maxsize=1)
def _silero_vad():
    import torch

    threads = torch.get_num_threads()
    import silero_vad  # its model module calls torch.set_num_threads(1) on import: keep the caller's count

    torch.set_num_threads(threads)
    return silero_vad.load_silero_vad(onnx=True)


def speech_segments(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """(start, end) sample indices of the speech in a 16 kHz (or 8 kHz) waveform."""
    model = _silero_vad()  # first: it keeps the caller's thread count through silero_vad's import
    import silero_vad
    import torch

    stamps = silero_vad.get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)),
                                              model, sampling_rate=sample_rate)
    return [(s["start"], s["end"]) for s in stamps]


@dataclass(frozen=True)
class SpeechFrontend:
    """Reads a recording and keeps its speech; `vad=False` keeps every sample (already-trimmed clips)."""

    vad: bool = True
    min_speech_seconds: float = MIN_SPEECH_SECONDS

    def speech(self, waveform: np.ndarray, name: str | Path = "<waveform>") -> np.ndarray:
        """The speech of a 16 kHz mono waveform; TooLittleSpeech when under the minimum."""
        if self.vad:
            segments = speech_segments(waveform)
            waveform = (np.concatenate([waveform[start:end] for start, end in segments]) if segments
                        else waveform[:0])
        seconds = len(waveform) / SAMPLE_RATE
        if seconds == 0 or seconds < self.min_speech_seconds:
            found = "no speech found" if seconds == 0 else f"only {seconds:.2f} s of speech"
            raise TooLittleSpeech(name, f"{found} after silence trimming (need ≥ {self.min_speech_seconds:.2f} s): "
                                        "silence, music or noise?")
        return np.ascontiguousarray(waveform, dtype=np.float32)

    def read(self, path: str | Path) -> np.ndarray:
        return self.speech(read_audio(path, SAMPLE_RATE), path)
