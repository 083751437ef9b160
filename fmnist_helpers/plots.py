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
from matplotlib.ticker import MaxNLocator

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
    ax.set_ylabel(metric.replace("_", " "))
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


@styled
def plot_seeds_curves(models: Sequence[Seeds]) -> Figure:
    """Each model's loss and accuracy in its own row: faint per-seed lines, the bold median.

    Rows share their y axes, so a curve that sits higher is higher. A seed that collapsed to
    chance is drawn dotted in red and named in its row's title.
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
    n = sorted({len(s) for s in models})
    return caption(fig, f"Faint lines: each of the {'/'.join(map(str, n))} seeds; bold: their "
                        "median. Train loss is averaged while the epoch trains, so it lags the "
                        "test loss; compare rows on their shared y axes.")


@styled
def plot_all_curves(results: Iterable[Result], sections: dict[str, Sequence[str]] | None = None,
                    metric: str = "test_acc") -> Figure:
    """Small multiples: one panel per section of the study, its models' median curves.

    Each panel holds at most six models, told apart by colour and line style; the first model
    of a panel (the one the section compares against) is drawn in grey.
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
                             sharey=True, constrained_layout=True)
    for ax, (title, models) in zip(axes.flat, panels, strict=False):
        for i, s in enumerate(models):
            style = REFERENCE if i == 0 else series(i - 1)
            epochs, median = s.curve(metric)
            line, = ax.plot(epochs, median, label=s.name, markersize=3, linewidth=1.5, **style)
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
        ax.legend(loc="lower right")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(metric.replace("_acc", " accuracy").replace("_", " "))
    return caption(fig, "Median over the seeds per epoch, one panel per section; grey: the "
                        "model each section compares against. An early-stopping line runs to "
                        "its longest seed: past the first seed's stop, its median is over the "
                        "seeds still training (at the end, one or two); the tick on it marks "
                        "the epoch where the median seed stopped.")


@styled
def plot_comparison(results: Iterable[Result], metric: str = "test_acc",
                    ax: Axes | None = None) -> Figure:
    """Every seed's last-epoch accuracy per model (dots), the median (bar) and the study's value.

    Models are sorted by our median, best on top; a collapsed seed is a red cross.
    """
    from .seeds import collapsed, group
    from .study import PAPER

    groups = group(results)
    order = sorted(groups, key=lambda n: np.median(groups[n].values(lambda r: r.final[metric])))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.42 * len(order) + 1.6), constrained_layout=True)
    for y, name in enumerate(order):
        s = groups[name]
        for r in s:
            bad = collapsed(r)
            ax.scatter([r.final[metric]], [y], s=30 if bad else 22, zorder=3,
                       marker="x" if bad else "o",
                       color=COLLAPSED_STYLE["color"] if bad else TEST_STYLE["color"],
                       alpha=1 if bad else 0.6,
                       label="collapsed seed" if bad else "our seeds")
        median = float(np.median(s.values(lambda r: r.final[metric], kept=True)))
        ax.plot([median] * 2, [y - 0.32, y + 0.32], color=TEST_STYLE["color"], linewidth=2.2,
                label="our median")
        if name in PAPER:
            paper = PAPER[name].train_acc if metric.startswith("train") else PAPER[name].test_acc
            ax.scatter([paper], [y], marker="D", facecolors="none", edgecolors="black", s=42,
                       zorder=4, label="the study's single run")
    ax.set_yticks(range(len(order)), order)
    ax.set_xlabel(f"{metric.replace('_acc', ' accuracy').replace('_', ' ')}, last epoch")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="lower right")
    quick = " Quick mode: not comparable with the study." if any(
        r.quick for s in groups.values() for r in s) else ""
    return caption(ax.figure, "Where the dots of two models overlap, one run per model (as in "
                              f"the study) cannot rank them; diamonds: the study.{quick}")


# ---------------------------------------------------------------------------------------------
# Why the deeper network fails (diagnostics per epoch, the lr x depth map)
# ---------------------------------------------------------------------------------------------

