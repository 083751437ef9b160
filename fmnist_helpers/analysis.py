"""Several seeds per experiment, set against the study's single numbers.

The study reports one run per model. Here every experiment has several seeds, so each of its
numbers can be judged against our spread: inside our 95% interval, or how far outside.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import pandas as pd

from .experiments import PAPER, Result

# Two-sided 95% quantiles of Student's t, by degrees of freedom (n_seeds - 1).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (table, rounded down)."""
    if df < 1:
        raise ValueError(f"need at least 2 seeds for an interval, got df={df}")
    return T_975[max(k for k in T_975 if k <= df)] if df <= 30 else 1.960


def group_by_experiment(results: Iterable[Result]) -> dict[str, list[Result]]:
    """Results keyed by experiment name, seeds in increasing order."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[r.experiment.name].append(r)
    return {k: sorted(v, key=lambda r: r.seed) for k, v in groups.items()}


def mean_interval(values: list[float]) -> tuple[float, float, float, float]:
    """Mean, sample standard deviation and 95% t-interval; NaN spread for a single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


def seed_summary(results: Iterable[Result], metric: str = "test_acc") -> pd.DataFrame:
    """One row per experiment: seeds, mean, sd and 95% interval of a last-epoch metric.

    Sorted by the mean, best first. ``metric`` is any History column; ``test_acc`` is the
    exact accuracy (correct / total), ``test_acc_study`` the study's per-batch average.
    """
    rows = []
    for name, runs in group_by_experiment(results).items():
        values = [r.final[metric] for r in runs]
        mean, sd, lo, hi = mean_interval(values)
        rows.append({
            "experiment": name, "model": runs[0].experiment.title, "seeds": len(runs),
            "mean": mean, "sd": sd, "ci_low": lo, "ci_high": hi,
            "min": min(values), "max": max(values),
            "epochs": sum(r.epochs_trained for r in runs) / len(runs),
        })
    return pd.DataFrame(rows).sort_values("mean", ascending=False).reset_index(drop=True)


def verdict(paper: float, lo: float, hi: float) -> str:
    """Say whether the paper's number lies in our interval, and by how much it misses."""
    if math.isnan(lo):
        return "one seed: no interval"
    if lo <= paper <= hi:
        return "inside our 95% interval"
    if paper > hi:
        return f"above our interval by {paper - hi:.3f}"
    return f"below our interval by {lo - paper:.3f}"


def against_paper(results: Iterable[Result], metric: str = "test_acc") -> pd.DataFrame:
    """The seed summary with the study's number, the difference and a verdict per row."""
    paper_key = "train_acc" if metric.startswith("train") else "test_acc"
    table = seed_summary(results, metric)
    paper = [getattr(PAPER[n], paper_key) if n in PAPER else math.nan for n in table.experiment]
    table["paper"] = paper
    table["ours - paper"] = table["mean"] - table["paper"]
    table["verdict"] = [
        "not in the study's table" if math.isnan(p) else verdict(p, lo, hi)
        for p, lo, hi in zip(table["paper"], table["ci_low"], table["ci_high"], strict=True)
    ]
    return table


def kendall_tau(a: list[str], b: list[str]) -> float:
    """Kendall's rank correlation between two orderings of the same items (no ties)."""
    if sorted(a) != sorted(b):
        raise ValueError("the two rankings must hold the same items")
    pos = {item: i for i, item in enumerate(b)}
    n = len(a)
    if n < 2:
        raise ValueError("need at least two items to compare rankings")
    concordant = discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            if pos[a[i]] < pos[a[j]]:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / (n * (n - 1) / 2)


def paper_ranking() -> list[str]:
    """The study's models, best test accuracy first (its own table order)."""
    return sorted(PAPER, key=lambda n: -PAPER[n].test_acc)


def ranking_agreement(results: Iterable[Result]) -> tuple[float, list[str], list[str]]:
    """Kendall's tau between the study's ranking and ours (by mean exact test accuracy)."""
    table = seed_summary(results)
    ours = [n for n in table.experiment if n in PAPER]
    theirs = [n for n in paper_ranking() if n in ours]
    return kendall_tau(theirs, ours), theirs, ours


