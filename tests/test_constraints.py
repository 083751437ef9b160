"""The one table of hyperparameter constraints, and the messages users get from it."""

import math

import pytest

from fmnist_helpers.constraints import ALIASES, CONSTRAINTS, MAX_SEED, check, check_seed
from fmnist_helpers.engine import EarlyStopping, Member, Shape
from fmnist_helpers.models import build_mlp, check_recipe
from fmnist_helpers.study import STUDY

SHOWN = {MAX_SEED: "2**63 - 1"}  # how a bound is written in a message, where not as {:g}


def bad_values(c):
    """Values the constraint must refuse: out of each bound, and of the wrong kind."""
    if c.kind == "choice":
        return ["no such choice", 1]
    if c.kind == "images":  # off the bounds, not a multiple of 10, not an int
        return ["3", True, math.nan, c.low - 10, c.high + 10, c.low + 5, float(c.low)]
    out = ["3", None, True, math.nan]
    if c.low is not None:
        out.append(c.low if not c.inclusive[0] else c.low - (1 if c.kind in ("int", "whole")
                                                              else 1e-9))
    if c.high is not None:
        out.append(c.high if not c.inclusive[1] else c.high + 1)
    if c.kind in ("int", "whole"):
        out.append((c.low or 0) + 1.5)
    if c.kind == "finite":
        out.append(math.inf)
    return out


def good_values(c):
    if c.kind == "choice":
        return list(c.choices)
    if c.kind == "images":
        return [None, int(c.low), int(c.high), 2_000]
    lowest = c.low if c.inclusive[0] else c.low + (1 if c.kind in ("int", "whole") else 1e-3)
    out = [lowest, lowest + 1 if c.high is None else (lowest + c.high) / 2]
    if c.kind in ("int", "whole"):
        out = [int(lowest), int(lowest) + 1]
    return out


@pytest.mark.parametrize("name", sorted(CONSTRAINTS))
def test_each_constraint_refuses_a_bad_value_naming_the_parameter_and_the_range(name):
    c = CONSTRAINTS[name]
    for bad in bad_values(c):
        with pytest.raises(ValueError) as err:
            check(name, bad)
        message = str(err.value)
        assert message.startswith(f"{c.label} must be {c.allowed}, got "), message
        assert message.endswith(repr(bad)), message
    for good in good_values(c):
        check(name, good)
    for bound in (c.low, c.high):  # the range is in the message, as the check applies it
        if bound is not None:
            assert SHOWN.get(bound, f"{bound:g}") in c.allowed, (name, bound)
    if c.kind == "choice":
        assert all(repr(choice) in c.allowed for choice in c.choices), name


def test_aliases_and_labels():
    assert set(ALIASES.values()) <= set(CONSTRAINTS)
    with pytest.raises(ValueError, match="^hidden width must be a whole number >= 1, got 0$"):
        check("width", 0)
    with pytest.raises(ValueError, match="^against must be 'best' or 'previous', got 'x'$"):
        check("against", "x", label="against")
    assert check_seed(7) == 7


@pytest.mark.parametrize("make, message", [
    (lambda: build_mlp(hidden=0), "hidden width must be a whole number >= 1, got 0"),
    (lambda: build_mlp(n_linear=2.5), "n_linear must be a whole number >= 1, got 2.5"),
    (lambda: build_mlp(dropout=1.0), "dropout must be in [0, 1), got 1.0"),
    (lambda: check_recipe(0, 10), "learning rate must be a finite number > 0, got 0"),
    (lambda: check_recipe(0.1, 0), "epochs must be a whole number >= 1, got 0"),
    (lambda: check_recipe(0.1, 10, l2=-1e-4), "l2 strength must be a finite number >= 0, "
                                               "got -0.0001"),
    (lambda: EarlyStopping(patience=0), "patience must be a whole number >= 1, got 0"),
    (lambda: EarlyStopping(min_delta=-0.1), "min_delta must be >= 0, got -0.1"),
    (lambda: EarlyStopping(monitor="acc"), "monitor must be 'test_loss' or 'val_loss', got 'acc'"),
    (lambda: EarlyStopping(against="last"), "against must be 'best' or 'previous', got 'last'"),
    (lambda: Member(1.5), "a seed must be a whole number from 0 to 2**63 - 1 (an int), got 1.5"),
    (lambda: Member(0, dropout=-0.1), "dropout must be in [0, 1), got -0.1"),
    (lambda: STUDY["shallow"].replace(patience=0),
     "experiment 'shallow': patience must be a whole number >= 1, got 0"),
    (lambda: STUDY["shallow"].replace(early_stopping="train"),
     "experiment 'shallow': early_stopping must be None, 'test' or 'validation', got 'train'"),
    (lambda: STUDY["shallow"].replace(stop_against="last"),
     "experiment 'shallow': stop_against must be 'best' or 'previous', got 'last'"),
    (lambda: STUDY["shallow"].replace(activation="gelu"),
     "experiment 'shallow': activation must be 'relu', 'tanh', 'sigmoid' or 'leaky_relu', "
     "got 'gelu'"),
    (lambda: STUDY["shallow"].replace(optimizer="rmsprop"),
     "experiment 'shallow': optimizer must be 'sgd', 'momentum' (SGD, momentum 0.9) or 'adam', "
     "got 'rmsprop'"),
    (lambda: STUDY["shallow"].replace(batch_size=4),
     "experiment 'shallow': batch size must be a whole number from 8 to 512 (an int), got 4"),
    (lambda: STUDY["shallow"].replace(train_size=1234),
     "experiment 'shallow': train_size must be None (all the training images) or a multiple "
     "of 10 from 1000 to 60000 (an int), got 1234"),
    (lambda: build_mlp(activation="elu"),
     "activation must be 'relu', 'tanh', 'sigmoid' or 'leaky_relu', got 'elu'"),
    (lambda: Shape(batch_size=1024),
     "batch size must be a whole number from 8 to 512 (an int), got 1024"),
])
def test_every_entry_point_gives_the_tables_message(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def test_the_playgrounds_knobs_stay_within_the_table():
    from fmnist_helpers import widgets
    from fmnist_helpers.settings import settings

    for lr in widgets.LR_CHOICES:
        check("lr", lr)
    for strength in widgets.PENALTY_CHOICES:
        check("l1", strength)
    check("dropout", widgets.MAX_DROPOUT)
    check("seed", widgets.MAX_SEED_SHOWN)
    pg = widgets.Playground(config=settings(quick=True))
    assert (pg.depth.min, pg.width.min, pg.epochs.min, pg.seed.min, pg.dropout.min) == (
        CONSTRAINTS["n_linear"].low, CONSTRAINTS["hidden"].low, CONSTRAINTS["epochs"].low,
        CONSTRAINTS["seed"].low, CONSTRAINTS["dropout"].low)
