"""The root README's live table from a constructed results/live.json."""
from core.results import live_table


def test_the_live_table_has_a_row_per_rate_and_per_start_up_with_its_target():
    results = {"fps": {"all": 16.04, "pose": 24.0}, "targets": {"all": 15.0, "each": 25.0},
               "light_fraction": {"all": 0.5, "pose": 0.0}, "startup_seconds": {"emotion": 1.5},
               "startup": {"target_seconds": 5.0, "command": "python -m core.startup", "repeats": 3}}
    lines = live_table(results).splitlines()
    assert "| live demo, all tasks | frames / s | 16.0 | ≥ 15 | 50% light frames |" in lines
    assert "| live demo, pose alone | frames / s | 24.0 | ≥ 25 | 0% light frames |" in lines
    assert any(line.startswith("| one-input predict of emotion, fresh process | seconds | 1.50 | ≤ 5 |") for line in lines)
