"""The study's conclusions judged from our seeds, and the tables of the results notebook.

Every claim is tested over all seeds of both models (two-sided Mann-Whitney U, see
:mod:`fmnist_helpers.seeds`) against its proper control: the penalised models against the
unpenalised network at their own learning rate, smoothness as jitter around the trend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from .results import Result
from .seeds import (
    ALPHA,
    JITTER_DEFINITION,
    Comparison,
    Measure,
    Seeds,
    compare,
    epochs,
    group,
    jitter,
    mean_sd,
    p_value,
    test_acc,
)
from .study import PAPER, READINGS, STUDY, base_of, changes
from .tables import Table, epochs_text, paper_pct


@dataclass(frozen=True)
class Claim:
    """One conclusion of the study: ``a`` is ``expect`` than ``b`` on ``measure``."""

    text: str
    a: str
    b: str
    measure: str  # "test accuracy" or "jitter"
    expect: str  # "higher", "lower", "no higher", "same"


CLAIMS = (
    Claim("The deeper network has lower test accuracy", "deeper", "shallow",
          "test accuracy", "lower"),
    Claim("More hidden units give higher test accuracy", "wide", "shallow",
          "test accuracy", "higher"),
    Claim("Dropout makes the test accuracy curve smoother", "dropout", "shallow", "jitter",
          "lower"),
    Claim("Batch norm makes the test accuracy curve smoother", "batch_norm", "shallow",
          "jitter", "lower"),
    Claim("Batch norm performs like dropout", "batch_norm", "dropout", "test accuracy", "same"),
    Claim("L1 regularization lowers test accuracy", "l1", "shallow_lr_control",
          "test accuracy", "lower"),
    Claim("L2 regularization raises test accuracy", "l2", "shallow_lr_control",
          "test accuracy", "higher"),
    Claim("L1 + L2 is no better than L1 alone", "l1_l2", "l1", "test accuracy", "no higher"),
)
MEASURES: dict[str, tuple[Measure, float, float]] = {  # measure, resolution, scale to points
    "test accuracy": (test_acc, 0.001, 100),
    "jitter": (jitter, 0.0001, 100),
}


def judge(claim: Claim, c: Comparison) -> str:
    """The verdict on a claim from the comparison of its two models."""
    lower, higher = c.p_less < ALPHA / 2, c.p_greater < ALPHA / 2  # the two-sided test's tails
    if claim.expect == "same":
        return "contradicted: they differ" if lower or higher else \
            "not contradicted: no difference found"
    if claim.expect == "no higher":
        return "contradicted: it is higher" if higher else "supported: not higher"
    found, against = (lower, higher) if claim.expect == "lower" else (higher, lower)
    if found:
        return "supported"
    if against:
        return "contradicted"
    if c.tie:
        return "undecided: a tie"
    leans = (c.difference < 0) == (claim.expect == "lower")
    return "undecided: leans the study's way" if leans else "undecided: leans the other way"


def _number(s: Seeds, measure: str) -> str:
    fn, _, scale = MEASURES[measure]
    return f"{scale * s.summary(fn).median:.{1 if measure == 'test accuracy' else 2}f}"


def check_claims(results: Iterable[Result]) -> Table:
    """The study's conclusions, each judged from our seeds against its control."""
    groups = group(results)
    rows = []
    for claim in CLAIMS:
        if claim.a not in groups or claim.b not in groups:
            continue
        a, b = groups[claim.a], groups[claim.b]
        fn, resolution, scale = MEASURES[claim.measure]
        if any(map(math.isnan, [*a.values(fn), *b.values(fn)])):
            rows.append({"claim": claim.text, "against": claim.b, "measure": claim.measure,
                         "medians": "-", "difference": "-", "test": "-",
                         "verdict": "not measurable: jitter needs 3 epochs or more"})
            continue
        c = compare(a, b, fn, resolution)
        digits = 1 if claim.measure == "test accuracy" else 2
        rows.append({
            "claim": claim.text, "against": claim.b, "measure": claim.measure,
            "medians": f"{_number(a, claim.measure)} vs {_number(b, claim.measure)}",
            "difference": "0" if c.tie else f"{scale * c.difference:+.{digits}f}",
            "test": p_value(c.p_two_sided), "verdict": judge(claim, c),
        })
    for name in ("early_stopping", "mixed"):
        if name in groups:
            rows.append(_epochs_claim(groups[name]))
    if "wide" in groups and len(groups) > 2:
        rows.append(_best_claim(groups))
    return Table(pd.DataFrame(rows),
                 "Medians over the seeds in points (accuracy in %, jitter in points); "
                 "difference: Hodges-Lehmann (median of pairwise differences); test: two-sided "
                 f"Mann-Whitney U over all seeds, significant below {ALPHA}. "
                 + JITTER_DEFINITION.replace("*", ""))


def _epochs_claim(s: Seeds) -> dict:
    paper = PAPER[s.name].epochs
    e = s.summary(epochs)
    inside = e.low <= paper <= e.high
    return {"claim": f"Early stopping ends `{s.name}` at about {paper} epochs",
            "against": "the study", "measure": "epochs", "medians": f"{e.median:g} vs {paper}",
            "difference": f"{e.median - paper:+g}", "test": "study's number in our range",
            "verdict": "supported" if inside else
            f"not supported: ours {e.low:.0f}-{e.high:.0f}"}


