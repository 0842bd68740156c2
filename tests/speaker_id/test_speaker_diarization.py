"""Diarization: the RTTM writer against pyannote's reader, DER against a hand computation, and the diarize
command on a short conversation of real voices (../shared multispeaker set; skipped when absent)."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.io import InputError, read_audio, write_audio
from speaker_id import diarize
from speaker_id.diarization import (Diarization, Diarizer, Turn, mixture_pair, read_rttm, score_diarization,
                                    snap_changes_to_pauses, summarise_scores, write_rttm)
from tests.conftest import shared_data_path


def test_rttm_writer_is_read_back_by_pyannote_database(tmp_path):
    from pyannote.database.util import load_rttm

    turns = [Turn(0.5, 2.25, "alice", 0.9), Turn(2.0, 3.0, "unknown_1"), Turn(4.125, 7.5, "bob")]
    path = write_rttm(tmp_path / "turns.rttm", [Diarization("meeting one", 8.0, turns), Diarization("call", 3.0, [Turn(0, 1, "x")])])
    loaded = load_rttm(str(path))
    assert set(loaded) == {"meeting_one", "call"}
    segments = sorted((round(s.start, 3), round(s.end, 3), label) for s, _, label in loaded["meeting_one"].itertracks(yield_label=True))
    assert segments == [(0.5, 2.25, "alice"), (2.0, 3.0, "unknown_1"), (4.125, 7.5, "bob")]
    assert [(t.start, t.end, t.speaker) for t in read_rttm(path)["meeting_one"]] == [(0.5, 2.25, "alice"), (2.0, 3.0, "unknown_1"), (4.125, 7.5, "bob")]


def test_a_damaged_rttm_is_an_error_that_names_the_file_and_line(tmp_path):
    path = tmp_path / "ref.rttm"
    path.write_text("SPEAKER a 1 0.0 1.0 <NA> <NA> x <NA> <NA>\nSPEAKER a 1 zero 1.0 <NA> <NA> y <NA> <NA>\n")
    with pytest.raises(InputError, match="ref.rttm: line 2"):
        read_rttm(path)
    path.write_text("this is not rttm\n")
    with pytest.raises(InputError, match="no SPEAKER lines"):
        read_rttm(path)


def test_der_and_naming_rates_match_a_hand_computation():
    reference = [Turn(0, 10, "A"), Turn(10, 20, "B"), Turn(25, 27, "A")]
    hypothesis = [Turn(0, 12, "x"), Turn(12, 20, "y"), Turn(22, 23, "x")]
    # collar ±0.25 s around each reference boundary: [0, .25], [9.75, 10.25], [19.75, 20], [24.75, 25.25], [26.75, 27.25]
    # scored speech 22 - 1.5 = 20.5; missed [25.25, 26.75] = 1.5; false alarm [22, 23] = 1; confusion [10.25, 12] = 1.75
    score = score_diarization(reference, hypothesis, 30.0)
    assert score["scored_speech"] == pytest.approx(20.5)
    assert (score["missed"], score["false_alarm"], score["confusion"]) == pytest.approx((1.5, 1.0, 1.75))
    assert score["der"] == pytest.approx(4.25 / 20.5)
    named = [Turn(0, 12, "A"), Turn(12, 20, "B")]
    both = score_diarization(reference, named, 30.0, enrolled={"A", "B"})
    assert both["named_correct_seconds"] / both["enrolled_seconds"] == pytest.approx(18 / 22, abs=1e-3)  # A 10 of 12 s, B 8 of 10 s
    only_a = score_diarization(reference, named, 30.0, enrolled={"A"})
    assert only_a["stranger_named_seconds"] / only_a["stranger_seconds"] == pytest.approx(2 / 10, abs=1e-3)  # B's 10-12 s named A
    # where the enrolled time went: B's 10-12 s under A's name; A's 25-27 s unlabelled; nothing unknown
    assert (both["named_wrong_seconds"], both["unlabelled_seconds"], both["named_unknown_seconds"]) == pytest.approx((2, 2, 0), abs=0.02)
    # outside ±0.25 s of the reference turn ends: 22 s - 1.5 s near boundaries; B's wrong 10.25-12 s and A's 25.25-26.75 s stay
    assert both["enrolled_seconds_collar"] == pytest.approx(20.5, abs=0.02)
    assert both["named_correct_seconds_collar"] == pytest.approx(20.5 - 1.75 - 1.5, abs=0.02)
    pooled = summarise_scores([both])
    assert pooled["named_time_lost"] == pytest.approx({"wrong_name": 2 / 22, "unknown": 0, "unlabelled": 2 / 22}, abs=1e-3)



def test_a_change_of_speaker_near_a_pause_moves_to_the_pause():
    """Stretch 1 (frames 0-19) ends in 3 frames of speaker 1 smeared from the next stretch; stretch 2 (after a
    5-frame pause) starts with 4 frames of speaker 0 smeared back; a change in mid-stretch (frame 40) stays; a
    1-frame gap is not a pause."""
    frames = np.r_[np.arange(0, 20), np.arange(25, 50), np.arange(51, 60)]
    labels = np.r_[[0] * 17, [1] * 3, [0] * 4, [1] * 11, [2] * 19]
    snapped = snap_changes_to_pauses(frames, labels, snap_frames=5, pause_frames=3)
    np.testing.assert_array_equal(snapped, np.r_[[0] * 20, [1] * 15, [2] * 19])
    assert snapped is not labels and labels[17] == 1  # the input is left as it was
    # runs as long as the snap distance stay; no snapping at 0
    np.testing.assert_array_equal(snap_changes_to_pauses(frames, labels, snap_frames=3, pause_frames=3), labels)
    np.testing.assert_array_equal(snap_changes_to_pauses(frames, labels, snap_frames=0, pause_frames=3), labels)

def _voices(rng, centre, count, spread=0.05):
    """`count` unit embeddings scattered around the unit vector `centre`."""
    points = centre + spread * rng.standard_normal((count, len(centre)))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_a_cluster_between_two_voices_is_overlap_and_goes_back_to_them():
    """Voices a and b (orthogonal) and 8 windows of a + b mixed: the mixed windows form a cluster of their own,
    which `mixture_pair` recognises and `_dissolve_mixtures` hands back to the nearer voice; a third voice c
    (orthogonal to both) is no mix and stays."""
    rng = np.random.default_rng(0)
    a, b, c = np.eye(256)[:3]
    mixed = (0.6 * a + 0.4 * b) / np.linalg.norm(0.6 * a + 0.4 * b)
    assert mixture_pair(mixed, np.stack([a, b, c]), 0.85) == (0, 1)
    assert mixture_pair(c, np.stack([a, b]), 0.85) is None
    embeddings = np.concatenate([_voices(rng, a, 30), _voices(rng, b, 30), _voices(rng, mixed, 8), _voices(rng, c, 12)])
    labels = np.r_[[0] * 30, [1] * 30, [2] * 8, [3] * 12]
    dissolved = Diarizer(mixture_similarity=0.85)._dissolve_mixtures(embeddings, labels)
    assert len(set(dissolved)) == 3
    assert set(dissolved[60:68]) == {dissolved[0]}  # 0.6 a + 0.4 b is nearer a
    assert len(set(dissolved[68:])) == 1 and dissolved[68] not in (dissolved[0], dissolved[30])
    kept = Diarizer(mixture_similarity=1.01)._dissolve_mixtures(embeddings, labels)  # the rule off
    assert len(set(kept)) == 4


def test_a_short_cluster_the_registry_names_is_kept_and_an_unnamed_one_joins_its_neighbour():
    """Voices a and b (30 windows each) and 3 windows of enrolled voice c (0.75 s of steps, under
    `min_cluster_seconds`): the registry names c, so its windows stay a cluster; with c not enrolled, or with
    fewer windows than `keep_named_windows`, they join the nearest larger cluster."""
    from speaker_id.verification import SpeakerRegistry

    rng = np.random.default_rng(2)
    a, b, c = np.eye(256)[:3]
    embeddings = np.concatenate([_voices(rng, a, 30), _voices(rng, b, 30), _voices(rng, (c + 0.3 * a) / np.hypot(1, 0.3), 3)])
    labels = np.r_[[0] * 30, [1] * 30, [2] * 3]

    def registry_of(voices):
        registry = SpeakerRegistry({"name": "ge2e"}, threshold=0.5)
        for name, voice in voices.items():
            registry.enroll(name, _voices(rng, voice, 5, 0.01), 20.0)
        return registry

    kept = Diarizer(registry_of({"a": a, "b": b, "c": c}))._absorb_small(embeddings, labels)
    assert len(set(kept)) == 3 and len(set(kept[60:])) == 1 and kept[60] not in (kept[0], kept[30])
    too_few = Diarizer(registry_of({"a": a, "b": b, "c": c}), keep_named_windows=4)
    not_enrolled = Diarizer(registry_of({"a": a, "b": b}))
    for diarizer in (too_few, not_enrolled, Diarizer()):
        absorbed = diarizer._absorb_small(embeddings, labels)
        assert len(set(absorbed)) == 2 and set(absorbed[60:]) == {absorbed[0]}  # c's windows lean towards a


def test_turns_are_padded_into_silence_but_never_into_a_neighbour():
    """Frames 0-19 speaker A, 20-39 B (no pause between them), a pause, 60-79 A: 30 ms pads at the edges that
    meet silence (and none before 0), none between A and B."""
    diarizer = Diarizer(speech_pad_seconds=0.03)
    diarizer._frames = 100
    frames = np.r_[np.arange(0, 40), np.arange(60, 80)]
    turns = diarizer._frames_to_turns(frames, ["A"] * 20 + ["B"] * 20 + ["A"] * 20)
    frame = 512 / 16000
    assert [(t.speaker, t.start, t.end) for t in turns] == [
        ("A", 0.0, round(20 * frame, 3)), ("B", round(20 * frame, 3), round(40 * frame + 0.03, 3)),
        ("A", round(60 * frame - 0.03, 3), round(80 * frame + 0.03, 3))]


def test_online_never_joins_a_window_to_another_enrolled_voice():
    """Enrolled voices a and b, 0.8 apart in cosine; an online cluster of a's windows. A window of b's voice is
    0.84 from that cluster (over `join_similarity`), but the registry names it (with the window before it) b:
    it starts a cluster of its own. Without a registry it joins a's cluster."""
    from speaker_id.online import OnlineDiarizer
    from speaker_id.verification import SpeakerRegistry

    rng = np.random.default_rng(1)
    a = np.eye(256)[0]
    b = 0.8 * a + 0.6 * np.eye(256)[1]
    window = (0.9 * b + 0.1 * a) / np.linalg.norm(0.9 * b + 0.1 * a)
    registry = SpeakerRegistry({"name": "ge2e"}, threshold=0.5)
    registry.enroll("a", _voices(rng, a, 5, 0.01), 20.0)
    registry.enroll("b", _voices(rng, b, 5, 0.01), 20.0)
    for registry_given, cluster in ((registry, 1), (None, 0)):
        online = OnlineDiarizer(registry_given)
        online._sums, online._counts = [_voices(rng, a, 6, 0.01).sum(0)], [6]  # a's cluster, named a
        online._window_embeddings = [window]  # the window before, of b's voice too
        online._window_starts, online._embeddings = [0], [window]
        online._assign()
        assert online._clusters == [cluster]


