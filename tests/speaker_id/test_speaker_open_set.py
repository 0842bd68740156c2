"""Open-set scoring: score normalisation, leave-speakers-out calibration, the registry's encoder check and
bad inputs (silence, music, too short, foreign or damaged registries)."""
import json

import numpy as np
import pytest

from core.io import InputError, write_audio
from speaker_id import enroll
from speaker_id.calibrate import (DevelopmentTrials, error_rates, leave_out_thresholds, split_trials,
                                  unenrolled_named_rate)
from speaker_id.frontend import SAMPLE_RATE, SpeechFrontend, TooLittleSpeech
from speaker_id.verification import ScoreNormaliser, SpeakerRegistry, unit_rows


# ----------------------------------------------------------------------------------------- normalisation
def test_snorm_standardises_each_side_against_the_cohort():
    cohort = unit_rows(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32))
    tests = unit_rows(np.array([[1, 0.2, 0]], dtype=np.float32))
    centroids = unit_rows(np.array([[0, 1, 0.3], [1, 0, 0]], dtype=np.float32))
    raw = tests @ centroids.T
    normalised = ScoreNormaliser("snorm", cohort)(raw, tests, centroids)
    for j in range(2):  # by hand: 0.5 * ((s - mu_c) / sd_c + (s - mu_t) / sd_t)
        c_scores, t_scores = cohort @ centroids[j], cohort @ tests[0]
        expected = 0.5 * ((raw[0, j] - c_scores.mean()) / c_scores.std() + (raw[0, j] - t_scores.mean()) / t_scores.std())
        assert normalised[0, j] == pytest.approx(expected, rel=1e-5)


def test_snorm_evens_out_a_speaker_who_scores_high_against_everyone():
    """A 'hub' centroid near the cohort's centre outscores the true speaker on raw cosine; S-norm undoes it."""
    rng = np.random.default_rng(0)
    e0, e1 = np.eye(16)[:2]
    cohort = unit_rows(e0 + 0.3 * rng.normal(size=(200, 16)) / 4)  # the cohort's voices share direction e0
    hub = unit_rows(e0)
    own = unit_rows(e1 + 0.5 * e0)
    test = unit_rows(0.9 * e0 + 0.44 * e1)  # a clip of `own`'s speaker
    centroids = np.concatenate([hub, own])
    raw = test @ centroids.T
    assert raw[0, 0] > raw[0, 1], "the constructed hub should win on raw cosine"
    normalised = ScoreNormaliser("snorm", cohort)(raw, test, centroids)
    assert normalised[0, 1] > normalised[0, 0]


def test_adaptive_snorm_uses_only_the_closest_cohort_clips():
    cohort = unit_rows(np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32))
    tests, centroid = unit_rows(np.array([[1, 0.1]])), unit_rows(np.array([[0.8, 0.2]]))
    raw = tests @ centroid.T
    top2 = ScoreNormaliser("asnorm", cohort, top_k=2)(raw, tests, centroid)
    closest = ScoreNormaliser("snorm", cohort[:2])(raw, tests, centroid)  # the two closest to both sides
    assert top2 == pytest.approx(closest)
    with pytest.raises(ValueError, match="cohort"):
        ScoreNormaliser("snorm", None)


# ----------------------------------------------------------------------------------------- calibration
def _clustered(speakers: int = 6, clips: int = 12, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.normal(size=(speakers, 32)))
    embeddings = np.concatenate([centres[s] + spread * rng.normal(size=(clips, 32)) / np.sqrt(32) for s in range(speakers)])
    names = np.repeat([f"s{s}" for s in range(speakers)], clips)
    paths = [f"{n}/{i:03d}.wav" for n, i in zip(names, np.tile(np.arange(clips), speakers))]
    return embeddings, names, paths


