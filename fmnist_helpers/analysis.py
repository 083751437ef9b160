"""The study's conclusions judged from our seeds, and the tables of the results notebook.

Every claim is judged over all seeds of both models against its proper control (the penalised
models against the unpenalised network at their own learning rate; smoothness as jitter around
the trend), effect size first (:func:`fmnist_helpers.seeds.effect`), then the test. The claims
form one family, corrected with Holm's step-down method: a claim is *supported* only when its
Holm-adjusted p is below 0.05. "The same" and "no higher" need an equivalence test against a
margin of :data:`~fmnist_helpers.seeds.MARGIN` (two one-sided Welch t-tests); a test that finds
nothing supports nothing.
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
    MARGIN,
    PREDICTION_METHOD,
    Comparison,
    Measure,
    Seeds,
    compare,
    epochs,
    group,
    holm,
    interval,
    jitter,
    mean_sd,
    p_value,
    prediction_interval,
    signed,
    smallest_p,
    test_acc,
    train_acc_running,
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
BEST_CLAIM = Claim("The wide network is the best model", "wide", "", "test accuracy", "best")
MEASURES: dict[str, tuple[Measure, float, float]] = {  # measure, resolution, scale to points
    "test accuracy": (test_acc, 0.001, 100),
    "jitter": (jitter, 0.0001, 100),
}


def test_of(claim: Claim) -> str:
    """The test that decides a claim."""
    if claim.expect == "same":
        return f"equivalence, ±{100 * MARGIN:g} point (TOST)"
    if claim.expect == "no higher":
        return f"at most {100 * MARGIN:g} point higher (Welch)"
    return "Mann-Whitney U"


def claim_p(claim: Claim, c: Comparison) -> float:
    """The p-value of the test that decides ``claim`` (nan: the test cannot be run)."""
    if claim.expect == "same":
        return c.p_equivalent
    if claim.expect == "no higher":
        return c.p_not_above
    return c.p_two_sided


def judge(claim: Claim, c: Comparison, p_adjusted: float | None = None) -> str:
    """The verdict on a claim from the comparison of its two models.

    ``p_adjusted``: the claim's p after Holm's correction over the family (None: the claim is
    tested alone). The verdict's first words are one of "supported", "contradicted", "not
    supported"; what follows says why.
    """
    p = claim_p(claim, c)
    adjusted = p if p_adjusted is None else p_adjusted
    passed = not math.isnan(adjusted) and adjusted < ALPHA
    raw_only = (not passed and not math.isnan(p) and p < ALPHA)
    why = (f"significant alone ({p_value(p)}), not after Holm's correction"
           if raw_only else "")
    if claim.expect == "same":
        if passed:
            return f"supported: within ±{100 * MARGIN:g} point"
        return "not supported: " + (why or f"not shown to be within ±{100 * MARGIN:g} point")
    if claim.expect == "no higher":
        if passed:
            return f"supported: at most {100 * MARGIN:g} point higher"
        return "not supported: " + (why or f"not shown to be at most {100 * MARGIN:g} point "
                                            "higher")
    if passed:
        found = c.difference < 0 if claim.expect == "lower" else c.difference > 0
        if claim.expect == "best":
            return "supported" if found else f"contradicted: `{c.b}` is better"
        return "supported" if found else "contradicted"
    if why:
        return "not supported: " + why
    return "not supported: " + ("a tie" if c.tie else "not shown to differ")


def direction(claim: Claim, c: Comparison) -> str:
    """Which way the estimate points, whatever the test says: "the claim's way", "against the
    claim" or "a tie" (a difference below the measure's resolution). For "same" and "no
    higher", the claim's way is a difference inside the margin (below it, for "no higher")."""
    if claim.expect == "same":
        return "the claim's way" if abs(c.difference) < MARGIN else "against the claim"
    if claim.expect == "no higher":
        return "the claim's way" if c.difference < MARGIN else "against the claim"
    if c.tie:
        return "a tie"
    found = c.difference < 0 if claim.expect == "lower" else c.difference > 0
    return "the claim's way" if found else "against the claim"


