"""Training curves and comparison charts, readable in light and dark themes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

from .train import History

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
