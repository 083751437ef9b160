"""Sentences for the notebooks' discussions, written by code from the runs' own histories.

Every function returns Markdown; a notebook shows it with ``IPython.display.Markdown``. No number
in these sentences is typed by hand: a rerun, a quick-mode run or another seed rewrites them.
The study's numbers are always named as the study's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .data import CLASSES
from .diagnostics import life_of, life_phrase
from .results import Result
from .seeds import (
    ALPHA,
    Seeds,
    Summary,
    compare,
    epochs,
    interval,
    jitter,
    p_value,
    pct,
    prediction_interval,
    separated,
    signed,
    smallest_p,
    test_acc,
    train_acc_running,
)
from .study import PAPER, Experiment

# Short names that read well inside a sentence; other experiments use their title.
LABELS = {
    "shallow": "the shallow network", "deeper": "the deeper network",
    "wide": "the wide network", "dropout": "the dropout network",
    "early_stopping": "early stopping on the test set",
    "early_stopping_val": "early stopping on a validation split",
    "batch_norm": "the batch-norm network", "l1": "the L1-penalised network",
    "l2": "the L2-penalised network", "l1_l2": "the L1 + L2 network",
    "l2_first": "the first-layer L2 network", "mixed": "the mixed model",
    "shallow_lr_control": "the unpenalised control",
}


def points(d: float) -> str:
    """The size of an accuracy difference in percentage points: ``-0.019 -> '1.9 points'``."""
    size = f"{100 * abs(d):.1f}"
    return f"{size} point" if size == "1.0" else f"{size} points"


def label(item: Seeds | Result | Experiment) -> str:
    """How a model is named in running text."""
    exp = item if isinstance(item, Experiment) else item.experiment
    return LABELS.get(exp.name, f"*{exp.title}*")


def seeds_phrase(n: int) -> str:
    return "its one seed" if n == 1 else f"its {n} seeds"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------------------------
# One model, all its seeds
# ---------------------------------------------------------------------------------------------

def _range(s: Summary) -> str:
    return f"{pct(s.low)} to {pct(s.high)}" if s.low != s.high else pct(s.low)


def pct_mean_sd(s: Summary) -> str:
    """"84.2 ± 0.3%" over the seeds kept; the seeds left out are named in a sentence of
    their own, never as "(1 collapsed)" after the number."""
    if math.isnan(s.sd):
        return pct(s.mean)
    return f"{100 * s.mean:.1f} ± {100 * s.sd:.1f}%"


def _gap_phrase(g: float) -> str:
    if round(100 * g, 1) == 0:
        return "train and test accuracy are level"
    if g > 0:
        return f"train accuracy is {points(g)} above test accuracy"
    return f"test accuracy is {points(g)} *above* train accuracy"


def collapse_line(s: Seeds) -> str:
    """Name the seeds that collapsed to chance or diverged (empty when none did)."""
    if not s.collapsed:
        return ""
    kept = len(s.kept)
    stories = "; ".join(life_phrase(r.seed, life_of(r.history), pct)
                        + ("" if r.history.diverged
                           else f" ({pct(r.final['test_acc'])} at the end)")
                        for r in s.collapsed)
    return (f"{_cap(stories)}. {'It is' if len(s.collapsed) == 1 else 'They are'} left out of "
            f"the numbers above, which describe the other "
            f"{'seed' if kept == 1 else f'{kept} seeds'}.")


def _gap_spread(s: Seeds) -> str:
    """" (per seed, from +0.9 to +1.6 points)": the train-test gap of each seed that did not
    collapse, so a mean gap is never read without its spread."""
    gaps = s.values(lambda r: r.final["train_acc"] - r.final["test_acc"], kept=True)
    if len(gaps) < 2:
        return ""
    return f" (per seed, from {signed(gaps.min())} to {signed(gaps.max())} points)"


def describe_seeds(s: Seeds) -> str:
    """What one model did over all its seeds: accuracies, gap, spread, stopping, the study."""
    test, train = s.summary(test_acc), s.summary(lambda r: r.final["train_acc"])
    gap = train.mean - test.mean
    length = s.values(epochs)
    trained = (f"trained for {length[0]:.0f} epochs" if length.min() == length.max() else
               f"trained for {length.min():.0f} to {length.max():.0f} epochs")
    n, kept, over = len(s), len(s.kept), _kept_seeds(s)
    text = (
        f"Over {seeds_phrase(n)}, {label(s)} {trained} ({s.runs[0].n_params:,} parameters). "
        f"In the last epoch it classifies {pct_mean_sd(train)} of the training images and "
        f"{pct_mean_sd(test)} of the test images correctly (mean ± sd over {over}"
        + (f"; test accuracy from {_range(test)}" if kept > 1 else "") + f"): "
        f"{_gap_phrase(gap)}" + _gap_spread(s) + "."
    )
    return " ".join(t for t in (text, collapse_line(s), describe_stopping(s), paper_line(s))
                    if t)


def describe_stopping(s: Seeds) -> str:
    """When early stopping ended the seeds (empty for a model without early stopping)."""
    exp = s.experiment
    if not exp.early_stopping:
        return ""
    stopped = [r for r in s if r.history.stopped_early]
    if not stopped:
        return (f"The stopping rule never fired: {'the seed' if len(s) == 1 else 'every seed'} "
                f"used all {exp.epochs} epochs allowed.")
    e = Seeds(stopped).summary(epochs) if len(stopped) < len(s) else s.summary(epochs)
    best = [r.history.best_epoch for r in stopped if r.history.best_epoch is not None]
    which = ("The rule ended every seed early" if len(stopped) == len(s) else
             f"The rule ended {len(stopped)} of {len(s)} seeds early")
    when = (f"after epoch {e.low:.0f}" if e.low == e.high else
            f"after {e.median:g} epochs (median; {e.low:.0f} to {e.high:.0f})")
    text = f"{which}, {when}"
    if best:
        text += f"; the best epoch was {sorted(best)[len(best) // 2]} (median)"
    return text + "."


def paper_line(s: Seeds) -> str:
    """The study's reported numbers for this model, set against the 95% prediction interval
    for one more of our runs (mean ± t · sd · √(1 + 1/n) over the seeds that did not
    collapse)."""
    ref = PAPER.get(s.name)
    if ref is None:
        return "The study's table has no row for this model."
    theirs = (f"The study reports {pct(ref.train_acc)} train (a running mean over the last "
              f"epoch) and {pct(ref.test_acc)} test accuracy after {ref.epochs} epochs, from one "
              "run")
    if s.runs[0].quick:
        return theirs + "; a quick-mode run cannot be compared with that."
    running = s.summary(train_acc_running)
    ours = f" (our running train accuracy: {pct_mean_sd(running)})"
    low, high = prediction_interval(s.values(test_acc, kept=True))
    if math.isnan(low):
        return (f"{theirs}: its test accuracy is not judged, one seed gives no prediction "
                f"interval{ours}.")
    low, high = max(low, 0.0), min(high, 1.0)
    span = f"{pct(low)} to {pct(high)}"
    if low <= ref.test_acc <= high:
        where = f"inside the 95% prediction interval for one more of our runs ({span})"
    elif round(100 * (ref.test_acc - high), 1) == 0 or round(100 * (low - ref.test_acc), 1) == 0:
        side = "above" if ref.test_acc > high else "below"
        where = (f"just {side} the 95% prediction interval for one more of our runs ({span}), "
                 "by less than 0.05 points")
    elif ref.test_acc > high:
        where = (f"{points(ref.test_acc - high)} above the 95% prediction interval for one more "
                 f"of our runs ({span})")
    else:
        where = (f"{points(low - ref.test_acc)} below the 95% prediction interval for one more "
                 f"of our runs ({span})")
    text = f"{theirs}: its test accuracy is {where}{ours}"
    if s.experiment.early_stopping:
        e_low, e_high = prediction_interval(s.values(epochs, kept=True))
        inside = max(e_low, 1.0) <= ref.epochs <= e_high
        text += (f"; its {ref.epochs} epochs are {'inside' if inside else 'outside'} the same "
                 f"interval for our epochs ({max(e_low, 1.0):.0f} to {e_high:.0f})")
    return text + ". The interval is mean ± t(0.975, n-1) · sd · √(1 + 1/n) over our seeds."


def running_vs_exact(s: Seeds) -> str:
    """The study's running train accuracy against the exact one measured after the epoch."""
    running = s.summary(train_acc_running)
    exact = s.summary(lambda r: r.final["train_acc"])
    text = (
        f"In the last epoch {label(s)} got {pct_mean_sd(running)} of its training batches right "
        f"on average while it trained (the study's measure); measured once the epoch was over, "
        f"in evaluation mode, it classifies {pct_mean_sd(exact)} of the training images correctly"
    )
    if s.experiment.dropout:
        text += ", the second number without dropout's noise"
    return text + f" (mean ± sd over {_kept_seeds(s)})."