@styled
def plot_why_deeper_fails(shallow: Seeds, deeper: Seeds, others: Sequence[Result] = ()
                          ) -> Figure:
    """Each seed of the deeper network per epoch: test accuracy (a seed that learned, then died
    annotated where it peaked and where it died), the share of its hidden units that are dead,
    and the gradient norm reaching its first layer; the shallow network's median in grey.
    ``others``: more runs to draw the same way, named by their experiment (a deep run of the
    learning-rate map that learned, then died: :func:`diagnostics.died_elsewhere`)."""
    from matplotlib.ticker import PercentFormatter

    from .diagnostics import SAMPLE_PER_CLASS, dead_share, life_of, of

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    ref = {"color": REFERENCE["color"], "linewidth": 2, "linestyle": "--",
           "label": "shallow (median)"}
    any_plain = False
    for r in [*deeper, *others]:
        d, life = of(r), life_of(r.history)
        epochs = np.arange(1, len(r.history) + 1)
        dead_seed = life.kind in ("died", "diverged", "never learned")
        style = {"color": COLLAPSED_STYLE["color"], "linewidth": 1.8} if dead_seed else \
            {"color": series(0)["color"], "linewidth": 1, "alpha": 0.6}
        late = life.kind == "trained" and life.started and life.started > 1
        if late:
            style = {"color": series(2)["color"], "linewidth": 1.8}
        special = dead_seed or late
        who = f"seed {r.seed}" if r.experiment.name == deeper.name else \
            f"{r.experiment.title.lower()}, seed {r.seed}"
        name = (who + (" (died)" if life.kind == "died" else
                                    " (late start)" if late else "")) if special else \
            ("other seeds" if not any_plain else None)
        any_plain = any_plain or not special
        axes[0].plot(epochs, r.history["test_acc"], marker="o", markersize=3, label=name, **style)
        axes[1].plot(epochs, dead_share(d), marker="o", markersize=3, **style)
        axes[2].plot(epochs, d["grad_norm"][:, 0], marker="o", markersize=3, **style)
        if late:
            axes[0].annotate(f"{who} leaves chance in epoch {life.started}",
                             (life.started, r.history["test_acc"][life.started - 1]),
                             xytext=(10, -30), textcoords="offset points", fontsize=8,
                             color=style["color"],
                             arrowprops={"arrowstyle": "->", "color": style["color"]})
        if life.kind == "died":
            axes[0].annotate(f"{who} learned: {100 * life.best_acc:.0f}%",
                             (life.best_epoch, life.best_acc), xytext=(12, 8),
                             textcoords="offset points", fontsize=8, color=style["color"],
                             arrowprops={"arrowstyle": "->", "color": style["color"]})
            axes[0].annotate(f"dead from epoch {life.died_at}",
                             (life.died_at, r.history["test_acc"][life.died_at - 1]),
                             xytext=(8, 22), textcoords="offset points", fontsize=8,
                             color=style["color"],
                             arrowprops={"arrowstyle": "->", "color": style["color"]})
            dead_now = dead_share(d)[life.died_at - 1]
            axes[1].annotate(f"{100 * dead_now:.0f}% of units dead", (life.died_at, dead_now),
                             xytext=(25, 25), textcoords="offset points", fontsize=8,
                             color=style["color"],
                             arrowprops={"arrowstyle": "->", "color": style["color"]})
    diags = [of(r) for r in shallow]
    n = min(len(x["loss"]) for x in diags)
    epochs = np.arange(1, n + 1)
    axes[0].plot(*shallow.curve("test_acc"), **ref)
    axes[1].plot(epochs, np.median([dead_share(x)[:n] for x in diags], axis=0), **ref)
    axes[2].plot(epochs, np.median([x["grad_norm"][:n, 0] for x in diags], axis=0), **ref)
    axes[0].axhline(0.1, color="#999999", linewidth=0.8, linestyle=":")
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(-0.02, 1.02)
    for ax in axes[:2]:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[2].set_yscale("symlog", linthresh=1e-4)
    for ax, title in zip(axes, ("test accuracy", "hidden units dead on every sample image",
                                "gradient norm, first layer"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8, loc="lower right")
    return caption(fig, "Each seed of the deeper network after every epoch (red: a seed that "
                        "collapsed; green: one that sat at chance before it learned"
                        + ("; a run named by its learning rate comes from the map below"
                           if others else "") + "), measured "
                        f"on a fixed sample of {10 * SAMPLE_PER_CLASS:,} training images; dashed "
                        "grey: the shallow "
                        "network's median. A dead unit outputs 0 for every image, so no "
                        "gradient flows through it.")


@styled
def plot_collapse_map(share, count, ax: Axes | None = None) -> Figure:
    """Share of seeds that collapsed per depth (rows, batch norm last) and learning rate."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * share.shape[1] + 2.5, 0.7 * share.shape[0] + 1.6),
                             constrained_layout=True)
    image = ax.imshow(share.to_numpy(dtype=float), cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.grid(False)
    for i in range(share.shape[0]):
        for j in range(share.shape[1]):
            value, n = share.iat[i, j], count.iat[i, j]
            if np.isnan(value):
                text, colour = "not run", "#777777"
            else:
                text = f"{round(value * n):.0f} of {n:.0f}"
                colour = "white" if value > 0.5 else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=10)
    ax.set_xticks(range(share.shape[1]), [f"{lr:g}" for lr in share.columns])
    ax.set_yticks(range(share.shape[0]), list(share.index))
    ax.set_xlabel("learning rate")
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.05)
    bar.ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    bar.set_label("seeds collapsed")
    return caption(ax.figure, "Seeds that collapsed to chance (or diverged) after 10 epochs of "
                              "the study's recipe, per network and learning rate; the last "
                              "rows: batch norm after every hidden ReLU.")