# ----------------------------------------------------------------------------------------- real voices
ENROLLED = ("vctk_p225", "vcc2016_TM2")
STRANGER = "aishell_S0913"


def _speech(clip, seconds):
    from speaker_id.frontend import speech_segments

    audio = read_audio(clip, 16000)
    segments = speech_segments(audio)
    audio = audio[segments[0][0]:segments[-1][1]][: int(seconds * 16000)]
    return audio * (10 ** (-26 / 20) / np.sqrt(np.mean(audio ** 2)))


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    """p225 (enrolled), TM2 (enrolled), the stranger, p225, TM2: 3-5 s turns of clips not used to enrol, 0.4 s pauses."""
    audio = shared_data_path("speaker_id", "multispeaker", "audio")
    folder = tmp_path_factory.mktemp("conversation")
    plan = [(ENROLLED[0], 5, 4.0), (ENROLLED[1], 6, 4.0), (STRANGER, 0, 5.0), (ENROLLED[0], 7, 3.0), (ENROLLED[1], 8, 4.0)]
    pieces, turns, cursor = [], [], 0.3
    for speaker, index, seconds in plan:
        piece = _speech(sorted((audio / speaker).glob("*.wav"))[index], seconds)
        turns.append(Turn(round(cursor, 3), round(cursor + len(piece) / 16000, 3), speaker))
        pieces += [np.zeros(int(0.4 * 16000), np.float32), piece]
        cursor += 0.4 + len(piece) / 16000
    wav = write_audio(folder / "conversation.wav", np.concatenate(pieces + [np.zeros(8000, np.float32)]), 16000)
    registry = folder / "people.json"
    from speaker_id import enroll

    for name in ENROLLED:
        enroll.main(["enroll", "--registry", str(registry), "--name", name,
                     *map(str, sorted((audio / name).glob("*.wav"))[:5])])
    return wav, registry, turns