def _kept_seeds(s: Seeds) -> str:
    """"the seeds", or "the 4 seeds that did not collapse"."""
    return "the seeds" if len(s.kept) == len(s) else \
        f"the {len(s.kept)} seeds that did not collapse"


# ---------------------------------------------------------------------------------------------
# Two or more models
# ---------------------------------------------------------------------------------------------

def _effect(c, a: Seeds, b: Seeds, digits: int = 1, verb: str = "beats") -> str:
    """"+1.2 points (95% bootstrap interval +0.4 to +2.0); a seed of A beats one of B with
    probability 0.84 (two-sided Mann-Whitney U, p = 0.03)": the effect first, then the test."""
    ci = (f"95% bootstrap interval {interval(c, digits=digits)}" if c.has_interval else
          "no interval from a single seed")
    size = signed(c.difference, digits=digits)
    size = size.lstrip("+") if float(size) == 0 else size  # "0.0 points", not "+0.0 points"
    return (f"{size} points ({ci}); a seed of {label(a)} "
            f"{verb} one of {label(b)} with probability {c.superiority:.2f} (two-sided "
            f"Mann-Whitney U, {p_value(c.p_two_sided)})")


def difference_line(a: Seeds, b: Seeds, what: str = "test accuracy") -> str:
    """The difference in mean test accuracy with its bootstrap interval, the chance that a
    seed of one beats a seed of the other, the test; "shown" only when the interval excludes
    0 and p < 0.05, otherwise "not shown to differ" (never "the same")."""
    c = compare(a, b, test_acc)
    counts = f"{len(a)} and {len(b)} seeds" if len(a) != len(b) else f"{len(a)} seeds each"
    head = f"Over {counts}, the mean {what} of {label(a)} minus that of {label(b)} is "
    if separated(c):
        tail = (": a difference the seeds show (this comparison alone; the results notebook "
                "corrects the study's claims for their number).")
    elif smallest_p(len(a), len(b)) >= ALPHA:
        tail = (f": with so few seeds no test can reach p < {ALPHA} (the smallest possible p is "
                f"{smallest_p(len(a), len(b)):.2f}), so the two are not shown to differ.")
    else:
        tail = ": not shown to differ; the difference is within the seeds' noise."
    return head + _effect(c, a, b) + tail


