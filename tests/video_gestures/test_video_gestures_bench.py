import pytest

from core.io import InputError
from video_gestures.bench import measure_timing, results_table

RESULTS = {
    "point_history_accuracy": 0.9992, "point_history_test_sequences": 1324, "motion_accuracy": 0.985,
    "motion_test_clips": 600, "motion_accuracy_unseen_hands": 0.97, "motion_unseen_hands_test_clips": 640,
    "motion_shuffled_accuracy": 0.5, "motion_shuffled_direction_accuracy": 0.51,
    "motion_views": ["whole", "left", "right", "top", "bottom"], "embedding_image_size": 96, "timing_threads": 2,
    "embedding_fps": 12.34, "embedding_fps_1_thread": 30.0, "ms_per_clip": 1.5, "ms_per_clip_1_thread": 0.9,
    "motion_input_shape": [8, 5, 1280], "point_history_input_shape": [16, 3, 2], "motion_canvas": 64,
    "timing_date": "2026-11-22 03:00", "command": "python -m video_gestures.bench ",
    "checkpoints": {"motion": "runs/video_gestures/no-such-run/best.ckpt", "point_history": "runs/none/best.ckpt"},
}


def test_results_table_reads_the_results_and_says_how_to_rerun_the_timing():
    table = results_table(RESULTS)
    assert "| 0.9850 | ≥ 0.98 |" in table and "| 0.9992 | ≥ 0.993 |" in table
    assert "| same, hold-out by hand photo (640 clips of unseen photos) | accuracy | 0.9700 |" in table
    assert "5 views, 96 px, 2 threads" in table and "12.3 (30.0)" in table and "(8, 5, 1280)" in table
    assert "--timing-only" in table


def test_timing_only_without_trained_models_names_the_missing_checkpoint():
    with pytest.raises(InputError, match="no-such-run/best.ckpt.*trained model not found"):
        measure_timing(RESULTS, hands_csv=None, threads=1)


def test_point_history_keys_merge_into_the_results_and_show_the_none_rows():
    from video_gestures.bench import merge

    update = {"point_history_accuracy": 0.995, "checkpoints": {"point_history": "runs/video_gestures/bench-points/best.ckpt"},
              "point_history_classes": ["Stop", "Clockwise", "Counter Clockwise", "Move", "none"],
              "point_history_none_test": {"sequences": 375, "accuracy": 0.97},
              "point_history_gesture_threshold": {"threshold": 0.73, "calibration_minutes": 20.0, "test_gestures_kept": 0.99}}
    merged = merge(RESULTS, update)
    assert merged["checkpoints"] == {"motion": RESULTS["checkpoints"]["motion"], **update["checkpoints"]}
    assert merged["motion_accuracy"] == RESULTS["motion_accuracy"] and RESULTS["point_history_accuracy"] == 0.9992
    table = results_table(merged)
    assert "(1324 recorded sequences; 5 answers) | accuracy | 0.9950 | ≥ 0.993 |" in table
    assert "non-gesture paths of the hold-out (375) answered none | accuracy | 0.9700 |" in table
    assert "chosen on 20 min of other generated paths" in table and "0.9900 (at 0.73)" in table