def roughness(result: Result, metric: str = "test_acc") -> float:
    """Mean absolute change of a metric from one epoch to the next: how much a curve jitters."""
    values = result.history[metric]
    if len(values) < 2:
        return math.nan
    return sum(abs(b - a) for a, b in zip(values, values[1:], strict=False)) / (len(values) - 1)


def _values(groups: dict[str, list[Result]], name: str, measure) -> list[float]:
    return [measure(r) for r in groups[name]]


def _compare(groups, a: str, b: str, measure, claim: str, expect: str) -> dict:
    """Judge "a is {expect} than b" from the seeds' values of ``measure``."""
    ma, _, la, ha = mean_interval(_values(groups, a, measure))
    mb, _, lb, hb = mean_interval(_values(groups, b, measure))
    holds = ma < mb if expect == "lower" else ma > mb
    apart = hb < la or ha < lb  # the two 95% intervals do not overlap
    if math.isnan(la) or math.isnan(lb):
        judged = "holds on one seed" if holds else "fails on one seed"
    elif holds and apart:
        judged = "supported"
    elif holds:
        judged = "same direction, intervals overlap"
    elif apart:
        judged = "contradicted"
    else:
        judged = "not supported, intervals overlap"
    return {"claim": claim, "evidence": f"{a}: {ma:.4f}, {b}: {mb:.4f}", "verdict": judged}


def _near(groups, name: str, measure, target: float, claim: str, unit: str) -> dict:
    values = _values(groups, name, measure)
    m, _, lo, hi = mean_interval(values)
    if math.isnan(lo):
        judged = "one seed: no interval"
    else:
        judged = "supported" if lo <= target <= hi else "not supported"
    spread = "" if math.isnan(lo) else f" (95% interval {lo:.1f}-{hi:.1f})"
    return {"claim": claim, "evidence": f"{name}: {m:.1f} {unit}{spread}, study: {target:g}",
            "verdict": judged}


def check_claims(results: Iterable[Result]) -> pd.DataFrame:
    """The study's conclusions, each judged from our runs (only those whose runs are present)."""
    results = list(results)
    groups = group_by_experiment(results)

    def acc(r):
        return r.final["test_acc"]

    def jitter(r):
        return roughness(r)

    def epochs(r):
        return float(r.epochs_trained)

    rows = []
    pairs = [
        ("deeper", "shallow", acc, "The deeper network has lower test accuracy", "lower"),
        ("wide", "shallow", acc, "More hidden units give higher test accuracy", "higher"),
        ("dropout", "shallow", jitter, "Dropout makes the test accuracy curve smoother", "lower"),
        ("batch_norm", "shallow", jitter, "Batch norm makes the test accuracy curve smoother",
         "lower"),
        ("l1", "shallow", acc, "L1 regularization lowers test accuracy", "lower"),
        ("l2", "shallow", acc, "L2 regularization raises test accuracy", "higher"),
        ("l1_l2", "l1", acc, "L1 + L2 is no better than L1 alone", "lower"),
    ]
    for a, b, measure, claim, expect in pairs:
        if a in groups and b in groups:
            rows.append(_compare(groups, a, b, measure, claim, expect))
    if "early_stopping" in groups:
        rows.append(_near(groups, "early_stopping", epochs, PAPER["early_stopping"].epochs,
                          "Early stopping ends the shallow network at about 16 epochs", "epochs"))
    if "mixed" in groups:
        rows.append(_near(groups, "mixed", epochs, PAPER["mixed"].epochs,
                          "The mixed model trains for about 38 epochs", "epochs"))
    if "wide" in groups and len(groups) > 2:
        best = seed_summary(results).experiment.iloc[0]
        rows.append({"claim": "The wide network is the best model", "evidence": f"ours: {best}",
                     "verdict": "supported" if best == "wide" else "not supported"})
    return pd.DataFrame(rows)
