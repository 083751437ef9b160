"""Training curves over the seeds, the all-sections overview and the comparison chart.

Every function draws under the report's one style (:mod:`fmnist_helpers.style`) and returns
the figure, with a one-line caption under it saying what to look at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .history import History
from .style import (
    COLLAPSED_STYLE,
    REFERENCE,
    TEST_STYLE,
    TRAIN_STYLE,
    VAL_STYLE,
    caption,
    series,
    styled,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .data import FashionMNIST
    from .results import Result
    from .seeds import Seeds


def _history(run) -> History:
    return run.history if hasattr(run, "history") else run


def percent_axis(axis) -> None:
    """Show an accuracy axis (fractions from 0 to 1) in percent, as the tables do."""
    axis.set_major_formatter(PercentFormatter(1.0, decimals=0))


@styled
def plot_history(run, title: str | None = None, axes=None):
    """Loss and accuracy per epoch, train against test, for a :class:`History` or a result.

    The epoch early stopping judged best is marked with a vertical line. Returns the figure.
    """
    history = _history(run)
    if title is None and hasattr(run, "experiment"):
        title = f"{run.experiment.title} (seed {run.seed})"
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    else:
        fig = axes[0].figure
    epochs = history["epoch"]
    has_val = bool(history.rows) and "val_loss" in history.rows[0]
    panels = ((axes[0], "loss", "cross-entropy loss"), (axes[1], "acc", "accuracy"))
    for ax, metric, label in panels:
        ax.plot(epochs, history[f"train_{metric}"], label="train", **TRAIN_STYLE)
        ax.plot(epochs, history[f"test_{metric}"], label="test", **TEST_STYLE)
        if has_val:
            ax.plot(epochs, history[f"val_{metric}"], label="validation", **VAL_STYLE)
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch, color="grey", linewidth=1, alpha=0.8,
                       label=f"best epoch ({history.best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
        if epochs:
            ax.set_xlim(0.5, max(epochs) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    percent_axis(axes[1].yaxis)
    if title:
        fig.suptitle(title)
    return fig


@styled
def plot_overlay(runs: dict, metric: str = "test_acc", ax=None, title: str | None = None):
    """One line per run for one history column (e.g. ``test_acc``): the last six runs."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    shown = list(runs.items())[-6:]  # the last six: one colour and line style each
    for i, (label, run) in enumerate(shown):
        history = _history(run)
        ax.plot(history["epoch"], history[metric], label=label, **series(i), markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_acc", " accuracy").replace("_", " "))
    if metric.endswith("_acc"):
        percent_axis(ax.yaxis)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize="small", ncol=2)
    if title:
        ax.set_title(title)
    return ax.figure


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------

