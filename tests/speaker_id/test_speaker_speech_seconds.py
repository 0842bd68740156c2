"""Duration-aware decisions: thresholds per amount of speech, `too_short` below the shortest calibrated amount
(unit tests on made-up embeddings; the CLI on real voices from ../shared multispeaker, skipped when absent)."""
import csv
import json
import math

import numpy as np
import pytest

from core.cli import run_main
from core.io import read_audio, write_audio
from core.metrics import equal_error_rate
from speaker_id import enroll
from speaker_id.calibrate import (MAX_BIN_EER, SPEECH_BINS, DevelopmentTrials, separating_threshold, speech_bin_thresholds,
                                  speech_crops)
from speaker_id.verification import TOO_SHORT, UNKNOWN, SpeakerRegistry
from tests.conftest import shared_data_path

BINS = [(0.5, 0.40), (1.0, 0.60), (2.0, 0.75)]


def _registry(**kwargs) -> SpeakerRegistry:
    registry = SpeakerRegistry({"name": "ge2e"}, threshold=0.8, speech_thresholds=list(BINS), **kwargs)
    registry.enroll("ann", np.array([[1.0, 0.0, 0.0]]))
    registry.enroll("bob", np.array([[0.0, 1.0, 0.0]]))
    return registry


def test_each_amount_of_speech_gets_its_bins_threshold():
    registry = _registry()
    assert registry.min_speech_seconds == 0.5
    assert [registry.threshold_for(s) for s in (0.49, 0.5, 0.99, 1.0, 1.9, 2.0, 60.0)] == [None, 0.40, 0.40, 0.60, 0.60, 0.75, 0.75]
    assert registry.threshold_for(None) == 0.8  # no seconds given: the one calibrated threshold
    assert SpeakerRegistry({"name": "ge2e"}, threshold=0.8).threshold_for(0.1) == 0.8  # a registry without bins


def test_identify_and_verify_answer_too_short_below_the_calibrated_amount():
    registry = _registry()
    clip = np.array([[0.7, 0.714, 0.0]])  # cosine 0.714 with bob: named with 1-2 s of speech, not with 2 s or more
    clips = np.repeat(clip / np.linalg.norm(clip), 3, axis=0)
    assert [name for name, _ in registry.identify(clips, [0.3, 1.5, 3.0])] == [TOO_SHORT, "bob", UNKNOWN]
    assert [accepted for accepted, _ in registry.verify(clips, "bob", [0.3, 1.5, 3.0])] == [None, True, False]
    scores = [score for _, score in registry.identify(clips, [0.3, 1.5, 3.0])]
    assert scores[0] == pytest.approx(scores[1])  # the score is still reported with too_short


def test_one_threshold_from_the_command_line_keeps_too_short():
    registry = _registry()
    registry.set_threshold(0.9)
    assert registry.speech_thresholds == [(0.5, 0.9)]
    assert registry.threshold_for(0.2) is None and registry.threshold_for(30.0) == 0.9


def test_speech_thresholds_round_trip_and_come_from_usable_bins_only(tmp_path):
    registry = _registry()
    registry.save(tmp_path / "r.json")
    assert SpeakerRegistry.load(tmp_path / "r.json").speech_thresholds == BINS
    calibration = {"under_1": {"from": 0.5, "threshold": 0.6, "usable": False},
                   "1_to_2": {"from": 1.0, "threshold": 0.7, "usable": True},
                   "4_and_over": {"from": 4.0, "threshold": 0.8, "usable": True}}
    assert SpeakerRegistry.thresholds_from_calibration(calibration) == [(1.0, 0.7), (4.0, 0.8)]


def test_separated_trials_get_the_middle_of_the_gap():
    assert separating_threshold(np.array([0.8, 0.9]), np.array([0.1, 0.5])) == pytest.approx(0.65)
    target, nontarget = np.array([0.4, 0.8, 0.9]), np.array([0.1, 0.5, 0.6])
    assert separating_threshold(target, nontarget) == equal_error_rate(target, nontarget)[1]  # overlapping: the EER point