@pytest.mark.real_data
def test_diarize_names_enrolled_voices_and_calls_a_stranger_unknown_1(conversation, tmp_path, capsys):
    wav, registry, reference = conversation
    out = tmp_path / "turns.rttm"
    results = diarize.main([str(wav), "--registry", str(registry), "-o", str(out), "--no-progress"])
    hypothesis = read_rttm(out)["conversation"]
    assert {t.speaker for t in hypothesis} == {*ENROLLED, "unknown_1"}
    score = score_diarization(reference, hypothesis, results[0].duration, enrolled=ENROLLED)
    assert score["der"] < 0.15  # 0.103 when written: the reference spans the pauses inside each piece
    assert score["named_correct_seconds"] / score["enrolled_seconds"] > 0.9
    assert score["stranger_named_seconds"] / score["stranger_seconds"] < 0.1
    table = pd.read_csv(out.with_suffix(".csv"), keep_default_na=False)
    assert list(table.columns[:7]) == ["input", "start", "end", "label", "score", "uri", "duration"]  # core.timeline's shape
    named = table[table.label.isin(ENROLLED)]
    assert (named.score.astype(float) >= 0.794 - 1e-6).all()
    assert out.with_suffix(".png").stat().st_size > 1000
    # told the number of speakers, without a registry: three anonymous speakers
    diarize.main([str(wav), "-o", str(tmp_path / "anonymous.rttm"), "--num-speakers", "3", "--no-plot", "--no-progress"])
    assert {t.speaker for t in read_rttm(tmp_path / "anonymous.rttm")["conversation"]} == {"unknown_1", "unknown_2", "unknown_3"}