@styled
def plot_examples(data: FashionMNIST, per_class: int = 8, seed: int = 0) -> Figure:
    """A grid of training images: one row per class, ``per_class`` random examples in each."""
    import torch

    classes = data.classes
    g = torch.Generator().manual_seed(seed)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.9 + 1.4, 9.6),
                             squeeze=False, facecolor="white")
    labels = data.train.labels
    for c, name in enumerate(classes):
        idx = torch.nonzero(labels == c).flatten()
        picks = idx[torch.randperm(len(idx), generator=g)[:per_class]]
        for ax, i in zip(axes[c], picks.tolist(), strict=False):
            ax.imshow(data.train.images[i].numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[c][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9,
                              color="black")
    fig.suptitle(f"{per_class} random training images per class (dark = high pixel value)",
                 color="black")
    fig.subplots_adjust(left=0.17, right=0.99, top=0.95, bottom=0.01, wspace=0.05, hspace=0.08)
    return fig


@styled
def plot_class_balance(data: FashionMNIST, ax: Axes | None = None) -> Figure:
    """Share of each class in the training and the test set, side by side."""
    import pandas as pd

    rows = []
    for split, part in (("train", data.train), ("test", data.test)):
        counts = part.class_counts()
        rows += [{"class": name, "split": f"{split} ({len(part):,} images)",
                  "share": n / len(part), "count": n}
                 for name, n in zip(data.classes, counts, strict=True)]
    frame = pd.DataFrame(rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6), constrained_layout=True, facecolor="white")
    sns.barplot(frame, x="class", y="share", hue="split", ax=ax,
                palette=[TRAIN_STYLE["color"], TEST_STYLE["color"]])
    ax.axhline(1 / len(data.classes), color="grey", linewidth=1, linestyle="--",
               label="perfect balance")
    ax.set_xlabel("class")
    ax.set_ylabel("share of the split's images")
    percent_axis(ax.yaxis)
    ax.tick_params(axis="x", rotation=30)
    ax.legend(frameon=False, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return ax.figure


# ---------------------------------------------------------------------------------------------
# All seeds of a few models
# ---------------------------------------------------------------------------------------------

def _seed_lines(ax, s: Seeds, metric: str, style: dict, label: str) -> None:
    """Faint lines for the seeds, dotted red for a collapsed one, bold for the median."""
    from .seeds import collapsed

    for r in s:
        h = r.history
        line = COLLAPSED_STYLE if collapsed(r) else {"color": style["color"], "linewidth": 0.8,
                                                     "alpha": 0.3, "linestyle": "-"}
        ax.plot(h["epoch"], h[metric], **line)
    epochs, median = s.curve(metric)
    ax.plot(epochs, median, label=label, linewidth=2, **style)


def _mark_collapses(ax, s: Seeds) -> None:
    """On an accuracy panel: where each collapsed seed died (or that it never learned)."""
    from .diagnostics import life_of

    for r in s.collapsed:
        life = life_of(r.history)
        if life.kind == "died" and life.died_at:
            at = (life.died_at, r.history["test_acc"][life.died_at - 1])
            text = f"seed {r.seed} dies in epoch {life.died_at}"
        else:
            at = (len(r.history), r.history["test_acc"][-1]) if len(r.history) else (1, 0.1)
            text = f"seed {r.seed} never learns"
        ax.annotate(text, at, xytext=(-10, 18), textcoords="offset points", ha="right",
                    fontsize=7, color=COLLAPSED_STYLE["color"],
                    arrowprops={"arrowstyle": "->", "color": COLLAPSED_STYLE["color"]})


def _mark_gap(ax, s: Seeds) -> None:
    """On an accuracy panel: the train-test gap of the medians at the last epoch, drawn."""
    epochs, train = s.curve("train_acc")
    _, test = s.curve("test_acc")
    n = min(len(train), len(test))
    if not n:
        return
    x, top, bottom = epochs[n - 1], train[n - 1], test[n - 1]
    ax.annotate("", (x, bottom), xytext=(x, top),
                arrowprops={"arrowstyle": "<->", "color": "#333333", "linewidth": 0.9})
    ax.annotate(f"train-test gap {100 * (top - bottom):+.1f} pts", (x, bottom),
                xytext=(-4, -16), textcoords="offset points", ha="right", va="top",
                fontsize=8, color="#333333",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none",
                      "alpha": 0.85})


