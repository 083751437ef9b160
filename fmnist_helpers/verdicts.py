"""One row of the study's table against our seeds: could the study's single run be one more of
ours?

For each row of the study's table, the t-based 95% prediction interval for one new run is
computed from our seeds (those that did not collapse): mean ± t(0.975, n-1) · sd · √(1 + 1/n)
(:func:`fmnist_helpers.seeds.prediction_interval`). The study's test accuracy inside it is one
verdict; for the early-stopping rows its number of epochs inside the same kind of interval for
our epochs is a second one. A row is *reproduced* when every verdict holds. When the literal
configuration misses, the readings of that row (:data:`~fmnist_helpers.study.READINGS`) are
tried by the same rule, and the *set* of readings consistent with the row is reported, none
singled out. The rows whose parameters were chosen by a sweep towards the study's own numbers
(the penalty strengths and learning rate of the L1 and L2 rows) are named as tuned.

The lessons (:mod:`fmnist_helpers.lessons`) and the report's findings with their replication
(:mod:`fmnist_helpers.findings`) build on these verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from .results import Result
from .seeds import (
    Seeds,
    epochs,
    group,
    prediction_interval,
    test_acc,
)
from .study import PAPER, REG_LR, STUDY, PaperResult, base_of, changes


def interval_of(s: Seeds, measure=test_acc) -> tuple[float, float]:
    """The 95% prediction interval for one more run of ``s`` (seeds that did not collapse),
    cut to what the measure can be: an accuracy in [0, 1], at least one epoch."""
    low, high = prediction_interval(s.values(measure, kept=True))
    if math.isnan(low):
        return low, high
    if measure is epochs:
        return max(low, 1.0), high
    return max(low, 0.0), min(high, 1.0)


def where(value: float, s: Seeds, measure=test_acc) -> str:
    """"consistent", "above" or "below" our prediction interval; "one seed" without one."""
    low, high = interval_of(s, measure)
    if math.isnan(low):
        return "one seed"
    if value > high:
        return "above"
    return "below" if value < low else "consistent"


def consistent(s: Seeds, paper: PaperResult) -> bool | None:
    """True when the study's row could be one more run of ``s``: its test accuracy (and, with
    early stopping, its epochs) inside our prediction intervals; None with a single seed."""
    checks = [where(paper.test_acc, s)]
    if s.experiment.early_stopping:
        checks.append(where(paper.epochs, s, epochs))
    if "one seed" in checks:
        return None
    return all(c == "consistent" for c in checks)


def tuned(name: str) -> bool:
    """True for a row whose parameters were chosen by a sweep towards the study's own numbers
    (:mod:`fmnist_helpers.study`: the penalised models' learning rate and strengths)."""
    e = STUDY[name]
    return e.lr == REG_LR and bool(e.l1 or e.l2 or e.l2_first)


def tuned_rows() -> list[str]:
    return [n for n in PAPER if tuned(n)]


def readings_of(name: str, readings: dict[str, Seeds]) -> list[Seeds]:
    return [s for reading, s in readings.items() if base_of(reading) == name]


def verdict(name: str, literal: Seeds, readings: dict[str, Seeds]) -> tuple[str, list[Seeds]]:
    """The verdict on one row of the study, and every reading consistent with it."""
    paper = PAPER[name]
    fit = consistent(literal, paper)
    if fit is None:
        return "not judged: one seed", []
    if fit:
        return "reproduced", []
    fitting = [s for s in readings_of(name, readings) if consistent(s, paper)]
    if fitting:
        return "reproduced under another reading", fitting
    if literal.experiment.early_stopping and where(paper.test_acc, literal) == "consistent":
        return "accuracy reproduced, epochs not", []
    return "not reproduced", []


def verdicts(results: Iterable[Result], readings: Iterable[Result] = ()) -> pd.DataFrame:
    """One row per row of the study's table, in its order: the verdicts and the numbers."""
    ours, others = group(results), group(readings)
    rows = []
    for name, paper in sorted(PAPER.items(), key=lambda item: -item[1].test_acc):
        if name not in ours:
            continue
        s = ours[name]
        word, fitting = verdict(name, s, others)
        rows.append({
            "name": name, "verdict": word, "readings": [r.name for r in fitting],
            "how": [changes(r.experiment, STUDY[name]) for r in fitting],
            "accuracy": where(paper.test_acc, s),
            "epochs": where(paper.epochs, s, epochs) if s.experiment.early_stopping else "",
            "study test": paper.test_acc, "study epochs": paper.epochs,
            "literal": s, "tuned": tuned(name),
        })
    return pd.DataFrame(rows)


def interval_text(low: float, high: float, scale: float = 100, digits: int = 1) -> str:
    """An interval in percent, "84.1 to 85.3" (``scale`` 1, ``digits`` 0 for epochs)."""
    if math.isnan(low):
        return "-"
    return f"{scale * low:.{digits}f} to {scale * high:.{digits}f}"



def names_text(names: Iterable[str]) -> str:
    """"`a`", "`a` and `b`", "`a`, `b` and `c`"."""
    names = [f"`{n}`" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def count_text(n: int, word: str) -> str:
    """"1 model", "2 models"."""
    return f"{n} {word}" + ("" if n == 1 else "s")

