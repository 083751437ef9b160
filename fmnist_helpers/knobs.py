"""The playground's knobs, one entry each in :data:`KNOBS`: adding a knob is adding an entry.

A :class:`Knob` names the :class:`~fmnist_helpers.study.Experiment` field it sets, its short
label in run labels and in the runs table, the widget that shows it, and how a value goes from
the widget to the experiment and back. The playground (:mod:`fmnist_helpers.playground`) lays
the knobs out in this order, fills them from a preset, reads them into an experiment, watches
them for the grid's preview and writes them into the runs table, all from this table. Bounds
come from :data:`~fmnist_helpers.constraints.CONSTRAINTS`. :data:`FOCUS` says which knobs each
section of the study puts first, and what to try with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as W

from .constraints import ACTIVATIONS, CONSTRAINTS, MAX_TRAIN, OPTIMIZERS
from .study import LATER_KNOBS, MAX_EPOCHS, Experiment

MAX_DEPTH = 10
MAX_WIDTH = 256
MAX_DROPOUT = 0.9  # dropout 1.0 would drop every unit
MAX_SEED_SHOWN = 999_999  # the seed box's largest (any seed up to 2**63 - 1 trains)
LR_CHOICES = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
              1.0)  # 1, 2, 5 in each decade: a log slider (Adam wants ~0.001, SGD ~0.1)
BATCH_CHOICES = (8, 16, 32, 64, 128, 256, 512)
TRAIN_CHOICES = (1_000, 2_000, 5_000, 10_000, 20_000, 30_000, MAX_TRAIN)  # MAX_TRAIN: all
ACTIVATION_CHOICES = tuple(zip(("ReLU", "tanh", "sigmoid", "LeakyReLU (slope 0.01)"),
                               ACTIVATIONS, strict=True))
OPTIMIZER_CHOICES = tuple(zip(("SGD", "SGD with momentum 0.9", "Adam"), OPTIMIZERS,
                              strict=True))
PENALTY_CHOICES = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
EARLY_STOPPING_CHOICES = (  # not None for "off": a dropdown reads None as "nothing selected"
    ("off", "off"),
    ("on test loss (the study's rule)", "test"),
    ("on a validation split", "validation"),
)
STYLE = {"description_width": "120px"}


def lowest(field: str) -> int:
    """The smallest value of a whole-number knob: the constraints table's (its slider's min)."""
    return int(CONSTRAINTS[field].low)


def show(value) -> str:
    """A setting as a short string: on/off, the early-stopping mode, a number."""
    if isinstance(value, bool) or value is None:
        return "on" if value else "off"
    return value if isinstance(value, str) else f"{value:g}"


def _same(value):
    return value


@dataclass(frozen=True)
class Knob:
    """One knob: the experiment field it sets, and the widget that sets it.

    ``shown`` says where a run's value appears in the runs table's settings: "always", "if set"
    (left out when 0 or off), "if changed" (left out at the study's value,
    :data:`~fmnist_helpers.study.LATER_KNOBS`) or "never" (it has a column of its own).
    """

    field: str
    label: str
    make: Callable[[], W.ValueWidget]
    shown: str = "always"
    to_experiment: Callable[[Any], Any] = _same  # the widget's value -> the field's
    to_widget: Callable[[Any], Any] = _same  # the field's value -> the widget's


def _slider(kind, description: str, tooltip: str, **options) -> Callable[[], W.ValueWidget]:
    return lambda: kind(description=description, style=STYLE, layout=W.Layout(width="400px"),
                        tooltip=tooltip, **options)


def _choices(description: str, values: tuple[float, ...], tooltip: str):
    return _slider(W.SelectionSlider, description, tooltip,
                   options=[(f"{v:g}", v) for v in values])


def _images(value: int) -> str:
    return f"all {value:,}" if value == MAX_TRAIN else f"{value:,}"


KNOBS: dict[str, Knob] = {  # the playground's attribute name -> its knob, in layout order
    "depth": Knob("n_linear", "depth", _slider(
        W.IntSlider, "depth (layers)", "Linear layers, the classifier included (the study: 3 "
        "shallow, 8 deeper)", min=lowest("n_linear"), max=MAX_DEPTH)),
    "width": Knob("hidden", "width", _slider(
        W.IntSlider, "hidden width", "Units in each hidden layer (the study: 10 or 50)",
        min=lowest("hidden"), max=MAX_WIDTH)),
    "dropout": Knob("dropout", "dropout", _slider(
        W.FloatSlider, "dropout", "Dropout after each hidden layer",
        min=CONSTRAINTS["dropout"].low, max=MAX_DROPOUT, step=0.05, readout_format=".2f"),
        to_experiment=lambda v: round(v, 4)),
    "batch_norm": Knob("batch_norm", "batch norm", _slider(
        W.Checkbox, "batch norm", "Batch norm after each hidden activation (needs depth >= 2)")),
    "activation": Knob("activation", "act", _slider(
        W.Dropdown, "activation", "The hidden layers' activation (the study: ReLU)",
        options=ACTIVATION_CHOICES), shown="if changed"),
    "optimizer": Knob("optimizer", "opt", _slider(
        W.Dropdown, "optimizer", "How the weights follow the gradient (the study: plain SGD)",
        options=OPTIMIZER_CHOICES), shown="if changed"),
    "lr": Knob("lr", "lr", _choices("learning rate", LR_CHOICES,
                                    "Learning rate, on a log scale (the study: 0.1)")),
    "batch_size": Knob("batch_size", "batch", _choices(
        "batch size", BATCH_CHOICES, "Images per gradient step (the study: 32)"),
        shown="if changed"),
    "train_size": Knob("train_size", "images", _slider(
        W.SelectionSlider, "training images", "A fixed stratified subset of the 60,000 "
        "training images, the same for every seed (quick mode keeps the same share of its "
        "subset)", options=[(_images(v), v) for v in TRAIN_CHOICES]), shown="if changed",
        to_experiment=lambda v: None if v == MAX_TRAIN else v,
        to_widget=lambda v: MAX_TRAIN if v is None else v),
    "l1": Knob("l1", "L1", _choices("L1 strength", PENALTY_CHOICES,
                                    "l1 * sum |W| added to the loss"), shown="if set"),
    "l2": Knob("l2", "L2", _choices("L2 strength", PENALTY_CHOICES,
                                    "l2 * sum W^2 added to the loss"), shown="if set"),
    "l2_first": Knob("l2_first", "L2 first", _choices(
        "L2 first layer", PENALTY_CHOICES, "L2 penalty on the first layer's weights only"),
        shown="if set"),
    "epochs": Knob("epochs", "epochs", _slider(
        W.IntSlider, "epochs", "Epochs to train (the most, with early stopping)",
        min=lowest("epochs"), max=MAX_EPOCHS), shown="never"),
    "early_stopping": Knob("early_stopping", "early stopping", _slider(
        W.Dropdown, "early stopping", "Stop when the loss has not fallen by 0.01 for 3 epochs",
        options=EARLY_STOPPING_CHOICES), shown="if set",
        to_experiment=lambda v: None if v == "off" else v, to_widget=lambda v: v or "off"),
}

# section of the study -> (knobs to put first and emphasise, what to try)
FOCUS: dict[str, tuple[tuple[str, ...], str]] = {
    "depth": (("depth",), "Try the <b>depth</b> slider: in the study 8 linear layers did worse "
              "than 3 after 10 epochs. Is there a depth that helps? Does batch norm rescue the "
              "deep network?"),
    "width": (("width",), "Try the <b>width</b> slider: 50 units per hidden layer beat 10 in the "
              "study. Where do the gains stop?"),
    "dropout": (("dropout",), "Try the <b>dropout</b> slider: 0.2 narrowed the gap between "
                "train and test in the study. What does 0.5 do to a 10-unit network?"),
    "early stopping": (("early_stopping", "epochs"), "Try <b>early stopping</b> on and off, and "
                       "on a validation split instead of the test set: when does it stop?"),
    "batch norm": (("batch_norm", "depth"), "Try <b>batch norm</b> on and off, on the shallow "
                   "network and on a deep one."),
    "regularization": (("l1", "l2", "l2_first", "lr"), "Try the <b>L1 and L2</b> strengths: how "
                       "strong can a penalty get before the network stops learning?"),
    "mixed": (("batch_norm", "dropout", "early_stopping"), "The <b>mix model</b> turns "
              "everything on. Switch one ingredient off at a time and compare the runs below."),
}


def settings_text(experiment: Experiment) -> str:
    """A run's settings in words: "depth 3, width 10, dropout 0, batch norm off, lr 0.1, L1
    0.001" (a knob "if set" only when it is)."""
    parts = []
    for knob in KNOBS.values():
        value = getattr(experiment, knob.field)
        if (knob.shown == "always" or (knob.shown == "if set" and value)
                or (knob.shown == "if changed" and value != LATER_KNOBS[knob.field])):
            parts.append(f"{knob.label} {show(value)}")
    return ", ".join(parts)


def changes_text(experiment: Experiment, base: Experiment) -> list[str]:
    """The knobs whose value differs from ``base``'s: ["depth 4", "width 16"]."""
    return [f"{k.label} {show(getattr(experiment, k.field))}" for k in KNOBS.values()
            if getattr(experiment, k.field) != getattr(base, k.field)]