def test_development_trials_count_and_separate_clusters():
    embeddings, names, paths = _clustered()
    trials = DevelopmentTrials.first_clips(embeddings, names, paths, enroll_clips=5)
    assert trials.enrolled.sum() == 30
    assert all(trials.enrolled[i] == (int(p[-7:-4]) < 5) for i, p in enumerate(paths)), "first clips by file name"
    table = trials.table()
    target, nontarget = split_trials(table)
    assert (target.size, nontarget.size) == (6 * 7, 6 * 7 * 5)
    assert target.min() > nontarget.max()
    assert trials.identification_accuracy(table) == 1.0


def test_leave_out_thresholds_never_see_the_scored_speakers():
    embeddings, names, paths = _clustered()
    trials = DevelopmentTrials.first_clips(embeddings, names, paths, enroll_clips=5)
    thresholds = leave_out_thresholds(trials)
    assert len(thresholds) == 36
    # Moving one speaker's clips onto another's must change only the thresholds of the pairs that keep it.
    moved = embeddings.copy()
    moved[names == "s0"] = embeddings[names == "s3"][::-1] + 0.01
    shifted = leave_out_thresholds(DevelopmentTrials.first_clips(moved, names, paths, enroll_clips=5))
    assert shifted["s0", "s1"] == thresholds["s0", "s1"] and shifted["s1", "s0"] == thresholds["s1", "s0"]
    assert shifted["s1", "s2"] != thresholds["s1", "s2"]
    table = trials.table()
    assert error_rates(table, thresholds)["false_accept_rate"] == 0.0
    assert unenrolled_named_rate(trials, table, thresholds) == 0.0
    # Grouping: calibrate on the other groups only; a pair whose leave-out set is too small gets none.
    by_half = leave_out_thresholds(trials, group=lambda n: "a" if n in {"s0", "s1", "s2"} else "b")
    assert ("s0", "s1") in by_half and ("s0", "s4") not in by_half


def test_error_rates_count_each_kind():
    table = {("a", "a"): np.array([0.9, 0.4]), ("a", "b"): np.array([0.6, 0.1]), ("b", "b"): np.array([0.8])}
    rates = error_rates(table, 0.5)
    assert rates["false_reject_rate"] == pytest.approx(1 / 3) and rates["false_accept_rate"] == pytest.approx(1 / 2)


# ----------------------------------------------------------------------------------------- registry
def test_registry_refuses_another_encoders_embeddings(tmp_path):
    registry = SpeakerRegistry({"name": "ge2e"}, threshold=0.8)
    registry.enroll("ann", np.eye(4, dtype=np.float32)[:1])
    path = registry.save(tmp_path / "r.json")
    loaded = SpeakerRegistry.load(path)
    loaded.check_encoder({"name": "ge2e"}, path)
    with pytest.raises(InputError, match="holds ge2e embeddings, not cnn"):
        loaded.check_encoder({"name": "cnn", "checkpoint": "/x/best.ckpt"}, path)


def test_registry_save_keeps_a_backup_and_reads_version_1(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"checkpoint": "/runs/best.ckpt", "threshold": 0.7,
                                "speakers": {"ann": {"embedding": [1.0, 0.0], "clips": 3}}}))
    old = SpeakerRegistry.load(path)
    assert old.encoder == {"name": "cnn", "checkpoint": "/runs/best.ckpt"} and old.normaliser.method == "none"
    old.enroll("bob", np.array([[0.0, 1.0]]))
    old.save(path)
    assert "bob" not in json.loads((tmp_path / "r.json.bak").read_text())["speakers"]
    assert SpeakerRegistry.load(path).names == ["ann", "bob"]


def test_normalised_registry_round_trips(tmp_path):
    cohort = unit_rows(np.random.default_rng(0).normal(size=(20, 8)))
    registry = SpeakerRegistry({"name": "ge2e"}, 2.5, ScoreNormaliser("asnorm", cohort, top_k=10))
    registry.enroll("ann", cohort[:3])
    loaded = SpeakerRegistry.load(registry.save(tmp_path / "r.json"))
    np.testing.assert_allclose(loaded.scores(cohort[5:9]), registry.scores(cohort[5:9]), atol=1e-4)


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"threshold": 0.5}', b"[1, 2]"])
def test_damaged_registry_names_the_file(tmp_path, content):
    path = tmp_path / "speakers.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match="speakers.json: not a speaker registry"):
        SpeakerRegistry.load(path)