@pytest.mark.real_data
def test_no_speech_and_a_registry_of_another_encoder_are_named_errors(conversation, tmp_path):
    wav, registry, _ = conversation
    silence = write_audio(tmp_path / "silence.wav", np.zeros(3 * 16000, np.float32), 16000)
    noise = write_audio(tmp_path / "noise.wav", np.random.default_rng(0).normal(0, 0.05, 3 * 16000).astype(np.float32), 16000)
    env = {"HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "speaker_id.diarize", str(silence), str(noise), "-o", str(tmp_path / "t.rttm")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 2 and f"error: {silence}: no speech found" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "t.rttm").exists()
    other = tmp_path / "cnn.json"
    other.write_text(registry.read_text().replace('"name": "ge2e"', '"name": "cnn", "checkpoint": "x.ckpt"'))
    with pytest.raises(InputError, match="cnn.json: holds cnn"):
        diarize.main([str(wav), "--registry", str(other), "-o", str(tmp_path / "t.rttm")])
    assert not (tmp_path / "t.rttm").exists()


@pytest.mark.real_data
def test_online_labels_come_within_two_seconds_with_the_offline_names(conversation, tmp_path, capsys):
    from speaker_id.diarize import load_registry
    from speaker_id.frontend import speech_segments
    from speaker_id.online import OnlineDiarizer

    wav, registry, reference = conversation
    audio = read_audio(wav, 16000)
    online = OnlineDiarizer(load_registry(registry))
    emitted_while_reading = 0
    for start in range(0, len(audio), 4000):  # 0.25 s reads, as from a microphone
        emitted_while_reading += len(online.push(audio[start:start + 4000]))
    result = online.finish("conversation")
    assert emitted_while_reading > 0.8 * len(online.emitted)  # labels come while reading, not at the end
    assert online.latencies().max() <= 2.0
    assert set(ENROLLED) <= {t.speaker for t in result.turns}
    score = score_diarization(reference, result.turns, result.duration, enrolled=ENROLLED)
    assert score["named_correct_seconds"] / score["enrolled_seconds"] > 0.8
    # a recording that starts with 0.6 s of speech and 3 s of silence: no window exists when that speech is
    # due, and it is labelled too_short within the delay rather than waiting for the next speech
    first = next(start for start, end in speech_segments(audio))
    sparse = np.concatenate([audio[first:first + 9600], np.zeros(48000, np.float32), audio[first + 9600:]])
    online = OnlineDiarizer(load_registry(registry))
    for start in range(0, len(sparse), 4000):
        online.push(sparse[start:start + 4000])
    online.finish("sparse")
    assert online.latencies().max() <= 2.0
    assert online.emitted[0][1] == "too_short" and set(ENROLLED) <= {label for _, label, _ in online.emitted}
    # the command: labels printed as they come, the RTTM written at the end
    diarize.main([str(wav), "--registry", str(registry), "-o", str(tmp_path / "online.rttm"), "--online", "--no-plot"])
    printed = [line for line in capsys.readouterr().out.splitlines() if " s: " in line]
    assert printed and any(name in line for line in printed for name in ENROLLED)
    assert (tmp_path / "online.rttm").stat().st_size > 0


class _FakeMicrophone:
    """sounddevice.InputStream's reading interface over a recording: blocks of (frames, 1) float32, then
    silence; `interrupt_after` blocks raise KeyboardInterrupt, as Ctrl+C would."""
    audio: np.ndarray = np.zeros(0, np.float32)
    interrupt_after: int | None = None

    def __init__(self, samplerate, channels, dtype, blocksize, device):
        assert (samplerate, channels, dtype) == (16000, 1, "float32")
        self.position, self.reads = 0, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, frames):
        if self.interrupt_after is not None and self.reads == self.interrupt_after:
            raise KeyboardInterrupt
        self.reads += 1
        block = np.zeros((frames, 1), np.float32)
        piece = self.audio[self.position:self.position + frames]
        block[:len(piece), 0] = piece
        self.position += frames
        return block, False


