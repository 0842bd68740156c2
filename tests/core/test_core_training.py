import argparse

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from core.training import (ClassificationModule, TrainerOptions, add_trainer_arguments, fit, mixup, read_epoch_metrics,
                           soft_cross_entropy, trainer_options_from_args, write_run_records)
from core.metrics import classification_report


class TinyClassifier(ClassificationModule):
    def __init__(self, labels=("left", "right"), scheduler="cosine", learning_rate=0.05):
        super().__init__(labels, "adam", learning_rate, 0.0, scheduler, 0.0)
        self.save_hyperparameters()
        self.network = nn.Linear(2, len(labels))


def toy_loaders(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 2, generator=generator)
    y = (x[:, 0] > 0).long()  # linearly separable
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=32, shuffle=True, generator=generator), DataLoader(data, batch_size=64)


def test_trainer_flags_parse_into_options():
    parser = argparse.ArgumentParser()
    add_trainer_arguments(parser, max_epochs=7)
    options = trainer_options_from_args(parser.parse_args(["--devices", "2", "--strategy", "ddp", "--num-nodes", "3"]))
    assert options == TrainerOptions(max_epochs=7, devices="2", strategy="ddp", num_nodes=3)


def test_soft_cross_entropy_matches_hard_labels():
    logits = torch.randn(5, 3)
    target = torch.tensor([0, 2, 1, 1, 0])
    one_hot = nn.functional.one_hot(target, 3).float()
    assert torch.allclose(soft_cross_entropy(logits, one_hot), soft_cross_entropy(logits, target))


def test_mixup_blends_inputs_and_labels_with_one_weight():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 5), torch.arange(8) % 4
    mixed, soft = mixup(x, y, 4, alpha=0.4)
    assert soft.shape == (8, 4) and torch.allclose(soft.sum(dim=1), torch.ones(8))
    weight = soft[torch.arange(8), y].min()       # the own label keeps at least the blend weight
    assert 0 < weight < 1 and not torch.allclose(mixed, x)
    # each input is weight * itself + (1 - weight) * some other input of the batch, the same one its label came from
    for i in range(8):
        rest = (mixed[i] - weight * x[i]) / (1 - weight)
        j = int(((x - rest).flatten(1).abs().sum(dim=1)).argmin())
        assert torch.allclose(rest, x[j], atol=1e-4)
        expected = weight * nn.functional.one_hot(y[i], 4) + (1 - weight) * nn.functional.one_hot(y[j], 4)
        assert torch.allclose(soft[i], expected.float(), atol=1e-6)
    frames = torch.randint(0, 256, (4, 2, 6, 6, 3), dtype=torch.uint8)
    blended, _ = mixup(frames, torch.tensor([0, 1, 2, 3]), 4, alpha=1.0)
    assert blended.dtype == torch.uint8 and blended.shape == frames.shape


@pytest.mark.parametrize("scheduler", ["none", "onecycle", "step", "plateau"])
def test_schedulers_configure(scheduler, tmp_path):
    train, val = toy_loaders()
    options = TrainerOptions(max_epochs=1, accelerator="cpu", devices="1", progress_bar=False)
    result = fit(TinyClassifier(scheduler=scheduler), train, val, options, tmp_path, enable_model_summary=False)
    assert result.best_checkpoint.is_file()


def test_fit_checkpoints_resume_and_records(tmp_path):
    train, val = toy_loaders()
    options = TrainerOptions(max_epochs=3, accelerator="cpu", devices="1", progress_bar=False, seed=1)
    first = fit(TinyClassifier(), train, val, options, tmp_path, enable_model_summary=False)
    assert first.best_checkpoint.is_file() and first.last_checkpoint.is_file()
    assert torch.load(first.last_checkpoint, weights_only=False)["epoch"] == 2

    resumed = fit(TinyClassifier(), train, val, TrainerOptions(**{**options.__dict__, "max_epochs": 5, "resume": "last"}),
                  tmp_path, enable_model_summary=False)
    assert resumed.trainer.current_epoch == 5
    epochs = read_epoch_metrics(tmp_path)
    assert list(epochs["epoch"]) == [0, 1, 2, 3, 4], "curves must span the run before and after the resume"
    assert epochs["val_acc"].iloc[-1] > 0.9

    model = TinyClassifier.load_from_checkpoint(first.best_checkpoint)
    x, y = next(iter(val))
    report = classification_report(y.tolist(), model(x).argmax(1).tolist())
    write_run_records(tmp_path, {"lr": 0.05}, {"accuracy": report.accuracy}, report)
    for name in ("config.json", "metrics.json", "curves.png", "confusion.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_a_fresh_run_under_a_used_name_logs_only_itself(tmp_path):
    train, val = toy_loaders()
    options = TrainerOptions(max_epochs=4, accelerator="cpu", devices="1", progress_bar=False)
    fit(TinyClassifier(), train, val, options, tmp_path, enable_model_summary=False)
    fit(TinyClassifier(), train, val, TrainerOptions(**{**options.__dict__, "max_epochs": 2}), tmp_path,
        enable_model_summary=False)
    assert list(read_epoch_metrics(tmp_path)["epoch"]) == [0, 1]


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    train, val = toy_loaders()
    options = TrainerOptions(max_epochs=1, accelerator="cpu", devices="1", progress_bar=False, resume="last")
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        fit(TinyClassifier(), train, val, options, tmp_path)
