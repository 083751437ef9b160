"""Sentences for the notebooks' discussions, written by code from the runs' own histories.

Every function returns Markdown; a notebook shows it with ``IPython.display.Markdown``. No number
in these sentences is typed by hand: a rerun, a quick-mode run or another seed rewrites them.
The study's numbers are always named as the study's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .analysis import kendall_tau, roughness
from .data import (
    CLASSES,
    FILES,
    IMAGE_SIZE,
    QUICK_TEST_PER_CLASS,
    QUICK_TRAIN_PER_CLASS,
    FashionMNIST,
)
from .models import count_parameters, linear_layers
from .runs import Result, resolve
from .settings import QUICK_EPOCHS, QUICK_MAX_EPOCHS, settings
from .study import PAPER, Experiment, PaperResult
from .tables import DIFF_COLUMNS, OURS, PAPER_COLUMNS

TIE = 0.0005  # accuracies closer than this (0.05 points) count as level

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


def pct(x: float) -> str:
    """An accuracy as a percentage with one decimal: ``0.8394 -> '83.9%'``."""
    return f"{100 * x:.1f}%"


def points(d: float) -> str:
    """The size of an accuracy difference in percentage points: ``-0.019 -> '1.9 points'``."""
    return f"{100 * abs(d):.1f} points"


def label(result: Result | Experiment) -> str:
    """How a run is named in running text."""
    exp = result.experiment if isinstance(result, Result) else result
    return LABELS.get(exp.name, f"*{exp.title}*")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _n(x: float) -> str:
    return f"{x:,.0f}"


# ---------------------------------------------------------------------------------------------
# The data and the settings
# ---------------------------------------------------------------------------------------------

def mode_line(quick: bool | None = None) -> str:
    """One line saying whether the notebook runs at the study's settings or in quick mode."""
    if settings(quick).quick:
        n_train = QUICK_TRAIN_PER_CLASS * len(CLASSES)
        n_test = QUICK_TEST_PER_CLASS * len(CLASSES)
        return (
            f"**Quick mode** (`FMNIST_QUICK=1`): each run trains {QUICK_EPOCHS} epochs (at most "
            f"{QUICK_MAX_EPOCHS} with early stopping) on a stratified subset of {_n(n_train)} "
            f"training and {_n(n_test)} test images. The numbers below only show that the code "
            "runs; they are not comparable with the study's."
        )
    n_train, n_test = FILES["train-labels-idx1-ubyte"][1], FILES["t10k-labels-idx1-ubyte"][1]
    return (
        f"**Full settings**: all {_n(n_train)} training and {_n(n_test)} test images, the "
        "study's number of epochs. Finished runs are loaded from the cache in `results/full/`."
    )


def describe_data(data: FashionMNIST) -> str:
    """Sizes, image shape, pixel range, classes and class balance of the loaded data."""
    train, test = data.train, data.test
    n_classes = len(data.classes)
    tr, te = train.class_counts(), test.class_counts()
    lo, hi = float(train.images.min()), float(train.images.max())
    text = (
        f"The training set holds **{_n(len(train))}** images and the test set "
        f"**{_n(len(test))}**. Each image is {train.images.shape[1]}×{train.images.shape[2]} "
        f"grey levels scaled to [{lo:.2f}, {hi:.2f}], so a flattened image is a vector of "
        f"{_n(IMAGE_SIZE * IMAGE_SIZE)} numbers. There are {n_classes} classes: "
        f"{', '.join(data.classes)}. "
    )
    if len(set(tr)) == 1 and len(set(te)) == 1:
        text += (
            f"Every class has exactly {_n(tr[0])} training and {_n(te[0])} test images: the "
            "classes are perfectly balanced, so plain accuracy weighs every class alike, and "
            f"guessing a class at random would score about {pct(1 / n_classes)}."
        )
    else:
        text += (
            f"Training images per class range from {_n(min(tr))} to {_n(max(tr))} and test "
            f"images from {_n(min(te))} to {_n(max(te))} (largest over smallest: "
            f"{max(tr) / min(tr):.2f} and {max(te) / min(te):.2f})."
        )
    return text