@pytest.mark.real_data
def test_the_microphone_is_diarized_online_until_its_seconds_or_ctrl_c(conversation, tmp_path, monkeypatch, capsys):
    import types

    wav, registry, reference = conversation
    _FakeMicrophone.audio = read_audio(wav, 16000)
    seconds = len(_FakeMicrophone.audio) / 16000
    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(InputStream=_FakeMicrophone, PortAudioError=OSError))
    out = tmp_path / "live.rttm"
    result = diarize.main(["--microphone", "--seconds", f"{seconds:.2f}", "--registry", str(registry), "-o", str(out)])[0]
    printed = capsys.readouterr().out
    assert "listening" in printed and any(f" {name}" in line for line in printed.splitlines() if " s: " in line for name in ENROLLED)
    hypothesis = read_rttm(out)["microphone"]
    assert abs(result.duration - seconds) < 0.3 and set(ENROLLED) <= {t.speaker for t in hypothesis}
    score = score_diarization(reference, hypothesis, result.duration, enrolled=ENROLLED)
    assert score["named_correct_seconds"] / score["enrolled_seconds"] > 0.8
    # Ctrl+C after 8 s: what was heard is written
    monkeypatch.setattr(_FakeMicrophone, "interrupt_after", 32)
    result = diarize.main(["--microphone", "--registry", str(registry), "-o", str(out), "--no-plot"])[0]
    assert result.duration == pytest.approx(8.0, abs=0.05) and ENROLLED[0] in {t.speaker for t in read_rttm(out)["microphone"]}
    # recordings and --microphone together, --seconds without it: usage errors; no PortAudio: a clear error
    with pytest.raises(InputError, match="recordings or --microphone"):
        diarize.main([str(wav), "--microphone", "-o", str(out)])
    with pytest.raises(InputError, match="--seconds is for --microphone"):
        diarize.main([str(wav), "--seconds", "3", "-o", str(out)])
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(InputError, match="<microphone>: sounddevice cannot be used .*PortAudio"):
        diarize.main(["--microphone", "-o", str(tmp_path / "none.rttm")])
    assert not (tmp_path / "none.rttm").exists()
