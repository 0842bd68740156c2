"""Real data: the Free Spoken Digit Dataset in ../shared (skipped when absent)."""
import pytest

from speaker_id import train
from speaker_id.data import load_clips
from tests.conftest import shared_data_path

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


def test_fsdd_official_split_counts():
    clips = load_clips(shared_data_path("speaker_id", "recordings"))
    assert len(clips) == 3000
    assert sum(c.split == "test" for c in clips) == 300
    assert {c.speaker for c in clips} == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}


def test_fsdd_three_speakers_train_above_floor(tmp_path):
    """A short run on three speakers must already identify nearly every official test clip."""
    result = train.main(["--data", str(shared_data_path("speaker_id", "recordings")), "--runs-root", str(tmp_path),
                         "--exclude-speakers", "jackson,lucas,theo", "--max-epochs", "4", "--no-progress-bar",
                         "--accelerator", "cpu"])
    assert result["report"].n_samples == 150
    assert result["report"].accuracy >= 0.95