def describe_model(experiment: Experiment, quick: bool | None = None) -> str:
    """The architecture and training recipe of an experiment, counted from the built model."""
    model = experiment.build()
    widths = [linear_layers(model)[0].in_features]
    widths += [layer.out_features for layer in linear_layers(model)]
    parts = [
        f"{len(widths) - 1} linear layers ({' → '.join(str(w) for w in widths)}), a ReLU "
        "after each hidden one"
    ]
    if experiment.batch_norm:
        parts.append("batch normalisation after each hidden ReLU")
    if experiment.dropout:
        parts.append(f"dropout with p = {experiment.dropout:g} after each hidden activation")
    text = f"{', '.join(parts)}: **{_n(count_parameters(model))}** trainable parameters. "
    text += f"Trained with plain SGD, learning rate {experiment.lr:g}, batches of 32"
    penalties = [f"{w} × {k}" for k, w in (
        ("Σ|W|", experiment.l1), ("ΣW²", experiment.l2), ("ΣW₁² (first layer)",
                                                          experiment.l2_first)) if w]
    if penalties:
        text += f", with {' + '.join(penalties)} added to the loss"
    epochs = resolve(experiment, settings(quick)).epochs
    if experiment.early_stopping:
        watched = "test loss" if experiment.early_stopping == "test" else "validation loss"
        text += (
            f", for at most {epochs} epochs: training stops once the {watched} has not fallen by "
            f"at least {experiment.min_delta:g} for {experiment.patience} epochs in a row."
        )
    else:
        text += f", for {epochs} epochs."
    return text


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------

def dips(result: Result, metric: str = "test_acc") -> tuple[int, int, float]:
    """How often a curve went down from one epoch to the next: (dips, steps, largest dip)."""
    values = result.history[metric]
    falls = [a - b for a, b in zip(values, values[1:], strict=False) if b < a]
    return len(falls), max(len(values) - 1, 0), max(falls, default=0.0)


def gap(result: Result) -> float:
    """Train minus test accuracy in the last epoch (both exact, measured after the epoch)."""
    return result.final["train_acc"] - result.final["test_acc"]


def _gap_phrase(g: float) -> str:
    if abs(g) < TIE:
        return "train and test accuracy are level"
    if g > 0:
        return f"train accuracy is {points(g)} above test accuracy"
    return f"test accuracy is {points(g)} *above* train accuracy"


def _dips_phrase(result: Result) -> str:
    n, steps, worst = dips(result)
    if steps == 0:
        return "a single epoch shows no trend"
    if n == 0:
        return f"never fell from one epoch to the next ({steps} step{'s' * (steps > 1)})"
    return f"fell in {n} of {steps} epoch-to-epoch steps, by at most {points(worst)}"


def _falls(result: Result) -> str:
    n, steps, worst = dips(result)
    if n == 0:
        return f"never fell in {steps} step{'s' * (steps != 1)}"
    times = "once" if n == 1 else f"{n} times"
    return f"fell {times} in {steps} steps (by at most {points(worst)})"


def describe_run(result: Result, paper: dict[str, PaperResult] | None = None) -> str:
    """What one run did: length, last-epoch accuracies, gap, peak, dips, stopping, the study."""
    h, final = result.history, result.final
    accs = h["test_acc"]
    peak = max(range(len(accs)), key=accs.__getitem__)
    text = (
        f"{_cap(label(result))} trained for {result.epochs_trained} epochs "
        f"({_n(result.n_params)} parameters, trained on {result.device}). In its "
        f"last epoch it classifies {pct(final['train_acc'])} of the training images and "
        f"{pct(final['test_acc'])} of the test images correctly: {_gap_phrase(gap(result))}. "
        f"Test accuracy was highest at epoch {h['epoch'][peak]} ({pct(accs[peak])}) and "
        f"{_dips_phrase(result)}."
    )
    stop = describe_stopping(result)
    return " ".join(t for t in (text, stop, paper_line(result, paper)) if t)


