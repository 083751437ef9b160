"""A run's history: one row per finished epoch, plus how the run ended.

Its own module, below the engine, so that what reads results (the run store's records,
statistics, figures) needs no training code. The engine writes it
(:func:`fmnist_helpers.engine.train_stack`); ``fmnist_helpers.engine.History`` is this class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict


class Row(TypedDict, total=False):
    """One epoch of a :class:`History` (the columns are described there)."""

    epoch: int
    train_loss: float
    train_acc_running: float
    train_acc: float | None
    test_loss: float
    test_acc: float
    test_acc_study: float
    val_loss: float
    val_acc: float
    train_acc_sample: float


@dataclass
class History:
    """One row per finished epoch (a :class:`Row`), plus how the run ended.

    Columns: ``epoch``; ``train_loss`` (mean cross-entropy over the epoch, while the weights
    change); ``train_acc_running`` (the study's train accuracy: mean of per-batch accuracies
    over the epoch); ``train_acc`` (correct / total on the training rows after the epoch: on
    all of them, exact, at the run's last epoch; at the epochs before, which only draw the
    curves, on ``engine.TRAIN_SAMPLE`` of them evenly spaced, six times cheaper on the full
    data); ``test_loss``; ``test_acc`` (exact); ``test_acc_study`` (the study's way: mean of
    per-batch accuracies over test batches of 32); ``val_loss``/``val_acc`` with a validation
    split. ``diverged`` says where the loss became NaN or infinite, when it did (the last
    finished epoch's ``train_acc`` is then the sample's).

    ``train_acc_sample`` appears only in the engine's history of a member that carries several
    runs (the planner's :class:`~fmnist_helpers.planner.Trajectory`): at an epoch where one of
    them ends but the member trains on, ``train_acc`` is the exact one (for the run that ends)
    and ``train_acc_sample`` the sample's (for the longer runs, whose curves use the sample).
    The planner's ``Trajectory.history_of`` removes it from every run's history; no stored
    result holds it.
    """

    rows: list[Row] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    interrupted: bool = False
    diverged: str | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list:
        return [row[column] for row in self.rows]

    @property
    def last(self) -> Row:
        if not self.rows:
            raise ValueError(f"the run finished no epoch ({self.diverged or 'interrupted'})")
        return self.rows[-1]

    def to_dict(self) -> dict:
        return {"rows": self.rows, "stopped_early": self.stopped_early,
                "best_epoch": self.best_epoch, "interrupted": self.interrupted,
                "diverged": self.diverged}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(d["rows"], d["stopped_early"], d["best_epoch"], d.get("interrupted", False),
                   d.get("diverged"))