def compare_seeds(a: Seeds, b: Seeds) -> str:
    """Two models side by side: accuracy difference with its test, gaps, jitter, size."""
    parts = [difference_line(a, b)]
    def gap(r: Result) -> float:
        return r.final["train_acc"] - r.final["test_acc"]

    ga, gb = a.summary(gap).mean, b.summary(gap).mean
    cg = compare(a, b, gap)
    wider = (f"the seeds show a wider gap for {label(a) if cg.difference > 0 else label(b)}."
             if separated(cg) else "the seeds do not show which gap is wider.")
    parts.append(f"The train-test gap averages {100 * ga:+.1f} points for {label(a)} and "
                 f"{100 * gb:+.1f} for {label(b)}; the difference is "
                 + _effect(cg, a, b, verb="lies above")
                 + ": " + wider)
    ja, jb = a.summary(jitter), b.summary(jitter)
    if not (any(map(math.isnan, a.values(jitter))) or any(map(math.isnan, b.values(jitter)))):
        cj = compare(a, b, jitter, 0.0001)
        verdict = "the seeds do not show which curve is smoother."
        if separated(cj):
            verdict = f"{label(a) if cj.difference < 0 else label(b)} has the smoother curve."
        parts.append(
            f"Jitter of the test accuracy (its fluctuation around the trend) averages "
            f"{100 * ja.mean:.2f} points for {label(a)} and {100 * jb.mean:.2f} for "
            f"{label(b)}; the difference is "
            + _effect(cj, a, b, digits=2, verb="lies above") + ": " + verdict)
    na, nb = a.runs[0].n_params, b.runs[0].n_params
    if na != nb:
        big, small = (a, b) if na > nb else (b, a)
        nbig, nsmall = max(na, nb), min(na, nb)
        ratio = nbig / nsmall
        more = (f"{ratio:.1f} times the parameters of" if ratio >= 1.1 else
                f"{nbig - nsmall:,} more parameters than")
        parts.append(f"{_cap(label(big))} has {more} {label(small)} ({nbig:,} against "
                     f"{nsmall:,}).")
    return " ".join(parts)


