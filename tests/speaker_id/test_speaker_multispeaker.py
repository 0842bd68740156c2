"""Real voices no model here was trained on (../shared multispeaker set; skipped when absent), through the
CLI a new user runs: the pretrained GE2E encoder, loaded offline, with the calibration that ships."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import resemblyzer

from speaker_id import enroll
from speaker_id.calibrate import default_calibration_path
from speaker_id.encoders import load_encoder
from speaker_id.frontend import SpeechFrontend
from tests.conftest import shared_data_path

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

ENROLLED = ("vcc2016_SF2", "vcc2016_SM2", "vcc2016_TF2", "vctk_p225")
NEVER_ENROLLED = "vcc2016_SF3"  # a woman from the same corpus as two enrolled women: the hard impostor


def test_ge2e_weights_come_from_the_installed_wheel():
    weights = Path(resemblyzer.__file__).parent / "pretrained.pt"
    assert weights.is_file(), "resemblyzer ships pretrained.pt"
    speech = SpeechFrontend().read(sorted(shared_data_path("speaker_id", "multispeaker", "audio", "vctk_p226").glob("*.wav"))[0])
    embedding = load_encoder("ge2e").embed([speech])
    assert embedding.shape == (1, 256) and np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-4)


def test_unenrolled_voice_is_unknown_and_enrolled_voices_are_named(tmp_path):
    audio = shared_data_path("speaker_id", "multispeaker", "audio")
    registry = tmp_path / "speakers.json"
    clips = {name: sorted((audio / name).glob("*.wav")) for name in (*ENROLLED, NEVER_ENROLLED)}
    for name in ENROLLED:
        enroll.main(["enroll", "--registry", str(registry), "--name", name, *map(str, clips[name][:5])])
    tests = [(name, path) for name in (*ENROLLED, NEVER_ENROLLED) for path in clips[name][5:9]]
    enroll.main(["identify", "--registry", str(registry), "-o", str(tmp_path / "id.csv"), *(str(p) for _, p in tests)])
    table = pd.read_csv(tmp_path / "id.csv", keep_default_na=False).set_index("path")
    answers = {name: [table.loc[str(p), "speaker"] for n, p in tests if n == name] for name in (*ENROLLED, NEVER_ENROLLED)}
    assert answers[NEVER_ENROLLED] == ["unknown"] * 4, answers
    for name in ENROLLED:
        assert answers[name] == [name] * 4, answers

    verified = enroll.main(["verify", "--registry", str(registry), "--claim", "vcc2016_SF2",
                            *(str(p) for p in clips["vcc2016_SF2"][5:9] + clips[NEVER_ENROLLED][5:9])])
    assert [row["accepted"] for row in verified] == [True] * 4 + [False] * 4
    threshold = json.loads(default_calibration_path("ge2e").read_text())["threshold"]
    assert all(row["score"] >= threshold for row in verified[:4])