def verdict_kind(verdict: str) -> str:
    """"supported", "contradicted", "not supported", ... : the verdict without its reasons."""
    return verdict.split(":")[0]


@dataclass(frozen=True)
class Judged:
    """A claim judged: its comparison, the deciding test's p, raw and Holm-adjusted."""

    claim: Claim
    against: str
    comparison: Comparison | None
    p: float
    p_holm: float
    verdict: str


def _comparisons(groups: dict[str, Seeds]) -> list[tuple[Claim, str, Comparison | None]]:
    out = []
    for claim in CLAIMS:
        if claim.a not in groups or claim.b not in groups:
            continue
        a, b = groups[claim.a], groups[claim.b]
        fn, resolution, _ = MEASURES[claim.measure]
        if any(map(math.isnan, [*a.values(fn), *b.values(fn)])):
            out.append((claim, claim.b, None))
            continue
        margin = MARGIN if claim.expect in ("same", "no higher") else None
        out.append((claim, claim.b, compare(a, b, fn, resolution, margin)))
    if "wide" in groups and sum(n in PAPER for n in groups) > 2:
        ranked = sorted((s for n, s in groups.items() if n in PAPER),
                        key=lambda s: -s.summary(test_acc).mean)
        wide = groups["wide"]
        other = ranked[1] if ranked[0] is wide else ranked[0]
        out.append((BEST_CLAIM, other.name, compare(wide, other, test_acc)))
    return out


def judge_claims(results: Iterable[Result]) -> list[Judged]:
    """Every claim of the study we can test on ``results``, judged as one family (Holm)."""
    rows = _comparisons(group(results))
    tested = [(claim, against, c) for claim, against, c in rows if c is not None]
    adjusted = iter(holm([claim_p(claim, c) for claim, _, c in tested]))
    out = []
    for claim, against, c in rows:
        if c is None:
            out.append(Judged(claim, against, None, math.nan, math.nan,
                              "not measurable: jitter needs 3 epochs or more"))
            continue
        p_adj = next(adjusted)
        out.append(Judged(claim, against, c, claim_p(claim, c), p_adj, judge(claim, c, p_adj)))
    return out


def family_note(results: Iterable[Result]) -> str:
    """The family of claims, its correction, and whether any claim could pass it at all."""
    judged = [j for j in judge_claims(results) if j.comparison is not None]
    if not judged:
        return ""
    m = len(judged)
    ranked = [j for j in judged if test_of(j.claim) == "Mann-Whitney U"]
    others = m - len(ranked)
    text = (f"The {m} claims tested here form one family: each p is corrected for the others "
            f"with Holm's step-down method (the smallest p is multiplied by {m}, the next by "
            f"{m - 1}, and so on), and a claim is supported only when its corrected p is below "
            f"{ALPHA}.")
    if ranked:
        floors = {smallest_p(j.comparison.n_a, j.comparison.n_b) for j in ranked}
        need = ALPHA / (m - others)
        sizes = sorted({(j.comparison.n_a, j.comparison.n_b) for j in ranked})
        seeds_ = " or ".join(f"{a} seeds against {b}" for a, b in sizes)
        floor = f"{min(floors):.3f}" if min(floors) >= 0.001 else "below 0.001"
        text += f" With {seeds_}, the smallest two-sided Mann-Whitney p is {floor}"
        if min(floors) >= need:
            before = (f"even if the {others} equivalence claim{'s' if others > 1 else ''} "
                      "passed first, " if others else "")
            text += (f"; {before}Holm's correction asks a claim tested by ranks for p below "
                     f"{ALPHA}/{m - others} = {need:.4f}. **So none of the {len(ranked)} "
                     "claims tested by ranks can reach significance with these seeds, "
                     "whatever the models do.**")
        else:
            text += "."
    if not any(verdict_kind(j.verdict) in ("supported", "contradicted") for j in judged):
        text += (" Under this correction no claim of the study is supported or contradicted "
                 "by our seeds: the differences and their intervals are what they show.")
    return text