def loss_vs_chance(*models: Seeds) -> str:
    """The training loss of the first and last epochs against a uniform guess's, ln(classes)."""
    chance = math.log(len(CLASSES))
    text = [f"A network that gives every class the same probability has a loss of ln "
            f"{len(CLASSES)} = {chance:.3f}."]
    for s in models:
        first = s.summary(lambda r: r.history["train_loss"][0])
        last = s.summary(lambda r: r.history["train_loss"][-1])
        stuck = [r for r in s if r.history["train_loss"][-1] > chance - 0.05]
        line = (f"{_cap(label(s))} averaged {first.median:.3f} over its first epoch and "
                f"{last.median:.3f} over its last (medians over the seeds)")
        if stuck:  # the whole history says whether a seed never learned or learned, then died
            line += "; " + "; ".join(
                life_phrase(r.seed, life_of(r.history), pct)
                + f" (training loss {r.history['train_loss'][-1]:.2f} in its last epoch)"
                for r in stuck) + "."
        else:
            line += f", {chance - last.median:.3f} below that mark; no seed stayed at guessing."
        text.append(line)
    return " ".join(text)


def noise_groups(models: Sequence[Seeds]) -> list[list[Seeds]]:
    """The models by mean test accuracy, best first, cut into groups the seeds can tell apart.

    A cut falls between two neighbours only where every model above it is
    :func:`~fmnist_helpers.seeds.separated` from every model below it (bootstrap interval of
    the difference excludes 0 and p < 0.05); inside a group no order is shown.
    """
    ranked = sorted(models, key=lambda s: -s.summary(test_acc).mean)
    pairs: dict[tuple[int, int], bool] = {}

    def apart(i: int, j: int) -> bool:
        if (i, j) not in pairs:
            pairs[i, j] = separated(compare(ranked[i], ranked[j]))
        return pairs[i, j]

    groups, start = [], 0
    for cut in range(1, len(ranked)):
        if all(apart(i, j) for i in range(start, cut) for j in range(cut, len(ranked))):
            groups.append(ranked[start:cut])
            start = cut
    groups.append(ranked[start:])
    return groups


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ranked(s: Seeds) -> str:
    """"the wide network (86.9 ± 0.5%)", its collapsed seeds counted inside the brackets."""
    gone = len(s.collapsed) if len(s.kept) < len(s) else 0
    note = f"; {gone} collapsed seed{'s' if gone > 1 else ''} left out" if gone else ""
    return f"{label(s)} ({pct_mean_sd(s.summary(test_acc))}{note})"


def rank_models(models: Sequence[Seeds]) -> str:
    """The models by mean test accuracy, best first, in groups the seeds can tell apart: an
    order is named only between groups, never inside one."""
    groups = noise_groups(models)
    if len(groups) == 1:
        tied = [_ranked(s) for s in groups[0]]
        c = compare(groups[0][0], groups[0][-1])
        return (f"By mean test accuracy in the last epoch (mean ± sd over the seeds): "
                f"{_and(tied)}. Over these models the seeds give no order: no cut between "
                "neighbours has every model above it clear of every model below it. Even the "
                f"highest mean minus the lowest is " + _effect(c, groups[0][0], groups[0][-1])
                + ".")
    items = "; ".join(
        f"{i}. " + _and([_ranked(s) for s in g])
        + (" (not ordered by the seeds)" if len(g) > 1 else "")
        for i, g in enumerate(groups, 1))
    first, last = groups[0][0], groups[-1][-1]
    c = compare(first, last)
    order = (f"The seeds tell {len(groups)} groups apart (every model of a group against "
             "every model of the next: bootstrap interval of the difference clear of 0 and "
             f"p < {ALPHA}); inside a group no order is shown. ")
    return (f"By mean test accuracy in the last epoch (mean ± sd over the seeds), best first: "
            f"{items}. {order}The first minus the last by mean: "
            + _effect(c, first, last) + ".")
