"""The study's training recipe: cross-entropy, plain SGD, batches of 32, optional penalties
and early stopping. One loop, written out in full, used by the notebooks, the experiments and
the interactive playground alike."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .data import FashionMNIST, Split, minibatches
from .models import weight_penalty

EVAL_BATCH = 10_000
STUDY_EVAL_BATCH = 32  # the study evaluated in batches of 32 and averaged per-batch accuracies


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, else Apple's MPS, else the CPU; ``prefer`` or ``FMNIST_DEVICE`` wins."""
    prefer = prefer or os.environ.get("FMNIST_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("FMNIST_PROGRESS", "1").strip().lower() not in {"0", "false", "no", "off"}


class EarlyStopping:
    """Stop when ``monitor`` (a loss) has not dropped by ``min_delta`` for ``patience`` epochs.

    The study's rule: the loss must fall by at least 0.01 against the best so far; after three
    epochs without such a fall, training ends. The weights of the last epoch are kept (the study
    reports the last epoch), and :attr:`best_epoch` remembers the best one.
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.01, monitor: str = "test_loss"):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        if monitor not in {"test_loss", "val_loss"}:
            raise ValueError(f"monitor must be 'test_loss' or 'val_loss', got {monitor!r}")
        self.patience, self.min_delta, self.monitor = patience, min_delta, monitor
        self.best = math.inf
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def step(self, value: float, epoch: int) -> bool:
        """Record one epoch's value; return True when training should stop."""
        if self.best - value >= self.min_delta - 1e-12:  # "at least min_delta", float-safe
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


@dataclass
class History:
    """One row per finished epoch, plus how the run ended.

    Columns: ``epoch``; ``train_loss`` (mean cross-entropy over the epoch, while the weights
    change); ``train_acc_running`` (the study's train accuracy: mean of per-batch accuracies
    over the epoch); ``train_acc`` (exact: correct / total on the training set after the epoch);
    ``test_loss``; ``test_acc`` (exact: correct / total); ``test_acc_study`` (the study's way:
    mean of per-batch accuracies over batches of 32); ``val_loss``/``val_acc`` when a validation
    split is used; ``seconds`` (wall time of the epoch, evaluation included).
    """

    rows: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    interrupted: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list:
        return [row[column] for row in self.rows]

    @property
    def last(self) -> dict:
        return self.rows[-1]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("epoch")

    def to_dict(self) -> dict:
        return {
            "rows": self.rows, "stopped_early": self.stopped_early,
            "best_epoch": self.best_epoch, "interrupted": self.interrupted,
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(d["rows"], d["stopped_early"], d["best_epoch"], d.get("interrupted", False))


@torch.no_grad()
def evaluate(model: nn.Module, split: Split) -> dict:
    """Loss and accuracy on a split, in eval mode: exact, and the study's per-batch average."""
    was_training = model.training
    model.eval()
    losses, correct = [], []
    for images, labels in minibatches(split, EVAL_BATCH):
        logits = model(images)
        losses.append(F.cross_entropy(logits, labels, reduction="sum"))
        correct.append(logits.argmax(1) == labels)
    model.train(was_training)
    hits = torch.cat(correct).double()
    per_batch = torch.stack([chunk.mean() for chunk in hits.split(STUDY_EVAL_BATCH)])
    return {
        "loss": float(torch.stack(losses).sum()) / len(split),
        "acc": int(hits.sum()) / len(split),
        "acc_study": float(per_batch.mean()),
    }


def train(
    model: nn.Module,
    data: FashionMNIST,
    *,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 32,
    l1: float = 0.0,
    l2: float = 0.0,
    l2_first: float = 0.0,
    early_stopping: EarlyStopping | None = None,
    validation: Split | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    desc: str = "training",
    on_epoch: Callable[[History], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> History:
    """Train ``model`` in place with SGD on ``data.train``; evaluate on ``data.test`` each epoch.

    ``seed`` fixes the order of the batches (a fresh permutation each epoch). Initialisation and
    dropout draw from torch's global generator: seed it before building the model, as
    :func:`fmnist_helpers.experiments.run_experiment` does. ``on_epoch`` is called with the
    history after each epoch, ``on_batch(step, steps_per_epoch)`` after each batch, and
    ``should_stop()`` is checked between batches to end the run early (the weights are kept).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"learning rate must be > 0, got {lr}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if early_stopping is not None and early_stopping.monitor == "val_loss" and validation is None:
        raise ValueError("early stopping on 'val_loss' needs a validation split")
    device = pick_device() if device is None else torch.device(device)
    model.to(device)
    train_split, test_split = data.train.to(device), data.test.to(device)
    val_split = validation.to(device) if validation is not None else None
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, foreach=False)  # faster for few tensors
    shuffle = torch.Generator().manual_seed(seed)
    penalised = bool(l1 or l2 or l2_first)
    steps = math.ceil(len(train_split) / batch_size)
    bar = None
    if progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * steps, desc=desc, unit="batch", leave=True)

    history = History()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        batch_acc_sum = torch.zeros((), device=device)
        for step, (images, labels) in enumerate(minibatches(train_split, batch_size, shuffle), 1):
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            if not math.isfinite(loss.item()):
                if bar is not None:
                    bar.close()
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at epoch {epoch}, batch {step}: training "
                    f"diverged. Lower the learning rate (lr={lr}) or the penalty strengths "
                    f"(l1={l1}, l2={l2}, l2_first={l2_first})."
                )
            objective = loss + weight_penalty(model, l1, l2, l2_first) if penalised else loss
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(labels)
            batch_acc_sum += (logits.detach().argmax(1) == labels).float().mean()
            if bar is not None:
                bar.update(1)
            if on_batch is not None:
                on_batch(step, steps)
            if should_stop is not None and should_stop():
                history.interrupted = True
                break
        if history.interrupted:
            break
        row = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / len(train_split),
            "train_acc_running": float(batch_acc_sum) / steps,
            "train_acc": evaluate(model, train_split)["acc"],
        }
        test = evaluate(model, test_split)
        row |= {"test_loss": test["loss"], "test_acc": test["acc"],
                "test_acc_study": test["acc_study"]}
        if val_split is not None:
            val = evaluate(model, val_split)
            row |= {"val_loss": val["loss"], "val_acc": val["acc"]}
        row["seconds"] = time.perf_counter() - start
        history.rows.append(row)
        if bar is not None:
            bar.set_postfix(epoch=epoch, loss=f"{row['train_loss']:.3f}",
                            test_acc=f"{row['test_acc']:.3f}")
        if early_stopping is not None:
            stop = early_stopping.step(row[early_stopping.monitor], epoch)
            history.best_epoch = early_stopping.best_epoch
            if stop:
                history.stopped_early = True
        if on_epoch is not None:
            on_epoch(history)
        if history.stopped_early:
            break
    if bar is not None:
        bar.close()
    return history
