"""Speech-like audio for synthetic speakers, so the demo and tests need no download.

A source-filter model: a glottal pulse train (the speaker's pitch, with jitter, vibrato and a falling
intonation) through cascaded formant resonators (vowel formants scaled by the speaker's vocal-tract
length), broken into syllables at the speaker's speaking rate, with noise bursts as consonant onsets.
Speakers differ in pitch, formant scale, rate and breathiness, which is what a speaker model must learn.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from core.io import write_audio

# Adult male vowel formants F1, F2, F3 in Hz (Peterson & Barney, 1952, averages).
VOWEL_FORMANTS = {
    "i": (270, 2290, 3010), "I": (390, 1990, 2550), "e": (530, 1840, 2480), "ae": (660, 1720, 2410),
    "a": (730, 1090, 2440), "o": (570, 840, 2410), "U": (440, 1020, 2240), "u": (300, 870, 2240),
    "V": (640, 1190, 2390), "3": (490, 1350, 1690),
}
FORMANT_BANDWIDTHS = (80.0, 100.0, 140.0)


@dataclass(frozen=True)
class Voice:
    name: str
    pitch_hz: float          # mean fundamental frequency
    formant_scale: float     # > 1 = shorter vocal tract (higher formants)
    syllables_per_second: float
    breathiness: float       # share of aspiration noise in the source, 0..1


DEMO_VOICES = (
    Voice("ada", 210.0, 1.18, 4.5, 0.10),
    Voice("bruno", 95.0, 0.92, 3.2, 0.05),
    Voice("chen", 145.0, 1.02, 5.5, 0.25),
    Voice("dora", 250.0, 1.25, 3.8, 0.35),
    Voice("emil", 120.0, 0.97, 4.8, 0.15),
)


def _resonator(signal: np.ndarray, frequency: float, bandwidth: float, sample_rate: int) -> np.ndarray:
    """Two-pole resonator with unit gain at DC (Klatt 1980)."""
    r = np.exp(-np.pi * bandwidth / sample_rate)
    theta = 2 * np.pi * frequency / sample_rate
    a1, a2 = -2 * r * np.cos(theta), r * r
    return lfilter([1 + a1 + a2], [1, a1, a2], signal)


def _glottal_source(voice: Voice, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate
    declination = 1.1 - 0.2 * t / max(t[-1], 1e-3)       # pitch falls over the utterance
    vibrato = 1 + 0.015 * np.sin(2 * np.pi * 5.0 * t)
    jitter = 1 + 0.01 * np.cumsum(rng.normal(0, 0.05, n)) / np.sqrt(np.arange(1, n + 1))
    f0 = voice.pitch_hz * declination * vibrato * jitter * rng.uniform(0.93, 1.07)
    phase = np.cumsum(f0 / sample_rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)       # one impulse per glottal cycle
    source = lfilter([1.0], [1.0, -0.97], pulses)          # glottal roll-off (-12 dB/oct with lip radiation below)
    source = np.diff(source, prepend=0.0)                  # lip radiation
    source /= np.abs(source).max() + 1e-9
    return (1 - voice.breathiness) * source + voice.breathiness * 0.3 * rng.normal(0, 1, n)


def synthesize_utterance(voice: Voice, rng: np.random.Generator, sample_rate: int = 16000,
                         syllables: int | None = None) -> np.ndarray:
    """One utterance of 2-5 syllables (random vowels), peak-normalised to 0.9."""
    count = syllables or int(rng.integers(2, 6))
    pieces = []
    for _ in range(count):
        duration = rng.uniform(0.7, 1.3) / voice.syllables_per_second
        n = int(duration * sample_rate)
        vowel = VOWEL_FORMANTS[rng.choice(list(VOWEL_FORMANTS))]
        voiced = _glottal_source(voice, n, sample_rate, rng)
        for formant, bandwidth in zip(vowel, FORMANT_BANDWIDTHS):
            voiced = _resonator(voiced, formant * voice.formant_scale * rng.uniform(0.97, 1.03), bandwidth, sample_rate)
        envelope = np.minimum(1.0, np.minimum(np.arange(n) / (0.02 * sample_rate), (n - np.arange(n)) / (0.05 * sample_rate)))
        onset_length = int(0.04 * sample_rate)
        onset = np.zeros(n)
        onset[:onset_length] = rng.normal(0, 0.3, onset_length) * np.linspace(1, 0, onset_length)
        onset = _resonator(onset, rng.uniform(2500, 4500) * voice.formant_scale, 800.0, sample_rate)
        syllable = voiced / (np.abs(voiced).max() + 1e-9) * envelope + onset
        pieces += [syllable, np.zeros(int(rng.uniform(0.02, 0.08) * sample_rate))]
    audio = np.concatenate([np.zeros(int(0.05 * sample_rate)), *pieces])
    audio += rng.normal(0, 0.003, audio.shape)  # room noise floor
    return (0.9 * audio / np.abs(audio).max()).astype(np.float32)


def write_demo_speakers(root: str | Path, clips_per_speaker: int = 30, sample_rate: int = 16000,
                        voices: tuple[Voice, ...] = DEMO_VOICES, seed: int = 0) -> Path:
    """`root/<speaker>/<n>.wav` for every voice: the folder-per-speaker layout."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for voice in voices:
        for index in range(clips_per_speaker):
            write_audio(root / voice.name / f"{index:03d}.wav", synthesize_utterance(voice, rng, sample_rate), sample_rate)
    return root