@styled
def plot_seeds_curves(models: Sequence[Seeds]) -> Figure:
    """Each model's loss and accuracy in its own row: faint per-seed lines, the bold median.

    Rows share their y axes, so a curve that sits higher is higher. A seed that collapsed to
    chance is drawn dotted in red, named in its row's title and marked where it died; the
    medians' train-test gap at the last epoch is drawn on the accuracy panel.
    """
    models = list(models)
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 3.1 * len(models)), squeeze=False,
                             sharey="col", constrained_layout=True)
    for row, s in zip(axes, models, strict=True):
        has_val = "val_loss" in s.runs[0].history.rows[0]
        for ax, what, ylabel in ((row[0], "loss", "cross-entropy loss"),
                                 (row[1], "acc", "accuracy")):
            _seed_lines(ax, s, f"train_{what}", TRAIN_STYLE, "train (median)")
            _seed_lines(ax, s, f"test_{what}", TEST_STYLE, "test (median)")
            if has_val:
                _seed_lines(ax, s, f"val_{what}", VAL_STYLE, "validation (median)")
            gone = [str(r.seed) for r in s.collapsed]
            note = f"; collapsed: seed {', '.join(gone)}" if gone else ""
            ax.set_title(f"{s.experiment.title}, {len(s)} seeds{note}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(loc="best")
        percent_axis(row[1].yaxis)
        _mark_collapses(row[1], s)
        _mark_gap(row[1], s)
    n = sorted({len(s) for s in models})
    return caption(fig, f"Faint lines: each of the {'/'.join(map(str, n))} seeds; bold: their "
                        "median. Train loss is averaged while the epoch trains, so it lags the "
                        "test loss; compare rows on their shared y axes.")


def _spread(s: Seeds, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per epoch: the epochs, the lowest and the highest ``metric`` over the kept seeds still
    training."""
    longest = max(len(r.history) for r in s.kept)
    low, high = [], []
    for e in range(longest):
        at = [r.history[metric][e] for r in s.kept if len(r.history) > e]
        low.append(min(at))
        high.append(max(at))
    return np.arange(1, longest + 1), np.array(low), np.array(high)


@styled
def plot_all_curves(results: Iterable[Result], sections: dict[str, Sequence[str]] | None = None,
                    metric: str = "test_acc") -> Figure:
    """Small multiples: one panel per section of the study, its models' median curves with the
    seeds' spread (lowest to highest seed) shaded.

    Each panel holds at most six models, told apart by colour and line style; the first model
    of a panel (the one the section compares against) is drawn in grey. Each panel has its own
    y range, fitted to its curves, so the differences inside a section stay visible.
    """
    from .seeds import group
    from .study import SECTIONS

    groups = group(results)
    sections = SECTIONS if sections is None else sections
    panels = [(title, [groups[n] for n in names if n in groups])
              for title, names in sections.items()]
    panels = [(t, ms) for t, ms in panels if ms]
    cols = 4 if len(panels) > 4 else len(panels)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False,
                             constrained_layout=True)
    for ax, (title, models) in zip(axes.flat, panels, strict=False):
        for i, s in enumerate(models):
            style = REFERENCE if i == 0 else series(i - 1)
            epochs, median = s.curve(metric)
            line, = ax.plot(epochs, median, label=s.name, markersize=3, linewidth=1.5, **style)
            if len(s.kept) > 1:
                ax.fill_between(*_spread(s, metric), color=line.get_color(), alpha=0.12,
                                linewidth=0)
            if s.experiment.early_stopping:  # where the median seed stopped, on its line
                stop = int(np.median([len(r.history) for r in s.kept]))
                stopped = [r.seed for r in s.kept if len(r.history) == stop]
                at = epochs.tolist().index(stop) if stop in epochs else None
                if at is not None and stopped:
                    ax.plot([stop], [median[at]], marker="|", markersize=12,
                            markeredgewidth=2, color=line.get_color(), linestyle="none")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if metric.endswith("_acc"):
            percent_axis(ax.yaxis)
        ax.legend(loc="lower right")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(metric.replace("_acc", " accuracy").replace("_", " "))
    return caption(fig, "Median over the seeds per epoch, shaded from the lowest to the highest "
                        "seed (collapsed seeds left out), one panel per section, each with its "
                        "own y range; grey: the model each section compares against. An "
                        "early-stopping line runs to its longest seed: past the first seed's "
                        "stop, its median is over the seeds still training; the tick on it "
                        "marks the epoch where the median seed stopped.")


@styled
def plot_comparison(results: Iterable[Result], metric: str = "test_acc",
                    ax: Axes | None = None) -> Figure:
    """Every seed's last-epoch accuracy per model (dots), the median (bar) and the study's value.

    Models are sorted by our median, best on top. The axis is fitted to the seeds that did not
    collapse and to the study's values; a collapsed seed is a red arrow at the axis's left edge,
    its accuracy written beside it, so it does not stretch the axis.
    """
    from .seeds import collapsed, group
    from .study import PAPER

    groups = group(results)
    order = sorted(groups, key=lambda n: np.median(groups[n].values(lambda r: r.final[metric])))

    def paper_of(name: str) -> float | None:
        if name not in PAPER:
            return None
        return PAPER[name].train_acc if metric.startswith("train") else PAPER[name].test_acc

    shown = [r.final[metric] for n in order for r in groups[n] if not collapsed(r)]
    shown += [v for n in order if (v := paper_of(n)) is not None]
    shown = shown or [r.final[metric] for n in order for r in groups[n]]
    span = max(max(shown) - min(shown), 0.01)
    left, right = min(shown) - 0.12 * span, max(shown) + 0.05 * span
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.42 * len(order) + 1.6), constrained_layout=True)
    for y, name in enumerate(order):
        s = groups[name]
        for r in s:
            value = r.final[metric]
            if collapsed(r) or value < left:
                ax.scatter([left], [y], marker="<", s=40, zorder=4, clip_on=False,
                           color=COLLAPSED_STYLE["color"], label="collapsed seed (at the edge)")
                ax.annotate(f"seed {r.seed}: {100 * value:.0f}%", (left, y), xytext=(6, 5),
                            textcoords="offset points", fontsize=7,
                            color=COLLAPSED_STYLE["color"])
                continue
            ax.scatter([value], [y], s=22, zorder=3, marker="o", color=TEST_STYLE["color"],
                       alpha=0.6, label="our seeds")
        median = float(np.median(s.values(lambda r: r.final[metric], kept=True)))
        ax.plot([median] * 2, [y - 0.32, y + 0.32], color=TEST_STYLE["color"], linewidth=2.2,
                label="our median")
        paper = paper_of(name)
        if paper is not None:
            ax.scatter([paper], [y], marker="D", facecolors="none", edgecolors="black", s=42,
                       zorder=4, label="the study's single run")
    ax.set_xlim(left, right)
    percent_axis(ax.xaxis)
    ax.set_yticks(range(len(order)), order)
    ax.set_xlabel(f"{metric.replace('_acc', ' accuracy').replace('_', ' ')}, last epoch")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="lower right")
    quick = " Quick mode: not comparable with the study." if any(
        r.quick for s in groups.values() for r in s) else ""
    return caption(ax.figure, "Where the dots of two models overlap, one run per model (as in "
                              "the study) cannot rank them; diamonds: the study; red arrows: "
                              f"collapsed seeds, off the axis to the left.{quick}")