# ----------------------------------------------------------------------------------------- front-end
def _music(seconds: float = 4.0) -> np.ndarray:
    """Chords of harmonic tones that change every half second, with decaying notes (no voice)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    music = np.zeros_like(t)
    for i in range(int(seconds * 2)):
        segment = (t >= i / 2) & (t < (i + 1) / 2)
        for f0 in rng.choice([220, 247, 262, 294, 330, 349, 392, 440], 3):
            for harmonic in range(1, 6):
                music[segment] += np.sin(2 * np.pi * f0 * harmonic * t[segment]) * np.exp(-3 * (t[segment] - i / 2)) / harmonic
    return (0.3 * music / np.abs(music).max()).astype(np.float32)


@pytest.mark.parametrize("kind", ["silence", "hiss", "music"])
def test_frontend_refuses_recordings_without_speech(kind, tmp_path):
    rng = np.random.default_rng(1)
    samples = {"silence": np.zeros(3 * SAMPLE_RATE, np.float32), "hiss": 0.01 * rng.normal(size=3 * SAMPLE_RATE).astype(np.float32),
               "music": _music()}[kind]
    path = write_audio(tmp_path / f"{kind}.wav", samples, SAMPLE_RATE)
    with pytest.raises(TooLittleSpeech, match=rf"{kind}.wav: no speech found after silence trimming"):
        SpeechFrontend().read(path)


def test_frontend_minimum_and_no_vad(tmp_path):
    path = write_audio(tmp_path / "short.wav", 0.1 * np.ones(SAMPLE_RATE // 5, np.float32), 8000)  # 0.4 s at 8 kHz
    with pytest.raises(TooLittleSpeech, match="only 0.40 s of speech"):
        SpeechFrontend(vad=False).read(path)
    assert len(SpeechFrontend(vad=False, min_speech_seconds=0.3).read(path)) == int(0.4 * SAMPLE_RATE)


def test_enroll_with_only_silence_fails_and_leaves_the_registry_alone(tmp_path):
    silence = write_audio(tmp_path / "quiet.wav", np.zeros(2 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    registry = tmp_path / "speakers.json"
    with pytest.raises(InputError, match="no clip with enough speech"):
        enroll.main(["enroll", "--registry", str(registry), "--name", "ann", str(silence)])
    assert not registry.exists() and not list(tmp_path.glob("*.tmp*"))


# ----------------------------------------------------------------------------------------- threads
def _threads_after(code: str) -> str:
    import subprocess
    import sys

    from core.env import REPO_ROOT

    completed = subprocess.run([sys.executable, "-c", "import torch; torch.set_num_threads(3)\n" + code + "\nprint(torch.get_num_threads())"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.split()[-1]


def test_silero_vad_leaves_the_thread_count_the_caller_chose():
    assert _threads_after("import silero_vad") == "1"  # what the front-end guards against: silero's import sets 1
    assert _threads_after("import numpy as np\nfrom speaker_id.frontend import speech_segments\n"
                          "speech_segments(np.zeros(16000, np.float32))") == "3"


def test_diarize_runs_with_the_threads_it_was_told(tmp_path):
    write_audio(tmp_path / "silence.wav", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    code = (f"from core.io import InputError\nfrom speaker_id import diarize\ntry:\n"
            f"    diarize.main([{str(tmp_path / 'silence.wav')!r}, '-o', {str(tmp_path / 't.rttm')!r}, '--threads', '2', '--no-progress'])\n"
            f"except InputError:\n    pass  # no speech: the VAD ran, nothing to diarize")
    assert _threads_after(code) == "2"