def _epochs_claim(s: Seeds) -> dict:
    paper = PAPER[s.name].epochs
    low, high = prediction_interval(s.values(epochs, kept=True))
    if math.isnan(low):
        verdict = "not measurable: one seed"
    elif low <= paper <= high:
        verdict = f"consistent: {paper} in our prediction interval {low:.0f}-{high:.0f}"
    else:
        verdict = f"not consistent: our prediction interval {low:.0f}-{high:.0f}"
    return {"claim": f"Early stopping ends `{s.name}` at about {paper} epochs",
            "against": "the study",
            "difference [95% CI]": f"ours {epochs_text(s)} vs {paper} epochs",
            "P(a beats b)": "-", "test": "95% prediction interval", "p": "-", "Holm p": "-",
            "verdict": verdict}


def check_claims(results: Iterable[Result]) -> Table:
    """The study's conclusions, each judged from our seeds against its control, as a family."""
    results = list(results)
    rows = []
    for j in judge_claims(results):
        c = j.comparison
        if c is None:
            rows.append({"claim": j.claim.text, "against": j.against,
                         "difference [95% CI]": "-", "P(a beats b)": "-",
                         "test": "-", "p": "-", "Holm p": "-", "verdict": j.verdict})
            continue
        digits = 1 if j.claim.measure == "test accuracy" else 2
        ci = f" [{interval(c, digits=digits)}]" if c.has_interval else ""
        rows.append({
            "claim": j.claim.text, "against": j.against,
            "difference [95% CI]": f"{signed(c.difference, digits=digits)}{ci}",
            "P(a beats b)": f"{c.superiority:.2f}", "test": test_of(j.claim),
            "p": p_value(j.p).removeprefix("p = "),
            "Holm p": p_value(j.p_holm).removeprefix("p = "), "verdict": j.verdict,
        })
    groups = group(results)
    for name in ("early_stopping", "mixed"):
        if name in groups:
            rows.append(_epochs_claim(groups[name]))
    return Table(pd.DataFrame(rows),
                 "Difference: mean of the first model minus mean of the one it is set against, "
                 "in points (accuracy in %, jitter in points), over the seeds that did not "
                 "collapse, with its 95% percentile-bootstrap interval; P(a beats b): the "
                 "chance that a seed of the first beats a seed of the second (ties count half; "
                 "U / (n_a n_b)). Tests: two-sided Mann-Whitney U over all seeds; the "
                 f"equivalence claims: two one-sided Welch t-tests against ±{100 * MARGIN:g} "
                 "point. Holm p: corrected for the family of claims; supported below "
                 f"{ALPHA}. Epochs: the study's number against the " + PREDICTION_METHOD
                 + ". " + JITTER_DEFINITION.replace("*", ""))


def readings_table(results: Iterable[Result], readings: Iterable[Result]) -> Table:
    """Each reading beside the study's row it varies, and whether that row is consistent with
    it (see :func:`fmnist_helpers.findings.consistent`)."""
    from .findings import consistent

    ours, others = group(results), group(readings)
    rows = []
    for name, s in others.items():
        base = base_of(name)
        if base not in PAPER or base not in ours:
            continue
        paper = PAPER[base]
        fit = consistent(s, paper)
        rows.append({
            "reading": name, "changes": changes(s.experiment, STUDY[base]),
            "train % (running)": mean_sd(s.summary(train_acc_running)),
            "study train %": paper_pct(paper.train_acc),
            "test %": mean_sd(s.summary(test_acc)), "study test %": paper_pct(paper.test_acc),
            "epochs: ours / study's": f"{epochs_text(s)} / {paper.epochs}",
            "consistent with the study": {True: "yes", False: "no", None: "one seed"}[fit],
        })
    return Table(pd.DataFrame(rows),
                 "Consistent: the study's test accuracy (and, with early stopping, its epochs) "
                 "lies in the " + PREDICTION_METHOD + ". Every reading consistent with a row is "
                 "a possible explanation of it; none is singled out. Train % (running): the "
                 "study's measure, per-batch accuracy averaged over the last epoch.")


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


__all__ = ["CLAIMS", "READINGS", "check_claims", "family_note", "judge_claims",
           "readings_table", "early_stopping_table", "choices_table", "study_metric_table",
           "paper_denominators", "judge"]