def _best_claim(groups: dict[str, Seeds]) -> dict:
    ranked = sorted((s for n, s in groups.items() if n in PAPER),
                    key=lambda s: -s.summary(test_acc).median)
    best, runner = ranked[0], ranked[1]
    wide = groups["wide"]
    other = runner if best is wide else best
    c = compare(wide, other, test_acc)
    if best is wide:
        verdict = "supported" if c.p_greater < ALPHA / 2 else \
            f"undecided: best, but not clearly ahead of {other.name}"
    else:
        verdict = f"contradicted: {other.name} is better" if c.p_less < ALPHA / 2 else \
            f"undecided: {other.name} leads, not clearly"
    return {"claim": "The wide network is the best model", "against": other.name,
            "measure": "test accuracy",
            "medians": f"{_number(wide, 'test accuracy')} vs {_number(other, 'test accuracy')}",
            "difference": "0" if c.tie else f"{100 * c.difference:+.1f}",
            "test": p_value(c.p_two_sided), "verdict": verdict}


def readings_table(results: Iterable[Result], readings: Iterable[Result]) -> Table:
    """Each reading beside the study's row it varies, and whether it lands closer than ours."""
    from .findings import distance

    ours, others = group(results), group(readings)
    rows = []
    for name, s in others.items():
        base = base_of(name)
        if base not in PAPER or base not in ours:
            continue
        paper = PAPER[base]
        closer = distance(s, paper) < distance(ours[base], paper)
        rows.append({
            "reading": name, "changes": changes(s.experiment, STUDY[base]),
            "test %": mean_sd(s.summary(test_acc)), "epochs": epochs_text(s),
            "study test %": paper_pct(paper.test_acc), "study epochs": str(paper.epochs),
            "closer than ours": "yes" if closer else "no",
        })
    return Table(pd.DataFrame(rows),
                 "Closer: smaller sum of the gaps to the study's row in running train accuracy, "
                 "test accuracy and epochs / 100 (medians over the seeds).")


def early_stopping_table(results: Iterable[Result]) -> Table:
    """The study's early stopping (on the test set) beside the sound one (on validation)."""
    groups = group(results)
    rows = []
    for name in ("early_stopping", "early_stopping_val", "shallow"):
        if name not in groups:
            continue
        s = groups[name]
        rule = s.experiment.early_stopping
        best = [r.history.best_epoch for r in s if r.history.best_epoch is not None]
        rows.append({
            "experiment": name,
            "watches": {"test": "test loss", "validation": "validation loss"}.get(rule, "-"),
            "test %": mean_sd(s.summary(test_acc)), "epochs": epochs_text(s),
            "best epoch": (f"{pd.Series(best).median():g}" if best else "-"),
        })
    return Table(pd.DataFrame(rows), "Test accuracy: mean ± sd over the seeds; epochs and the "
                                     "best epoch: median (range) over the seeds.")


def choices_table() -> Table:
    """What each experiment sets where the study is silent, from the configurations' notes."""
    return Table(pd.DataFrame(
        [{"experiment": e.name, "lr": f"{e.lr:g}", "hidden": str(e.hidden),
          "choice and reason": e.notes} for e in STUDY.values()]))


def study_metric_table(results: Iterable[Result]) -> Table:
    """Our test accuracy measured exactly and the study's way, beside the study's number."""
    groups = group(results)
    rows = []
    for name, s in groups.items():
        if name in PAPER:
            rows.append({
                "model": name, "ours, exact %": mean_sd(s.summary(test_acc)),
                "ours, the study's way %": mean_sd(
                    s.summary(lambda r: r.final["test_acc_study"])),
                "study %": paper_pct(PAPER[name].test_acc)})
    return Table(pd.DataFrame(rows), "Exact: correct / 10,000. The study's way: the mean of "
                                     "per-batch accuracies over 313 test batches of 32.")


def paper_denominators() -> Table:
    """Test the reading of the study's metrics on its own numbers.

    If a test accuracy is correct / 10,000, times 10,000 it is a whole number. If it is the mean
    of per-batch accuracies over 312 batches of 32 and one of 16, it equals (a + 2b) / 10,016
    (a, b the hits in the full batches and in the last one), so times 10,016 it is whole.
    The train accuracy over 1,875 full batches is hits / 60,000 either way.
    """
    rows = []
    for name, p in PAPER.items():
        x, y, t = p.test_acc * 10_000, p.test_acc * 10_016, p.train_acc * 60_000
        rows.append({
            "experiment": name, "study test acc": f"{p.test_acc:.6f}",
            "× 10,000": f"{x:.2f}", "off a whole number": f"{abs(x - round(x)):.2f}",
            "× 10,016": f"{y:.2f}", "off a whole number ": f"{abs(y - round(y)):.3f}",
            "train × 60,000, off": f"{abs(t - round(t)):.3f}",
        })
    return Table(pd.DataFrame(rows))


__all__ = ["CLAIMS", "READINGS", "check_claims", "readings_table", "early_stopping_table",
           "choices_table", "study_metric_table", "paper_denominators", "judge"]
