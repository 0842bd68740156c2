import numpy as np
import pandas as pd
import pytest
import torch

from core.io import AtomicVideoWriter
from video_gestures.motion import MOTIONS, PAIRS, generate_motion_set, render_motion, write_motion_folders
from video_gestures.train import shuffle_time


def hand(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    image[5:15, 5:15] = 250
    return image


def test_motion_pairs_are_time_reversals():
    for motion in MOTIONS:
        clip = render_motion(hand(), motion, np.random.default_rng(0), num_frames=6, size=48)
        assert clip.shape == (6, 48, 48, 3) and clip.dtype == np.uint8
    left = render_motion(hand(), "swipe_left", np.random.default_rng(5), 6, 48)
    right = render_motion(hand(), "swipe_right", np.random.default_rng(5), 6, 48)
    # same random draws, reversed progress: the bright square moves the other way
    centre = lambda clip: [np.argwhere(f.min(axis=2) > 240)[:, 1].mean() for f in clip]  # noqa: E731
    assert centre(left)[0] > centre(left)[-1] + 5 and centre(right)[0] < centre(right)[-1] - 5
    assert PAIRS["zoom_in"] == PAIRS["zoom_out"] != PAIRS["rotate_cw"]
    with pytest.raises(ValueError, match="unknown motion"):
        render_motion(hand(), "wave", np.random.default_rng(0))


def test_shuffle_time_keeps_the_frames_and_changes_the_order():
    x = np.arange(2 * 8 * 1 * 1, dtype=np.float32).reshape(2, 8, 1, 1)
    shuffled = shuffle_time(x, seed=0)
    assert np.array_equal(np.sort(shuffled, axis=1), x)
    assert not np.array_equal(shuffled, x)


@pytest.mark.slow
def test_temporal_model_needs_the_order_shuffle_control_falls_to_chance():
    """Ramps up vs down through the same values: ordered they are separable, shuffled they are not."""
    from video_gestures.model import CNNBiLSTMWithAttention

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and the machine is shared
    rng = np.random.default_rng(0)
    n, steps = 256, 8
    base = np.linspace(-1, 1, steps)
    y = rng.integers(0, 2, n)
    x = np.stack([(base if t == 0 else base[::-1]) * rng.uniform(0.5, 1.5) + rng.normal(0, 0.05, steps) for t in y])
    x = x[:, :, None, None].astype(np.float32)

    def accuracy(train_x, test_x) -> float:
        torch.manual_seed(0)
        network = CNNBiLSTMWithAttention(2, channels=1, features=1, hidden=16)
        optimizer = torch.optim.RAdam(network.parameters(), lr=1e-2)
        inputs, targets = torch.from_numpy(train_x[:192]), torch.from_numpy(y[:192])
        for _ in range(60):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(inputs), targets).backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            return float((network(torch.from_numpy(test_x[192:])).argmax(1).numpy() == y[192:]).mean())

    try:
        assert accuracy(x, x) >= 0.95
        shuffled = shuffle_time(x, seed=1)
        assert accuracy(shuffled, shuffled) <= 0.7
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_clips_train_predict_and_live_from_the_cli(tmp_path, capsys):
    from video_gestures import predict, train
    from video_gestures.embeddings import read_cache

    motion = generate_motion_set([hand(i) for i in range(4)], clips_per_class=6, num_frames=4, size=32,
                                 motions=("swipe_left", "swipe_right"))
    frames = write_motion_folders(motion, tmp_path / "frames")
    result = train.main(["--source", "clips", "--data", str(frames), "--cache", str(tmp_path / "cache.h5"),
                         "--backbone", "vit-tiny", "--image-size", "32", "--num-frames", "4", "--runs-root", str(tmp_path),
                         "--run-name", "r", "--max-epochs", "1", "--batch-size", "4", "--hidden", "8",
                         "--val-fraction", "0.2", "--no-progress-bar"])
    assert read_cache(tmp_path / "cache.h5").embeddings.shape == (12, 4, 3, 32)
    assert (tmp_path / "video_gestures" / "r" / "attention.png").is_file()
    assert len(result["attention"]["time_mean"]) == 4 and result["sequences"]["test"] >= 2
    again = train.main(["--source", "cache", "--cache", str(tmp_path / "cache.h5"), "--runs-root", str(tmp_path),
                        "--run-name", "r2", "--max-epochs", "1", "--batch-size", "4", "--hidden", "8",
                        "--val-fraction", "0.2", "--no-progress-bar"])
    weights, weights_again = (torch.load(r["best_checkpoint"], weights_only=False)["state_dict"] for r in (result, again))
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)  # same command, same model

    video = tmp_path / "clip.mp4"
    with AtomicVideoWriter(video, fps=8, size=(32, 32)) as writer:
        for clip in motion.clips[:3]:
            for frame in clip:
                writer.write(frame)
    (tmp_path / "broken.mp4").write_bytes(b"junk")
    table = predict.main(["--checkpoint", str(result["best_checkpoint"]), str(video), str(tmp_path / "broken.mp4"),
                          "-o", str(tmp_path / "p.csv")])
    assert pd.read_csv(tmp_path / "p.csv").shape[0] == 1, "the broken file has no row; it is reported as skipped"
    assert table.loc[0, "prediction"] in ("swipe_left", "swipe_right")
    assert f"skipped {tmp_path / 'broken.mp4'}: cannot open" in capsys.readouterr().err
    timeline = predict.main(["--checkpoint", str(result["best_checkpoint"]), "--live", "--stride", "2", str(video),
                             "-o", str(tmp_path / "t.csv"), "--windows", str(tmp_path / "w.csv")])
    assert timeline["frame"].tolist() == [3, 5, 7, 9, 11]  # a full 4-frame window, then every 2 frames
    assert set(timeline["smoothed_label"]) <= {"swipe_left", "swipe_right"}
    assert pd.read_csv(tmp_path / "w.csv")["frame"].tolist() == [3, 5, 7, 9, 11]
    gestures = pd.read_csv(tmp_path / "t.csv")
    assert gestures["windows"].sum() == 5 and set(gestures["label"]) <= {"swipe_left", "swipe_right"}
    assert (gestures["start"] < gestures["end"]).all() and gestures["start"].iloc[0] == 0.0
    assert (tmp_path / "t.png").stat().st_size > 1000  # the timeline picture beside the CSV