def describe_stopping(result: Result) -> str:
    """When and why early stopping ended the run (empty for runs without early stopping)."""
    exp, h = result.experiment, result.history
    if not exp.early_stopping:
        return ""
    watched = "test loss" if exp.early_stopping == "test" else "validation loss"
    if h.stopped_early:
        text = (
            f"The stopping rule ended the run after epoch {result.epochs_trained}: the {watched} "
            f"last fell by at least {exp.min_delta:g} at epoch {h.best_epoch}, then "
            f"{exp.patience} epochs went by without such a fall."
        )
    else:
        text = (
            f"The stopping rule never fired: the run used all {result.epochs_trained} epochs it "
            "was allowed."
        )
    if h.best_epoch is not None and h.best_epoch != result.epochs_trained:
        best = h.rows[h["epoch"].index(h.best_epoch)]["test_acc"]
        last = result.final["test_acc"]
        text += (
            f" Test accuracy was {pct(best)} at that best epoch and {pct(last)} at the last "
            "one, whose weights are kept, as in the study."
        )
    return text


def paper_line(result: Result, paper: dict[str, PaperResult] | None = None) -> str:
    """The study's reported numbers for this model, set against ours when comparable."""
    paper = PAPER if paper is None else paper
    ref = paper.get(result.experiment.name)
    if ref is None:
        return "The study's table has no row for this model."
    theirs = (
        f"The study reports {pct(ref.train_acc)} train (a running mean over the last epoch) and "
        f"{pct(ref.test_acc)} test accuracy after {ref.epochs} epochs"
    )
    if result.quick:
        return theirs + "; a quick-mode run cannot be compared with that."
    d = result.final["test_acc"] - ref.test_acc
    where = "level with" if abs(d) < TIE else f"{points(d)} {'above' if d > 0 else 'below'}"
    return (
        f"{theirs}; our running train accuracy is {pct(result.final['train_acc_running'])} and "
        f"our test accuracy is {where} the study's."
    )


# ---------------------------------------------------------------------------------------------
# Two or more runs
# ---------------------------------------------------------------------------------------------

def compare_runs(a: Result, b: Result, metric: str = "test_acc") -> str:
    """Which of two runs ends ahead on ``metric``, and how their gaps, dips and losses compare."""
    va, vb = a.final[metric], b.final[metric]
    what = metric.replace("_acc", " accuracy").replace("_", " ")
    head = f"In the last epoch, {label(a)} reaches {pct(va)} {what} and {label(b)} {pct(vb)}: "
    if abs(va - vb) < TIE:
        head += "the two are level."
    else:
        winner = a if va > vb else b
        head += f"**{label(winner)} is ahead by {points(va - vb)}**."
    ga, gb = gap(a), gap(b)
    gaps = (
        f"The train-test gap is {100 * ga:+.1f} points for {label(a)} and {100 * gb:+.1f} for "
        f"{label(b)}."
    )
    ra, rb = roughness(a), roughness(b)
    if math.isnan(ra) or math.isnan(rb):
        steadier = ""
    else:
        steadier = (
            f"From one epoch to the next, the test accuracy of {label(a)} {_falls(a)}, and that "
            f"of {label(b)} {_falls(b)}; on average it moved {100 * ra:.1f} and {100 * rb:.1f} "
            "points per epoch."
        )
    size = ""
    if a.n_params != b.n_params:
        big, small = (a, b) if a.n_params > b.n_params else (b, a)
        ratio = big.n_params / small.n_params
        more = (f"{ratio:.1f} times the parameters of" if ratio >= 1.1 else
                f"{_n(big.n_params - small.n_params)} more parameters than")
        size = (f"{_cap(label(big))} has {more} {label(small)} ({_n(big.n_params)} against "
                f"{_n(small.n_params)}).")
    la, lb = a.history["train_loss"], b.history["train_loss"]
    losses = (
        f"Training loss went from {la[0]:.3f} after the first epoch to {la[-1]:.3f} for "
        f"{label(a)}, and from {lb[0]:.3f} to {lb[-1]:.3f} for {label(b)}."
    )
    return " ".join(t for t in (head, gaps, steadier, losses, size) if t)


