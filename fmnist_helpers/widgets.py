"""The playground's public names, where the notebooks import them from.

``from fmnist_helpers.widgets import playground`` opens the playground. It lives in three
modules: :mod:`fmnist_helpers.playground` (the view: widgets, layout, presets, the grid's
preview, the static copy, the runs table), :mod:`fmnist_helpers.trainer` (the background thread
that trains) and :mod:`fmnist_helpers.knobs` (the table of knobs: adding a knob is one entry
there); its figures go through :mod:`fmnist_helpers.render`, shared with the report, and its
settings string and copy-as-code box are :mod:`fmnist_helpers.share`'s and
:mod:`fmnist_helpers.share_box`'s (``playground(settings="depth=8&act=tanh")``).
"""

from .knobs import (
    ACTIVATION_CHOICES,
    BATCH_CHOICES,
    EARLY_STOPPING_CHOICES,
    FOCUS,
    KNOBS,
    LR_CHOICES,
    MAX_DEPTH,
    MAX_DROPOUT,
    MAX_SEED_SHOWN,
    MAX_WIDTH,
    OPTIMIZER_CHOICES,
    PENALTY_CHOICES,
    TRAIN_CHOICES,
    Knob,
)
from .playground import LEARNED_TABS, Playground, playground
from .trainer import PlaygroundRun, Trainer

__all__ = [
    "playground", "Playground", "PlaygroundRun", "Trainer", "Knob", "KNOBS", "FOCUS",
    "LEARNED_TABS", "EARLY_STOPPING_CHOICES", "LR_CHOICES", "PENALTY_CHOICES", "MAX_DEPTH",
    "MAX_WIDTH", "MAX_DROPOUT", "MAX_SEED_SHOWN", "ACTIVATION_CHOICES", "OPTIMIZER_CHOICES",
    "BATCH_CHOICES", "TRAIN_CHOICES",
]
