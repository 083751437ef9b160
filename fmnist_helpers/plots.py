"""Training curves and comparison charts, readable in light and dark themes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from .engine import History

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .data import FashionMNIST

# Train and test differ in colour AND line style, so they stay apart in print and for
# colour-blind readers. Mid-tone colours read on white and on a dark background.
TRAIN_STYLE = {"color": "#1f77b4", "linestyle": "-", "marker": "o", "markersize": 3}
TEST_STYLE = {"color": "#ff7f0e", "linestyle": "--", "marker": "s", "markersize": 3}
VAL_STYLE = {"color": "#2ca02c", "linestyle": ":", "marker": "^", "markersize": 3}


def _history(run) -> History:
    return run.history if hasattr(run, "history") else run


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
    if title:
        fig.suptitle(title)
    return fig


def plot_overlay(runs: dict, metric: str = "test_acc", ax=None, title: str | None = None):
    """One line per run for one history column (e.g. ``test_acc``), on shared axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    palette = sns.color_palette("tab20", n_colors=max(len(runs), 1))
    for color, (label, run) in zip(palette, runs.items(), strict=False):
        history = _history(run)
        ax.plot(history["epoch"], history[metric], label=label, color=color, marker=".")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize="small", ncol=2)
    if title:
        ax.set_title(title)
    return ax.figure


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------

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
    ax.tick_params(axis="x", rotation=30)
    ax.legend(frameon=False, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return ax.figure


# ---------------------------------------------------------------------------------------------
# Several runs
# ---------------------------------------------------------------------------------------------

def _label(run) -> str:
    return run.experiment.title if hasattr(run, "experiment") else str(run)


def plot_histories(runs: Iterable, sharey: bool = True) -> Figure:
    """Each run's loss and accuracy curves in its own row; rows share their y axes.

    Shared axes make the rows comparable at a glance: a curve that sits higher is higher.
    """
    runs = list(runs)
    fig, axes = plt.subplots(len(runs), 2, figsize=(10, 3.3 * len(runs)), squeeze=False,
                             sharex=False, sharey="col" if sharey else False,
                             constrained_layout=True, facecolor="white")
    for row, run in zip(axes, runs, strict=True):
        plot_history(run, title="", axes=row)
        row[0].set_title(f"{_label(run)}: loss", fontsize=10)
        row[1].set_title(f"{_label(run)}: accuracy", fontsize=10)
    return fig


def plot_all_curves(
    runs: Iterable, metrics: Sequence[str] = ("train_loss", "test_loss", "train_acc", "test_acc")
) -> Figure:
    """Every run's curves on shared axes: one panel per metric, one colour and style per run."""
    runs = list(runs)
    colors = sns.color_palette("tab10", n_colors=10)
    styles = ("-", "--", ":", "-.")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True, sharey="row",
                             constrained_layout=True, facecolor="white")
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for i, run in enumerate(runs):
            history = _history(run)
            ax.plot(history["epoch"], history[metric], label=_label(run), color=colors[i % 10],
                    linestyle=styles[i // 10 % len(styles)], marker=".", linewidth=1.4)
        split, what = metric.split("_", 1)
        ax.set_title(f"{split} {'loss' if what == 'loss' else 'accuracy'}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss" if what == "loss" else "accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.label_outer()
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=3, frameon=False,
               fontsize="small")
    return fig


def plot_comparison(table: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Test accuracy per model, ours against the study's reported value, best first.

    ``table`` is :func:`fmnist_helpers.tables.comparison_table`. The axis does not start at 0,
    so the models are drawn as points, not bars, and the differences are read off the axis.
    """
    from .tables import OURS, PAPER_COLUMNS

    order = table.sort_values(OURS["test_acc"])
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.45 * len(order) + 1.4), constrained_layout=True,
                             facecolor="white")
    y = range(len(order))
    ours, theirs = order[OURS["test_acc"]], order[PAPER_COLUMNS[1]]
    for yi, a, b in zip(y, ours, theirs, strict=True):
        if b == b:  # not NaN
            ax.plot([a, b], [yi, yi], color="grey", linewidth=1, alpha=0.6)
    ax.scatter(ours, y, color=TEST_STYLE["color"], marker="o", s=40, zorder=3,
               label="ours (test acc, last epoch)")
    ax.scatter(theirs, y, facecolor="none", edgecolor=TRAIN_STYLE["color"], marker="D", s=40,
               zorder=3, label="the study's reported test acc")
    ax.set_yticks(list(y), list(order[OURS["model"]]))
    ax.set_xlabel("test accuracy (last epoch)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    title = "Test accuracy per model, ours vs the study's"
    if table.attrs.get("quick"):
        title += "\n(quick mode: our runs are not comparable with the study's)"
    ax.set_title(title)
    return ax.figure


def plot_seeds(results: Iterable, metric: str = "test_acc", ax: Axes | None = None) -> Figure:
    """Every seed's last-epoch ``metric`` per model (dots), its mean, and the study's number.

    Models are sorted by our mean, best on top; the study's reported value is an open diamond.
    """
    from .analysis import group_by_experiment
    from .study import PAPER

    groups = group_by_experiment(results)
    means = {n: sum(r.final[metric] for r in rs) / len(rs) for n, rs in groups.items()}
    order = sorted(groups, key=lambda n: means[n])
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.45 * len(order) + 1.4), constrained_layout=True,
                             facecolor="white")
    for y, name in enumerate(order):
        values = [r.final[metric] for r in groups[name]]
        ax.scatter(values, [y] * len(values), color=TEST_STYLE["color"], alpha=0.6, s=25,
                   label="our seeds" if y == 0 else None, zorder=3)
        ax.plot([means[name]] * 2, [y - 0.3, y + 0.3], color=TEST_STYLE["color"], linewidth=2,
                label="our mean" if y == 0 else None)
        if name in PAPER:
            paper = PAPER[name].train_acc if metric.startswith("train") else PAPER[name].test_acc
            ax.scatter([paper], [y], marker="D", facecolors="none", edgecolors="black", s=45,
                       label="the study's value", zorder=4)
    ax.set_yticks(range(len(order)), [groups[n][0].experiment.title for n in order])
    ax.set_xlabel(f"{metric.replace('_', ' ')}, last epoch")
    ax.grid(alpha=0.3, axis="x")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), frameon=False, loc="lower right")
    return ax.figure