def test_speech_crops_hold_their_bins_amount_of_speech():
    rng = np.random.default_rng(0)
    speech = [np.ones(int(16000 * s), np.float32) for s in (0.3, 1.5, 5.0)]
    for _, low, high in SPEECH_BINS:
        for waveform, crop in zip(speech, speech_crops(speech, low, high, rng)):
            if len(waveform) / 16000 < low:
                assert crop is None
            elif math.isinf(high):
                assert len(crop) == len(waveform)
            else:
                assert low * 16000 <= len(crop) <= min(high * 16000, len(waveform))


def test_bins_with_a_high_development_eer_are_not_usable():
    rng = np.random.default_rng(1)
    centres = np.eye(4)[:, :4] * 3
    speakers = np.repeat(["a", "b", "c", "d"], 12)
    enrolled = np.tile(np.r_[np.ones(4, bool), np.zeros(8, bool)], 4)

    def trials(noise):
        return DevelopmentTrials(centres[np.repeat(np.arange(4), 12)] + rng.normal(0, noise, (48, 4)), speakers, enrolled)

    by_bin = {key: trials(noise) for (key, _, _), noise in zip(SPEECH_BINS, (20.0, 0.5, 0.3, 0.1))}
    calibrated = speech_bin_thresholds(by_bin)
    assert calibrated["under_1"]["eer"] > MAX_BIN_EER and not calibrated["under_1"]["usable"]
    assert all(calibrated[key]["usable"] for key in ("1_to_2", "2_to_4", "4_and_over"))
    assert calibrated["4_and_over"]["to"] is None and calibrated["1_to_2"]["target_trials"] == 32


def test_the_shipped_calibration_has_thresholds_per_amount_of_speech():
    calibration = json.loads(enroll.default_calibration_path("ge2e").read_text())
    assert [key for key, _, _ in SPEECH_BINS] == list(calibration["by_speech_seconds"])
    thresholds = SpeakerRegistry.thresholds_from_calibration(calibration["by_speech_seconds"])
    assert thresholds and thresholds[0][0] >= 0.5


# ----------------------------------------------------------------------------------------- real voices
def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(enroll.main, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.real_data
def test_identify_names_a_short_piece_and_calls_a_tiny_one_too_short(tmp_path, capsys):
    clips = sorted(shared_data_path("speaker_id", "multispeaker", "audio", "vctk_p226").glob("*.wav"))
    other = sorted(shared_data_path("speaker_id", "multispeaker", "audio", "vctk_p227").glob("*.wav"))
    registry = tmp_path / "people.json"
    assert _run(["enroll", "--registry", str(registry), "--name", "p226", *map(str, clips[:3])], capsys)[0] == 0
    assert _run(["enroll", "--registry", str(registry), "--name", "p227", *map(str, other[:3])], capsys)[0] == 0
    saved = json.loads(registry.read_text())
    assert saved["speech_thresholds"] and saved["speech_thresholds"][0]["from"] >= 0.5

    from speaker_id.frontend import speech_segments

    audio = read_audio(clips[5], 16000)
    start, end = speech_segments(audio)[0][0], speech_segments(audio)[-1][1]
    speech = audio[start:end]
    pieces = {"tiny.wav": speech[:int(0.3 * 16000)], "piece.wav": speech[int(0.5 * 16000):int(2.0 * 16000)]}
    for name, samples in pieces.items():
        write_audio(tmp_path / name, samples, 16000)
    output = tmp_path / "identified.csv"
    status, out, err = _run(["identify", "--registry", str(registry), "--no-vad", str(tmp_path / "tiny.wav"),
                             str(tmp_path / "piece.wav"), "-o", str(output)], capsys)
    assert status == 0, err
    with open(output, newline="") as handle:
        rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}
    assert rows["tiny.wav"]["speaker"] == TOO_SHORT and "an answer needs at least" in rows["tiny.wav"]["note"]
    assert rows["piece.wav"]["speaker"] == "p226", rows  # 1.5 s: named with the 1-2 s threshold
    status, out, err = _run(["verify", "--registry", str(registry), "--no-vad", "--claim", "p226",
                             str(tmp_path / "tiny.wav"), str(tmp_path / "piece.wav")], capsys)
    assert status == 0 and "too_short" in out and "True" in out
