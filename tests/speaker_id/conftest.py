import numpy as np
import pytest

from core.io import write_audio
from speaker_id.synth import DEMO_VOICES, write_demo_speakers


@pytest.fixture(scope="session")
def voices_dir(tmp_path_factory):
    """Five synthetic speakers x 20 clips in the folder-per-speaker layout."""
    return write_demo_speakers(tmp_path_factory.mktemp("voices"), clips_per_speaker=20, voices=DEMO_VOICES, seed=0)


@pytest.fixture
def fsdd_like(tmp_path):
    """A tiny FSDD-layout folder: 2 speakers x 2 digits x indices 0-6, 8 kHz."""
    rng = np.random.default_rng(0)
    for speaker in ("ann", "bob"):
        for digit in (1, 2):
            for index in range(7):
                write_audio(tmp_path / f"{digit}_{speaker}_{index}.wav", rng.normal(0, 0.1, 4000).astype(np.float32), 8000)
    return tmp_path
