"""End to end: train from the CLI on generated videos and on real UCF101 frames, predict to CSV."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from action_recognition import data as clip_data
from action_recognition import predict, train
from action_recognition.data import load_clips, read_ucf_zip
from action_recognition.inference import load_model, predict_probabilities
from action_recognition.synthetic import ACTIONS, write_action_video
from core.io import write_image, write_json
from tests.conftest import shared_data_path, write_faststart_mp4


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _generated_videos(root, per_class: int, first_val: int, seconds: float):
    """root/{train,val}/<action>/<k>.mp4: clips k >= first_val go to val."""
    for a, action in enumerate(ACTIONS):
        for k in range(per_class):
            write_action_video(root / ("val" if k >= first_val else "train") / action / f"{k}.mp4", action,
                               seed=10 * a + k, seconds=seconds)
    return root


@pytest.mark.slow
def test_gru_on_generated_videos_then_predict_top_k(tmp_path, capsys):
    data = _generated_videos(tmp_path / "videos", per_class=10, first_val=8, seconds=1.6)
    (data / "train" / ACTIONS[0] / "broken.mp4").write_bytes(b"")
    result = train.main(["--data", str(data), "--model", "gru", "--num-frames", "4", "--frame-size", "64",
                         "--image-size", "64", "--dev-fraction", "0", "--max-epochs", "25", "--batch-size", "8",
                         "--learning-rate", "5e-3", "--runs-root", str(tmp_path / "runs"), "--run-name", "g",
                         "--cache-dir", str(tmp_path / "cache"), "--no-progress-bar"])
    assert result["report"].n_samples == 6 and result["clips"]["train"] == 24
    assert result["report"].accuracy >= 0.5                      # chance is 1/3
    assert [s for s, _ in result["skipped_files"]] == [str(data / "train" / ACTIONS[0] / "broken.mp4")]
    run_dir = result["run_dir"]
    assert (run_dir / "confusion.png").is_file() and (run_dir / "metrics.json").is_file()

    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    whole = write_faststart_mp4(tmp_path / "whole.mp4", frames=40)
    (tmp_path / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = predict.main(["--checkpoint", str(result["best_checkpoint"]), str(data / "val"), str(tmp_path / "bad.mp4"),
                        str(tmp_path / "cut.mp4"), "-o", str(tmp_path / "p.csv"), "--top-k", "3"])
    rows = _rows(out)
    assert len(rows) == 7 and set(rows[0]) == {"path", "label", "probability", "label_2", "probability_2",
                                               "label_3", "probability_3", "note"}
    truncated = [r for r in rows if r["path"].endswith("cut.mp4")]
    assert truncated[0]["note"].startswith("truncated: decoded") and "of 40 frames" in truncated[0]["note"]
    assert "cut.mp4: truncated video? decoded" in capsys.readouterr().err
    rows = [r for r in rows if r not in truncated]
    assert all(float(r["probability"]) >= float(r["probability_2"]) >= float(r["probability_3"]) for r in rows)
    assert sum(r["label"] == r["path"].split("/")[-2] for r in rows) >= 3

    # an ensemble of the model with itself (weights 0.25 + 0.75) predicts exactly what the model does
    members = [{"checkpoint": str(result["best_checkpoint"]), "weight": w} for w in (0.25, 0.75)]
    write_json(tmp_path / "ensemble.json", {"members": members, "labels": result["labels"]})
    out = predict.main(["--ensemble", str(tmp_path / "ensemble.json"), str(data / "val"), "-o", str(tmp_path / "e.csv")])
    assert [(r["path"], r["label"], round(float(r["probability"]), 4)) for r in _rows(out)] == \
           [(r["path"], r["label"], round(float(r["probability"]), 4)) for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--temporal-shift", "--mixup", "0.4"], ["--backbone", "efficientnet_lite0", "--temporal-shift"]],
                         ids=["tsn", "tsm_mixup", "efficientnet_tsm"])
def test_partial_finetune_trains_on_cached_views_and_predicts_from_frames(tmp_path, extra):
    data = _generated_videos(tmp_path / "videos", per_class=6, first_val=4, seconds=1.2)
    cache = tmp_path / "cache"
    result = train.main(["--data", str(data), "--model", "tsn", "--num-frames", "3", "--frame-size", "48",
                         "--image-size", "48", "--finetune-from", "14", "--views", "2", "--flip-augment", "--tta-flip",
                         "--dev-fraction", "0", "--max-epochs", "2", "--batch-size", "4", "--select", "last",
                         "--runs-root", str(tmp_path / "runs"), "--run-name", "p", "--cache-dir", str(cache),
                         "--no-progress-bar", *extra])
    assert result["clips"]["train"] == 12 and result["report"].n_samples == 6
    backbone = extra[extra.index("--backbone") + 1] if "--backbone" in extra else "mobilenet_v2"
    assert all(p.name.startswith(f"{backbone}_48px_stem14_") for p in (cache / "features").iterdir())
    names = sorted(p.name.split("stem14_")[1] for p in (cache / "features").iterdir())
    assert names == ["aug0_seed0_3frames.npz", "aug1_seed0_3frames.npz", "flip_3frames.npz", "plain_3frames.npz"]
    assert torch.load(result["best_checkpoint"], weights_only=False)["epoch"] == 1   # --select last: the 2nd epoch
    model = load_model(result["best_checkpoint"])
    assert model.hparams.finetune and model.hparams.finetune_from == 14 and model.hparams.backbone == backbone
    # the residual blocks from 14 on: MobileNetV2's 15 and 16, EfficientNet-Lite0's 14 and 15
    assert len(model.encoder.shifts) == (2 if "--temporal-shift" in extra else 0)
    assert model.hparams.mixup_alpha == (0.4 if "--mixup" in extra else 0.0)
    val = load_clips(data, 3, 48).select("val")
    from_cache = predict_probabilities(model, val, True, cache)                # what train.py scored
    from_frames = predict_probabilities(model, val, True, use_cache=False)     # what predict.py and the timing run
    assert np.allclose(from_cache, from_frames, atol=1e-3)
    assert np.allclose(from_cache, result["probabilities"], atol=1e-5)


@pytest.mark.slow
@pytest.mark.real_data
def test_tsn_on_real_ucf_frames_beats_chance_by_far(tmp_path):
    loaded = read_ucf_zip(shared_data_path("action_recognition", "ucf101_10class_3frame_clips.zip"))
    # 12 clips per class and split, spread over the split: consecutive clips come from the same video
    keep = []
    for label in loaded.labels:
        for split in ("train", "val"):
            own = [i for i, c in enumerate(loaded.clips) if c.label == label and c.split == split]
            keep += [own[int(k)] for k in np.linspace(0, len(own) - 1, 12)]
    loaded = loaded.take(keep)
    for clip, frames in zip(loaded.clips, loaded.frames):   # the frame-folder layout, from the real zip
        for t, frame in enumerate(frames):
            write_image(tmp_path / "frames" / clip.split / clip.label / clip.source.split("/")[-1] / f"{t + 1}.jpg", frame)
    result = train.main(["--data", str(tmp_path / "frames"), "--model", "tsn", "--image-size", "96",
                         "--max-epochs", "25", "--batch-size", "16", "--learning-rate", "3e-3", "--dev-fraction", "0.2",
                         "--flip-augment", "--cache-dir", str(tmp_path / "cache"),
                         "--runs-root", str(tmp_path / "runs"), "--run-name", "t", "--no-progress-bar"])
    assert result["report"].n_samples == 120
    assert result["report"].accuracy > 0.5                       # 10 classes: chance is 0.1


def _clip_numbers(sources) -> list[int]:
    return [int(source.rpartition("/")[2]) for source in sources]


# ucf_zip(10, 4): Bowling's train clips are 1-10 and val 11-14, Diving's train 15-24 and val 25-28; the tail
# dev split holds out 2 of each class's 10 train clips (9, 10 and 23, 24)
QUICK_RUN = {"train": [1, 2, 3, 15, 16, 17], "dev": [9, 23], "evaluation": [11, 25]}


def test_limits_read_only_the_clips_a_run_uses_and_keep_the_dev_clips(ucf_zip, monkeypatch):
    zip_path = ucf_zip(10, 4)
    decoded = []
    read_image = clip_data.read_image
    monkeypatch.setattr(clip_data, "read_image", lambda source, name=None: decoded.append(name) or read_image(source, name))

    def run(*limits: str) -> dict[str, list[int]]:
        decoded.clear()
        subsets = train.load_splits(train.build_parser().parse_args(["--data", str(zip_path), *limits]))
        return {name: _clip_numbers(c.source for c in subset.clips) for name, subset in zip(QUICK_RUN, subsets)}

    everything = run()
    assert everything["dev"] == [9, 10, 23, 24] and len(everything["evaluation"]) == 8 and len(decoded) == 28 * 4
    assert run("--limit-per-class", "3")["dev"] == everything["dev"]      # the limit does not move the dev clips
    quick = run("--limit-per-class", "3", "--limit-val", "1")
    assert quick == QUICK_RUN
    assert sorted(_clip_numbers({name.rpartition("/")[0] for name in decoded})) == sorted(sum(QUICK_RUN.values(), []))
    assert len(decoded) == 10 * 4                 # 4 frames of each of the 10 clips used, no other clip read


@pytest.mark.slow
def test_quick_run_caches_and_scores_only_the_clips_it_uses(ucf_zip, tmp_path):
    cache = tmp_path / "cache"
    result = train.main(["--data", str(ucf_zip(10, 4)), "--model", "tsn", "--image-size", "32", "--limit-per-class", "3",
                         "--limit-val", "1", "--tta-flip", "--max-epochs", "1", "--batch-size", "4",
                         "--cache-dir", str(cache), "--runs-root", str(tmp_path / "runs"), "--run-name", "quick",
                         "--no-progress-bar"])
    assert result["clips"] == {name: len(numbers) for name, numbers in QUICK_RUN.items()}
    assert _clip_numbers(c.source for c in result["dev_clips"].clips) == QUICK_RUN["dev"]
    assert _clip_numbers(c.source for c in result["evaluation_clips"].clips) == QUICK_RUN["evaluation"]
    caches = sorted((cache / "features").iterdir())
    assert [p.name for p in caches] == ["mobilenet_v2_32px_4frames.npz", "mobilenet_v2_32px_flip_4frames.npz"]
    for path in caches:       # features of the clips used, nothing else (flip: the held-out clips' test-time flip)
        with np.load(path) as stored:
            expected = QUICK_RUN["dev"] + QUICK_RUN["evaluation"] + ([] if "flip" in path.name else QUICK_RUN["train"])
            assert sorted(_clip_numbers(stored["sources"])) == sorted(expected)


def test_predict_with_no_readable_input_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no readable clips"):
        predict.gather_clips([str(tmp_path / "empty")], 3, 64)


def test_temporal_shift_without_fine_tuning_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="--temporal-shift works inside the fine-tuned CNN"):
        train.main(["--data", str(tmp_path / "not-read"), "--model", "tsn", "--temporal-shift"])
