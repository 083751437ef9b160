"""What each hyperparameter may be: one table, one check, in the spirit of scikit-learn's
``_parameter_constraints``.

:data:`CONSTRAINTS` maps a name to a :class:`Constraint` (kind, bounds, and the words of the
message); :func:`check` raises the ``ValueError`` users see, ``"<label> must be <allowed>, got
<value>"``. The study's :class:`~fmnist_helpers.study.Experiment`, the engine's ``Member`` and
``EarlyStopping``, :mod:`fmnist_helpers.models`' checks and the playground's controls all read
this table, so a rule is written once. Nothing here draws randomness or imports torch.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

MAX_SEED = 2**63 - 1  # torch.manual_seed's largest non-negative seed
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")  # leaky_relu: nn.LeakyReLU's slope 0.01
OPTIMIZERS = ("sgd", "momentum", "adam")  # momentum 0.9; Adam with torch's defaults
MIN_BATCH, MAX_BATCH = 8, 512
MIN_TRAIN, MAX_TRAIN = 1_000, 60_000  # a stratified subset of the training split: 10 classes

KINDS = {
    "int": "an int (numbers.Integral), not a bool",
    "whole": "a whole number: an int, or a float with no fractional part; not a bool",
    "finite": "a finite real number, not a bool",
    "real": "a real number, infinity allowed, not NaN nor a bool",
    "choice": "one of the listed values",
    "images": "None (all), or an int (not a bool) within the bounds, a multiple of 10",
}


@dataclass(frozen=True)
class Constraint:
    """What one hyperparameter may be.

    ``kind`` is one of :data:`KINDS`; ``low``/``high`` bound the value (None: unbounded), each
    included or not as ``inclusive`` says; ``choices`` the values of a "choice". The message
    reads ``f"{label} must be {allowed}, got {value!r}"``.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    inclusive: tuple[bool, bool] = (True, True)
    label: str = ""
    allowed: str = ""
    choices: tuple = ()

    def accepts(self, value) -> bool:
        """Whether ``value`` is of the kind and within the bounds."""
        if self.kind == "choice":
            return any(value is c or (type(value) is type(c) and value == c)
                       for c in self.choices)
        if self.kind == "images":  # None or a whole number of images, 10 classes
            return value is None or (isinstance(value, numbers.Integral)
                                     and not isinstance(value, bool) and value % 10 == 0
                                     and self.low <= value <= self.high)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind == "int" and not isinstance(value, numbers.Integral):
            return False
        if self.kind == "whole" and not isinstance(value, numbers.Integral) \
                and not (math.isfinite(value) and float(value).is_integer()):
            return False
        if self.kind == "finite" and not math.isfinite(value):
            return False
        if math.isnan(value):
            return False
        low_in, high_in = self.inclusive
        if self.low is not None and not (value >= self.low if low_in else value > self.low):
            return False
        return self.high is None or (value <= self.high if high_in else value < self.high)

    def message(self, value, label: str | None = None) -> str:
        return f"{label or self.label} must be {self.allowed}, got {value!r}"


def _whole(label: str, low: int = 1) -> Constraint:
    return Constraint("whole", low, label=label, allowed=f"a whole number >= {low}")


def _penalty(name: str) -> Constraint:
    return Constraint("finite", 0.0, label=f"{name} strength", allowed="a finite number >= 0")


CONSTRAINTS: dict[str, Constraint] = {
    "seed": Constraint("int", 0, MAX_SEED, label="a seed",
                       allowed="a whole number from 0 to 2**63 - 1 (an int)"),
    "n_linear": _whole("n_linear"),
    "hidden": _whole("hidden width"),
    "dropout": Constraint("real", 0.0, 1.0, (True, False), label="dropout", allowed="in [0, 1)"),
    "lr": Constraint("finite", 0.0, inclusive=(False, True), label="learning rate",
                     allowed="a finite number > 0"),
    "epochs": _whole("epochs"),
    "l1": _penalty("l1"),
    "l2": _penalty("l2"),
    "l2_first": _penalty("l2_first"),
    "early_stopping": Constraint("choice", label="early_stopping", choices=(None, "test",
                                 "validation"), allowed="None, 'test' or 'validation'"),
    "patience": _whole("patience"),
    "min_delta": Constraint("real", 0.0, label="min_delta", allowed=">= 0"),
    "stop_against": Constraint("choice", label="stop_against", choices=("best", "previous"),
                               allowed="'best' or 'previous'"),
    "monitor": Constraint("choice", label="monitor", choices=("test_loss", "val_loss"),
                          allowed="'test_loss' or 'val_loss'"),
    "activation": Constraint("choice", label="activation", choices=ACTIVATIONS,
                             allowed="'relu', 'tanh', 'sigmoid' or 'leaky_relu'"),
    "optimizer": Constraint("choice", label="optimizer", choices=OPTIMIZERS,
                            allowed="'sgd', 'momentum' (SGD, momentum 0.9) or 'adam'"),
    "batch_size": Constraint("int", MIN_BATCH, MAX_BATCH, label="batch size",
                             allowed=f"a whole number from {MIN_BATCH} to {MAX_BATCH} (an int)"),
    "train_size": Constraint("images", MIN_TRAIN, MAX_TRAIN, label="train_size",
                             allowed=f"None (all the training images) or a multiple of 10 from "
                                     f"{MIN_TRAIN} to {MAX_TRAIN} (an int)"),
}
ALIASES = {"depth": "n_linear", "width": "hidden", "against": "stop_against"}  # the engine's
# and the playground's names


def check(name: str, value, label: str | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is allowed for hyperparameter ``name`` (a key of
    :data:`CONSTRAINTS` or :data:`ALIASES`); ``label`` names it in the message instead."""
    constraint = CONSTRAINTS[ALIASES.get(name, name)]
    if not constraint.accepts(value):
        raise ValueError(constraint.message(value, label))


def check_all(**values) -> None:
    """:func:`check` each keyword argument, in order."""
    for name, value in values.items():
        check(name, value)


def check_seed(seed) -> int:
    """A seed as an int, or a ValueError that says what a seed may be."""
    check("seed", seed)
    return int(seed)
