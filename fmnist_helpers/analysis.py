"""Several seeds per experiment, set against the study's single numbers.

The study reports one run per model. Here every experiment has several seeds, so each of its
numbers can be judged against our spread: inside our 95% interval, or how far outside.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import pandas as pd

from .runs import Result
from .study import PAPER

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


def describe_ranking(results: Iterable[Result]) -> str:
    """A sentence on how well our ranking of the models agrees with the study's."""
    tau, theirs, ours = ranking_agreement(results)
    moved = [n for n in ours if theirs.index(n) != ours.index(n)]
    return (
        f"Kendall's tau between the study's ranking and ours (by mean exact test accuracy over "
        f"{len(ours)} models) is **{tau:.2f}** (1 is the same order, 0 no relation). "
        f"The study's best is `{theirs[0]}` and ours `{ours[0]}`; its worst `{theirs[-1]}` and "
        f"ours `{ours[-1]}`. {len(moved)} of {len(ours)} models hold a different place."
    )


def base_of(reading: str) -> str:
    """The study's experiment a reading varies (``dropout_w50`` -> ``dropout``)."""
    from .study import STUDY

    for name in sorted(STUDY, key=len, reverse=True):
        if reading.startswith(name + "_"):
            return name
    raise KeyError(f"{reading!r} does not start with the name of a study experiment")


def _distance(runs: list[Result], paper) -> float:
    """How far our mean lies from the study's row: train (running) + test accuracy + epochs/100."""
    n = len(runs)
    train = sum(r.final["train_acc_running"] for r in runs) / n
    test = sum(r.final["test_acc"] for r in runs) / n
    epochs = sum(r.epochs_trained for r in runs) / n
    gaps = abs(train - paper.train_acc) + abs(test - paper.test_acc)
    return gaps + abs(epochs - paper.epochs) / 100


def readings_table(literal: Iterable[Result], readings: Iterable[Result]) -> pd.DataFrame:
    """Each reading against the literal configuration, both against the study's row.

    ``distance`` adds the gaps in running train accuracy, test accuracy and epochs/100 to the
    study's numbers; the reading with the smaller distance reproduces the study better.
    """
    base_groups = group_by_experiment(literal)
    rows = []
    for name, runs in group_by_experiment(readings).items():
        base = base_of(name)
        paper = PAPER.get(base)
        if base not in base_groups or paper is None:
            continue
        lit = base_groups[base]
        mean = mean_interval([r.final["test_acc"] for r in runs])
        d_reading, d_literal = _distance(runs, paper), _distance(lit, paper)
        rows.append({
            "reading": name, "of": base, "seeds": len(runs),
            "train acc (running)": sum(r.final["train_acc_running"] for r in runs) / len(runs),
            "test acc": mean[0], "epochs": sum(r.epochs_trained for r in runs) / len(runs),
            "paper train": paper.train_acc, "paper test": paper.test_acc,
            "paper epochs": paper.epochs,
            "literal test acc": sum(r.final["test_acc"] for r in lit) / len(lit),
            "literal epochs": sum(r.epochs_trained for r in lit) / len(lit),
            "distance (reading)": d_reading, "distance (literal)": d_literal,
            "closer to the study": "reading" if d_reading < d_literal else "literal",
        })
    return pd.DataFrame(rows)


def early_stopping_table(results: Iterable[Result]) -> pd.DataFrame:
    """The study's early stopping (on the test set) beside the sound one (on validation)."""
    groups = group_by_experiment(results)
    rows = []
    for name in ("early_stopping", "early_stopping_val", "shallow"):
        if name not in groups:
            continue
        runs = groups[name]
        mean, sd, lo, hi = mean_interval([r.final["test_acc"] for r in runs])
        rule = runs[0].experiment.early_stopping
        rows.append({
            "experiment": name,
            "watches": {"test": "test loss", "validation": "validation loss"}.get(rule, "-"),
            "seeds": len(runs), "test acc": mean, "test acc sd": sd,
            "epochs (mean)": sum(r.epochs_trained for r in runs) / len(runs),
            "epochs (min-max)": f"{min(r.epochs_trained for r in runs)}-"
                                f"{max(r.epochs_trained for r in runs)}",
            "best epoch (mean)": _mean_best(runs),
        })
    return pd.DataFrame(rows)


def _mean_best(runs: list[Result]) -> float:
    best = [r.history.best_epoch for r in runs if r.history.best_epoch is not None]
    return sum(best) / len(best) if best else math.nan


def choices_table() -> pd.DataFrame:
    """What each experiment sets where the study is silent, from the configurations' notes."""
    from .study import STUDY

    return pd.DataFrame(
        [{"experiment": e.name, "lr": e.lr, "hidden": e.hidden, "choice and reason": e.notes}
         for e in STUDY.values()]
    ).set_index("experiment")


def describe_readings(table: pd.DataFrame) -> str:
    """Sentences, from :func:`readings_table`, on which readings reproduce the study better."""
    if table.empty:
        return "No reading has results yet."
    lines = []
    wide = table[table.reading.str.endswith("_w50")]
    if len(wide):
        closer = wide[wide["closer to the study"] == "reading"]
        names = ", ".join(f"`{n}`" for n in closer["of"]) or "none"
        lines.append(
            f"Built with 50 hidden units instead of 10, {len(closer)} of {len(wide)} variants that "
            f"the study describes as 'the same as the shallow one' land closer to its row "
            f"({names})."
        )
    penalties = table[table.reading.str.contains("_lr|_strength")]
    if len(penalties):
        closer = penalties[penalties["closer to the study"] == "reading"]
        names = ", ".join(f"`{n}`" for n in closer["reading"]) or "none of them"
        lines.append(
            f"Of {len(penalties)} neighbours of our choice for the penalised models (another "
            f"learning rate or strength), {len(closer)} land closer to the study's row than our "
            f"choice does: {names}."
        )
    loose = table[table.reading.str.contains("_delta")]
    for base in dict.fromkeys(loose["of"]):
        rows = loose[loose["of"] == base]
        best = rows.loc[(rows["epochs"] - rows["paper epochs"]).abs().idxmin()]
        lines.append(
            f"For `{base}` the study ran {best['paper epochs']:.0f} epochs; the literal rule "
            f"stops after {best['literal epochs']:.1f} on average, and the reading closest in "
            f"epochs is `{best['reading']}` with {best['epochs']:.1f} (test accuracy "
            f"{best['test acc']:.4f} against the study's {best['paper test']:.4f})."
        )
    return "\n\n".join(lines)


def paper_denominators() -> pd.DataFrame:
    """Test the reading of the study's metrics on its own numbers.

    If a test accuracy is correct / 10,000, times 10,000 it is a whole number. If it is the mean
    of per-batch accuracies over 312 batches of 32 and one of 16, it equals (a + 2b) / 10,016
    (a, b the hits in the full batches and in the last one), so times 10,016 it is whole.
    The train accuracy over 1,875 full batches is hits / 60,000 either way.
    """
    rows = []
    for name, p in PAPER.items():
        rows.append({
            "experiment": name, "paper test acc": p.test_acc,
            "x 10,000": p.test_acc * 10_000, "x 10,016": p.test_acc * 10_016,
            "paper train acc": p.train_acc, "train x 60,000": p.train_acc * 60_000,
        })
    table = pd.DataFrame(rows).set_index("experiment")
    for col in ("x 10,000", "x 10,016", "train x 60,000"):
        table[f"{col}: off a whole number by"] = (table[col] - table[col].round()).abs()
    return table