def test_fingertip_encoder_builds_point_history_features_from_landmarks():
    from gesture_detection.detect import Detection
    from video_gestures.live import FingertipEncoder

    class FakeHands:
        """Index fingertip moving right 2 px per frame; no hand in frame 3."""

        def __init__(self):
            self.calls = 0

        def __call__(self, rgb):
            self.calls += 1
            if self.calls == 3:
                return []
            points = np.zeros((21, 3), np.float32)
            points[8, :2] = (10 + 2 * self.calls, 20)
            return [Detection(np.array([0, 0, 50, 50], np.float32), 0.9, points, "Right")]

    encoder = FingertipEncoder(["position", "velocity", "offset"], num_frames=4, detector=FakeHands())
    encodings = [encoder.encode(np.zeros((40, 100, 3), np.uint8)) for _ in range(5)]
    assert np.allclose(encodings[2][:2], encodings[1][:2])  # a frame without a hand repeats the last position,
    assert [e[2] for e in encodings] == [1, 1, 0, 1, 1]       # marked as a frame without a hand
    assert encoder.abstain(encodings) is None                  # 3 of the last 4 frames had a hand
    sequence = encoder.to_sequence(encodings)
    assert sequence.shape == (4, 3, 2)
    assert np.allclose(sequence[:, 2, 0], [0, 0, 0.4, 0.6])  # offset from the first point, / width 100, x 10
    assert np.allclose(sequence[-1, 0], [1, 0])  # position scaled by the largest offset
