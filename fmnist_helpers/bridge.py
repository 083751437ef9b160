"""From an experiment of the study to the engine: one run (an experiment and a seed) as an
engine :class:`~fmnist_helpers.engine.Member` in a stack of its
:class:`~fmnist_helpers.engine.Shape`.

The study's configurations are plain data (:mod:`fmnist_helpers.study`); the engine takes
tensors and hyperparameters. The planner (:mod:`fmnist_helpers.planner`) builds its members
here, and the playground trains one run with :func:`train_one`, uncached.
"""

from __future__ import annotations

import torch

from .data import N_CLASSES, FashionMNIST, stratified_indices
from .engine import EarlyStopping, Member, Shape, Trained, train_stack
from .study import Experiment

VALIDATION_FRACTION = 12  # the sound early stopping holds out 1/12 of the training set (5,000)


def validation_rows(data: FashionMNIST, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``data.train`` to train on and the stratified rows held out for validation."""
    size = len(data.train) // VALIDATION_FRACTION // N_CLASSES * N_CLASSES
    held = stratified_indices(data.train.labels, size // N_CLASSES, seed)
    keep = torch.ones(len(data.train), dtype=torch.bool)
    keep[held] = False
    return torch.nonzero(keep).flatten(), held


def shape_of(experiment: Experiment) -> Shape:
    return Shape(experiment.n_linear, experiment.hidden, experiment.batch_norm)


def member_for(experiment: Experiment, seed: int, data: FashionMNIST) -> Member:
    """The engine's member for one run: the experiment's hyperparameters and the seed."""
    stopper, train_rows, val_rows = None, None, None
    if experiment.early_stopping == "validation":
        train_rows, val_rows = validation_rows(data, seed)
    if experiment.early_stopping:
        monitor = "test_loss" if experiment.early_stopping == "test" else "val_loss"
        stopper = EarlyStopping(experiment.patience, experiment.min_delta, monitor,
                                experiment.stop_against)
    return Member(seed, experiment.lr, experiment.epochs, experiment.dropout, experiment.l1,
                  experiment.l2, experiment.l2_first, stopper, train_rows, val_rows)


def train_one(experiment: Experiment, seed: int, data: FashionMNIST, **engine_options) -> Trained:
    """Train one run, no cache (the playground): ``engine_options`` go to ``train_stack``."""
    member = member_for(experiment, seed, data)
    return train_stack(shape_of(experiment), [member], data, **engine_options)[0]