def loss_vs_chance(*results: Result) -> str:
    """The training loss of the first and last epochs against a uniform guess's, ln(classes)."""
    chance = math.log(len(CLASSES))
    text = [f"A network that gives every class the same probability has a loss of ln "
            f"{len(CLASSES)} = {chance:.3f}."]
    for result in results:
        first, last = result.history["train_loss"][0], result.history["train_loss"][-1]
        line = (f"{_cap(label(result))} averaged {first:.3f} over its first epoch and "
                f"{last:.3f} over its last")
        if last > chance - 0.05:
            text.append(line + ": it has barely moved away from guessing.")
        else:
            text.append(line + f", {chance - last:.3f} below that mark.")
    return " ".join(text)


def running_vs_exact(result: Result) -> str:
    """The study's running train accuracy against the exact one measured after the epoch."""
    running, exact = result.final["train_acc_running"], result.final["train_acc"]
    text = (
        f"In its last epoch {label(result)} got {pct(running)} of its training batches right "
        f"on average while it trained (the study's measure); measured once the epoch was over, "
        f"in evaluation mode, it classifies {pct(exact)} of the training images correctly"
    )
    if result.experiment.dropout:
        text += ", the second number without dropout's noise"
    return text + "."


def rank_runs(results: Sequence[Result], metric: str = "test_acc") -> str:
    """The runs ranked by a last-epoch metric, best first, with the spread from first to last."""
    ranked = sorted(results, key=lambda r: -r.final[metric])
    what = metric.replace("_acc", " accuracy").replace("_", " ")
    items = "; ".join(f"{i}. {label(r)} ({pct(r.final[metric])})"
                      for i, r in enumerate(ranked, 1))
    spread = ranked[0].final[metric] - ranked[-1].final[metric]
    return (
        f"Ranked by {what} in the last epoch: {items}. First and last are {points(spread)} "
        "apart."
    )


def summarize_table(table: pd.DataFrame) -> str:
    """The results table in sentences: best and worst, the study's best, ranking agreement."""
    test, paper_test, diff = OURS["test_acc"], PAPER_COLUMNS[1], DIFF_COLUMNS[1]
    best, worst = table.index[0], table.index[-1]
    text = (
        f"Our best model is {LABELS.get(best, best)} ({pct(table.at[best, test])} test accuracy) "
        f"and our weakest {LABELS.get(worst, worst)} ({pct(table.at[worst, test])}), "
        f"{points(table.at[best, test] - table.at[worst, test])} apart."
    )
    reported = table.dropna(subset=[paper_test])
    if reported.empty:
        return text
    theirs = reported[paper_test].idxmax()
    place = list(table.index).index(theirs) + 1
    text += (
        f" The study's best, {LABELS.get(theirs, theirs)} (reported: "
        f"{pct(reported.at[theirs, paper_test])}), is number {place} of {len(table)} here."
    )
    if table.attrs.get("quick"):
        return text + " These are quick-mode runs, so the differences from the study mean little."
    far = reported[diff].abs().idxmax()
    text += (
        f" The largest difference from the study's test accuracy is for "
        f"{LABELS.get(far, far)}: {100 * reported.at[far, diff]:+.1f} points; the median "
        f"absolute difference is {100 * reported[diff].abs().median():.1f} points."
    )
    if len(reported) >= 2:
        ours = list(reported.index)
        study = list(reported.sort_values(paper_test, ascending=False, kind="stable").index)
        tau = kendall_tau(study, ours)
        text += (
            f" Over the {len(ours)} models both tables hold, Kendall's rank correlation between "
            f"the study's order and ours is {tau:+.2f} (1 would be the same order, -1 the "
            "reverse)."
        )
    return text
