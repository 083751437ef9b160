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
FULL_TRAIN = 60_000  # Fashion-MNIST's training images: what Experiment.train_size counts from
SUBSET_SEED = 0  # the training subset's draw: one subset for every seed of a run


def training_subset(data: FashionMNIST, train_size: int | None) -> torch.Tensor | None:
    """The rows of ``data.train`` an experiment's ``train_size`` trains on (None: all).

    A fixed stratified subset, ``train_size / 10`` images per class, drawn with
    :data:`SUBSET_SEED` whatever the run's seed (seeds then differ in initialisation, order
    and masks, not in data). ``train_size`` counts images of the full training set: on a
    smaller one (quick mode's 2,000) it keeps the same fraction, at least one image per class
    (1,000 of 60,000 is 30 of quick mode's 2,000), as quick mode scales epochs down too.
    """
    if train_size is None:
        return None
    labels = data.train.labels
    per_class = train_size // N_CLASSES
    if len(labels) < FULL_TRAIN:
        per_class = max(1, per_class * len(labels) // FULL_TRAIN)
    if per_class * N_CLASSES >= len(labels):
        return None
    return stratified_indices(labels, per_class, SUBSET_SEED).sort().values


def validation_rows(data: FashionMNIST, seed: int, rows: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``data.train`` to train on and the stratified rows held out for validation:
    1/:data:`VALIDATION_FRACTION` of ``rows`` (default: all), drawn with the run's seed."""
    rows = torch.arange(len(data.train)) if rows is None else rows
    labels = data.train.labels[rows]
    size = len(rows) // VALIDATION_FRACTION // N_CLASSES * N_CLASSES
    if size == 0:
        raise ValueError(f"a validation split needs at least {VALIDATION_FRACTION * N_CLASSES} "
                         f"training images, got {len(rows)}: raise train_size or stop early "
                         "on the test loss")
    held = rows[stratified_indices(labels, size // N_CLASSES, seed)]
    keep = torch.zeros(len(data.train), dtype=torch.bool)
    keep[rows] = True
    keep[held] = False
    return torch.nonzero(keep).flatten(), held


def shape_of(experiment: Experiment) -> Shape:
    """The stack an experiment trains in: its layers and its recipe (activation, optimizer,
    batch size), which every model of a stack shares."""
    return Shape(experiment.n_linear, experiment.hidden, experiment.batch_norm,
                 experiment.activation, experiment.optimizer, experiment.batch_size)


def member_for(experiment: Experiment, seed: int, data: FashionMNIST) -> Member:
    """The engine's member for one run: the experiment's hyperparameters and the seed."""
    stopper, val_rows = None, None
    train_rows = training_subset(data, experiment.train_size)
    if experiment.early_stopping == "validation":
        train_rows, val_rows = validation_rows(data, seed, train_rows)
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
