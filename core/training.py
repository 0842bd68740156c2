"""Lightning training shared by every task: trainer options and CLI flags, a classification module,
optimisers and schedulers, checkpoints (`best.ckpt`, `last.ckpt`), resume, and run records.

A run lives in `runs/<task>/<run-name>/`: config.json, metrics.json, curves.png, confusion.png,
best.ckpt, last.ckpt, CSV logs (`logs/version_N/metrics.csv`) and TensorBoard logs (`tensorboard/`).
The same script scales out with `--devices N --strategy ddp [--num-nodes M]`, or under `torchrun`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from core.env import REPO_ROOT
from core.io import save_figure, write_json
from core.metrics import ClassificationReport, plot_confusion

RUNS_DIR = REPO_ROOT / "runs"

# Expected on every run here: make_run_dir creates the checkpoint folder, and small sets have few batches.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging interval")
warnings.filterwarnings("ignore", message=r".*does not have many workers which may be a bottleneck")


# ----------------------------------------------------------------------------------------- options
@dataclass
class TrainerOptions:
    """What every `train.py` accepts; the task adds its own options beside these."""

    max_epochs: int = 20
    seed: int = 0
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    early_stopping_patience: int = 0
    resume: str | None = None
    progress_bar: bool = True
    log_every_n_steps: int = 10


def add_trainer_arguments(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """Add the shared trainer flags; `defaults` overrides TrainerOptions' defaults for this task."""
    base = dataclasses.replace(TrainerOptions(), **defaults)
    group = parser.add_argument_group("training loop (Lightning)")
    group.add_argument("--max-epochs", type=int, default=base.max_epochs, help="epochs to train (default %(default)s)")
    group.add_argument("--seed", type=int, default=base.seed, help="seed for data order, initialisation and augmentation")
    group.add_argument("--accelerator", default=base.accelerator, help="cpu, gpu, mps or auto (default %(default)s)")
    group.add_argument("--devices", default=base.devices,
                       help="devices per node: a number, a list like 0,1, or auto (default %(default)s)")
    group.add_argument("--num-nodes", type=int, default=base.num_nodes, help="machines in a multi-node run")
    group.add_argument("--strategy", default=base.strategy, help="auto, ddp, ddp_spawn, ... (default %(default)s)")
    group.add_argument("--precision", default=base.precision, help="32-true, 16-mixed, bf16-mixed")
    group.add_argument("--early-stopping-patience", type=int, default=base.early_stopping_patience,
                       help="stop after this many epochs without improvement (0 = off)")
    group.add_argument("--resume", default=base.resume,
                       help="continue training: 'last' (this run's last.ckpt) or a checkpoint path")
    group.add_argument("--no-progress-bar", dest="progress_bar", action="store_false", help="quiet logs for CI")
    group.add_argument("--log-every-n-steps", type=int, default=base.log_every_n_steps)


def trainer_options_from_args(args: argparse.Namespace) -> TrainerOptions:
    return TrainerOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainerOptions)})


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch. Call it before building the model: `fit` seeds again for the data
    order, but by then the weights are already initialised."""
    L.seed_everything(seed, workers=True, verbose=False)


def _parse_devices(devices: str) -> Any:
    if devices == "auto":
        return "auto"
    if "," in devices:
        return [int(d) for d in devices.split(",") if d]
    return int(devices)


# ----------------------------------------------------------------------------------------- optimisation
def build_optimizer(name: str, parameters: Any, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam, "sgd": torch.optim.SGD}
    if name not in optimizers:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(optimizers)}")
    extra = {"momentum": 0.9, "nesterov": True} if name == "sgd" else {}
    return optimizers[name](parameters, lr=learning_rate, weight_decay=weight_decay, **extra)


SCHEDULERS = ("none", "cosine", "onecycle", "step", "plateau")


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, trainer: L.Trainer, monitor: str = "val_loss") -> Any:
    """A Lightning scheduler config. onecycle steps per batch, the others per epoch."""
    epochs = max(int(trainer.max_epochs or 1), 1)
    if name == "none":
        return None
    if name == "cosine":
        return {"scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs), "interval": "epoch"}
    if name == "onecycle":
        steps = max(int(trainer.estimated_stepping_batches), 1)
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return {"scheduler": torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=steps), "interval": "step"}
    if name == "step":
        return {"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(epochs // 3, 1), gamma=0.1), "interval": "epoch"}
    if name == "plateau":
        return {"scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.3, patience=3),
                "interval": "epoch", "monitor": monitor}
    raise ValueError(f"unknown scheduler {name!r}; choose one of {SCHEDULERS}")


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy for class indices (N,) or class distributions (N, C), e.g. crowd votes."""
    if target.dtype.is_floating_point and target.dim() == 2:
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / target.shape[1]
        return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def mixup(inputs: torch.Tensor, targets: torch.Tensor, num_classes: int, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al., ICLR 2018): the batch blended with a shuffled copy of itself, weight
    lambda ~ Beta(alpha, alpha), and the targets (indices or distributions) into distributions alike.
    Integer inputs (uint8 images) are blended and rounded back to their type."""
    weight = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(len(inputs), device=inputs.device)
    mixed = weight * inputs.float() + (1 - weight) * inputs[order].float()
    mixed = mixed if inputs.is_floating_point() else mixed.round()
    soft = targets.float() if targets.dim() == 2 else F.one_hot(targets, num_classes).float()
    return mixed.to(inputs.dtype), weight * soft + (1 - weight) * soft[order]


class ClassificationModule(L.LightningModule):
    """Training, validation and test steps for a classifier over `labels`.

    Subclasses call `super().__init__(...)`, then `self.save_hyperparameters()` and build `self.network`
    (so `load_from_checkpoint` rebuilds it from the saved hyperparameters). Batches are (inputs, targets).
    """

    def __init__(self, labels: Sequence[str], optimizer: str = "adam", learning_rate: float = 1e-3,
                 weight_decay: float = 0.0, scheduler: str = "cosine", label_smoothing: float = 0.0):
        super().__init__()
        self.labels = list(labels)
        self.optimizer_name = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.scheduler_name = scheduler
        self.label_smoothing = label_smoothing
        self.network: torch.nn.Module

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)

    @property
    def task(self) -> str:
        """The task package the module belongs to (`emotion` for emotion.model.EmotionModule)."""
        return type(self).__module__.split(".")[0]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # what core.models reads to refuse another task's checkpoint before PyTorch loads it
        checkpoint["task"], checkpoint["labels"] = self.task, list(self.labels)

    def _shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        inputs, targets = batch
        logits = self(inputs)
        loss = soft_cross_entropy(logits, targets, self.label_smoothing if stage == "train" else 0.0)
        hard = targets.argmax(dim=1) if targets.dim() == 2 else targets
        accuracy = (logits.argmax(dim=1) == hard).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=len(hard))
        self.log(f"{stage}_acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=len(hard))
        return loss

    def training_step(self, batch: Any, batch_index: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_index: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_index: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: Any, batch_index: int) -> torch.Tensor:
        inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
        return torch.softmax(self(inputs), dim=1)

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.optimizer_name, self.parameters(), self.learning_rate, self.weight_decay)
        scheduler = build_scheduler(self.scheduler_name, optimizer, self.trainer)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}


# ----------------------------------------------------------------------------------------- running
@dataclass
class FitResult:
    trainer: L.Trainer
    best_checkpoint: Path
    last_checkpoint: Path
    train_seconds: float


def make_run_dir(task: str, run_name: str | None, root: Path | None = None) -> Path:
    """`runs/<task>/<run-name>`; the name defaults to the start time.

    The chosen name is kept in the environment, so DDP worker processes that Lightning starts by
    re-running the same command (seconds later) write into the same folder."""
    variable = f"RUN_NAME_{task.upper()}"
    name = run_name or os.environ.get(variable) or time.strftime("%Y%m%d-%H%M%S")
    os.environ[variable] = name
    run_dir = (root or RUNS_DIR) / task / name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def build_trainer(options: TrainerOptions, run_dir: Path, monitor: str = "val_acc", mode: str = "max",
                  **trainer_kwargs: Any) -> L.Trainer:
    callbacks: list[Any] = [
        ModelCheckpoint(dirpath=run_dir, filename="best", monitor=monitor, mode=mode, save_top_k=1,
                        auto_insert_metric_name=False, enable_version_counter=False),
        # Lightning's save_last refreshes last.ckpt only when a new best is saved; resuming needs every epoch.
        ModelCheckpoint(dirpath=run_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False),
        LearningRateMonitor(logging_interval="epoch"),
    ]
    if options.early_stopping_patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=options.early_stopping_patience))
    return L.Trainer(
        max_epochs=options.max_epochs,
        accelerator=options.accelerator,
        devices=_parse_devices(options.devices),
        num_nodes=options.num_nodes,
        strategy=options.strategy,
        precision=options.precision,
        deterministic="warn",
        callbacks=callbacks,
        logger=[CSVLogger(save_dir=run_dir, name="logs"), TensorBoardLogger(save_dir=run_dir, name="tensorboard")],
        enable_progress_bar=options.progress_bar,
        log_every_n_steps=options.log_every_n_steps,
        default_root_dir=run_dir,
        **trainer_kwargs,
    )


def resolve_resume(options: TrainerOptions, run_dir: Path) -> str | None:
    if options.resume is None:
        return None
    path = run_dir / "last.ckpt" if options.resume == "last" else Path(options.resume)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    return str(path)


# `fit(..., *LAST_EPOCH)`: best.ckpt is simply the last epoch (the global step only grows), for a fixed
# schedule or when no held-out data can rank the epochs
LAST_EPOCH = ("step", "max")


def is_launching_process() -> bool:
    """True in the process a user started, False in the DDP workers that Lightning launches (they get a rank)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def fit(module: L.LightningModule, train_loader: Any, val_loader: Any, options: TrainerOptions, run_dir: Path,
        monitor: str = "val_acc", mode: str = "max", **trainer_kwargs: Any) -> FitResult:
    """Seed, train with checkpoints and logs in `run_dir`, resume when asked; returns the checkpoints."""
    seed_everything(options.seed)
    if options.resume is None and is_launching_process():
        # a fresh start under a used run name: drop the old run's logs, or its epochs would mix into the curves
        for stale in ("logs", "tensorboard"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
    trainer = build_trainer(options, run_dir, monitor=monitor, mode=mode, **trainer_kwargs)
    started = time.perf_counter()
    trainer.fit(module, train_loader, val_loader, ckpt_path=resolve_resume(options, run_dir))
    seconds = time.perf_counter() - started
    return FitResult(trainer, run_dir / "best.ckpt", run_dir / "last.ckpt", seconds)


# ----------------------------------------------------------------------------------------- records
def read_epoch_metrics(run_dir: Path) -> Any:
    """All CSV logs of a run (one per start or resume) merged to one row per epoch."""
    import pandas as pd

    files = sorted((run_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    frames = [pd.read_csv(f) for f in files if f.stat().st_size]
    if not frames:
        return pd.DataFrame()
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.dropna(subset=["epoch"]) if "epoch" in merged else merged
    return merged.groupby("epoch").last().reset_index() if "epoch" in merged else merged


def plot_curves(run_dir: Path) -> Path | None:
    """Loss and accuracy per epoch from the run's CSV logs, as curves.png."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = read_epoch_metrics(run_dir)
    if epochs.empty:
        return None
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(10, 3.6))
    for column, axes in (("train_loss_epoch", loss_axes), ("val_loss", loss_axes), ("train_acc", acc_axes), ("val_acc", acc_axes)):
        if column in epochs:
            series = epochs[["epoch", column]].dropna()
            axes.plot(series["epoch"] + 1, series[column], marker="o", ms=3, label=column.replace("_epoch", ""))
    for axes, title in ((loss_axes, "loss"), (acc_axes, "accuracy")):
        axes.set_xlabel("epoch")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend()
    return save_figure(figure, run_dir / "curves.png")


def write_run_records(run_dir: Path, config: dict, metrics: dict, report: ClassificationReport | None = None) -> None:
    """config.json, metrics.json, curves.png and (given a report) confusion.png for one run."""
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "metrics.json", metrics)
    plot_curves(run_dir)
    if report is not None:
        save_figure(plot_confusion(report.confusion, report.labels), run_dir / "confusion.png")


def config_dict(*sources: Any) -> dict:
    """Merge dataclasses, namespaces and dicts into one JSON-ready config."""
    merged: dict = {}
    for source in sources:
        if dataclasses.is_dataclass(source):
            merged.update(dataclasses.asdict(source))
        elif isinstance(source, argparse.Namespace):
            merged.update(vars(source))
        else:
            merged.update(source)
    return {key: (str(value) if isinstance(value, Path) else value) for key, value in merged.items()}


def predict_probabilities(module: torch.nn.Module, loader: Any) -> np.ndarray:
    """Softmax outputs for every batch of `loader` (in order), without gradients, in eval mode."""
    module.eval()
    outputs = []
    with torch.inference_mode():
        for batch in loader:
            inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
            outputs.append(torch.softmax(module(inputs.to(module.device if hasattr(module, "device") else "cpu")), dim=1).cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, 0), dtype=np.float32)
