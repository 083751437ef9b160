"""What the networks learned: per-class accuracy, confusions, mistakes, first-layer features.

Everything here reads a run's stored test predictions and final weights (see
:class:`fmnist_helpers.results.Artifacts`); nothing is trained. Over several seeds of a model, the
seeds that collapsed to chance (:func:`fmnist_helpers.seeds.collapsed`) are left out of means
and spreads, as in the rest of the report. Every figure function returns a matplotlib
``Figure`` with a one-line caption under it saying what to look at. (Dead units are counted in
:mod:`fmnist_helpers.diagnostics`.) Orders in sentences (the hardest classes, the most
frequent confusions, where the models differ, the best and worst model) rest on the seeds and
live in :mod:`fmnist_helpers.ranking`; the functions of the same names here call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import PercentFormatter
from torch import nn

from .data import CLASSES, IMAGE_SIZE, N_CLASSES, FashionMNIST
from .models import linear_layers, logits_in_chunks
from .mosaic import check_columns, draw_mosaic
from .results import Result, get_data
from .seeds import group
from .style import caption, styled
from .tables import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATISTICS = ("mean", "sd", "min", "max")
Runs = Mapping[str, Iterable[Result]] | Iterable[Result]


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------

def _classes(values, name: str, n_classes: int) -> np.ndarray:
    """``values`` (a tensor or array of class indices) as a flat int64 numpy array, checked."""
    array = np.asarray(torch.as_tensor(values).cpu()).astype(np.int64, copy=False)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one class per image (1-D), got shape {array.shape}")
    bad = array[(array < 0) | (array >= n_classes)]
    if bad.size:
        raise ValueError(f"{name} must be classes 0 to {n_classes - 1}, got {int(bad[0])}")
    return array


def confusion_matrix(labels, predictions, n_classes: int = N_CLASSES) -> np.ndarray:
    """Counts ``(n_classes, n_classes)``: row = true class, column = predicted class."""
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a whole number >= 1, got {n_classes!r}")
    truth = _classes(labels, "labels", n_classes)
    guess = _classes(predictions, "predictions", n_classes)
    if len(truth) != len(guess):
        raise ValueError(f"labels and predictions differ in length: {len(truth)} and "
                         f"{len(guess)} (predictions of the quick subset against full labels?)")
    counts = np.bincount(truth * n_classes + guess, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def per_class_accuracy(labels, predictions, n_classes: int = N_CLASSES) -> np.ndarray:
    """Share of each true class's images classified right (NaN for a class with no image)."""
    matrix = confusion_matrix(labels, predictions, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(matrix) / matrix.sum(1)


def _test_labels(result: Result) -> torch.Tensor:
    return get_data(result.quick).test.labels


def run_confusion(result: Result) -> np.ndarray:
    """One run's confusion matrix on the test set (counts)."""
    return confusion_matrix(_test_labels(result), result.predictions)


def flat_runs(results: Runs) -> list[Result]:
    """The runs of a mapping model -> runs, or of an iterable of runs, as one list."""
    if isinstance(results, Mapping):
        return [r for runs in results.values() for r in runs]
    return list(results)


def by_model(results: Runs) -> dict[str, list[Result]]:
    """Each model's seeds that did not collapse (all, when every one did), by experiment name."""
    groups = group(flat_runs(results))
    if not groups:
        raise ValueError("no results given")
    return {name: seeds.kept for name, seeds in groups.items()}


def confusion_of(results: Iterable[Result]) -> np.ndarray:
    """The mean confusion matrix of one model's seeds (images per run; collapsed seeds out)."""
    groups = by_model(results)
    if len(groups) != 1:
        raise ValueError(f"confusion_of takes the seeds of one model, got {sorted(groups)}")
    return np.mean([run_confusion(r) for r in next(iter(groups.values()))], axis=0)


# ---------------------------------------------------------------------------------------------
# Per class, over models
# ---------------------------------------------------------------------------------------------

def per_seed_class_accuracy(results: Runs) -> list[np.ndarray]:
    """Per model (by experiment name, collapsed seeds left out): its seeds' per-class test
    accuracy, (seeds, classes)."""
    return [np.array([per_class_accuracy(_test_labels(r), r.predictions) for r in runs])
            for runs in by_model(results).values()]


def per_class_table(results: Runs, statistic: str = "mean") -> pd.DataFrame:
    """Per-class test accuracy, models (rows, by experiment name) x classes: ``statistic``
    ("mean", "sd", "min" or "max") over each model's seeds, collapsed seeds left out."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    groups = by_model(results)
    rows = {}
    for name, per_run in zip(groups, per_seed_class_accuracy(groups), strict=True):
        if statistic == "sd":
            rows[name] = (per_run.std(0, ddof=1) if len(per_run) > 1
                          else np.full(N_CLASSES, np.nan))
        else:
            rows[name] = getattr(np, statistic)(per_run, axis=0)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(CLASSES))
    frame.index.name = "model"
    return frame


def check_top(top: int) -> int:
    """``top`` (how many to show), checked: a whole number >= 1."""
    if isinstance(top, bool) or int(top) != top or top < 1:
        raise ValueError(f"top must be a whole number >= 1, got {top!r}")
    return int(top)


# ---------------------------------------------------------------------------------------------
# Orders over the seeds (in :mod:`fmnist_helpers.ranking`, called here by the notebooks)
# ---------------------------------------------------------------------------------------------

def describe_classes(results: Runs, top: int = 3) -> str:
    """:func:`fmnist_helpers.ranking.describe_classes`: the hardest and easiest classes, the
    most frequent confusions and where the models differ, ordered only where the seeds show it."""
    from . import ranking

    return ranking.describe_classes(results, check_top(top))


def most_confused_pairs(results_by_model: Runs, top: int = 5) -> pd.DataFrame:
    """:func:`fmnist_helpers.ranking.most_confused_pairs`: the top groups of mistakes."""
    from . import ranking

    return ranking.most_confused_pairs(results_by_model, check_top(top))


def confused_pairs_table(results_by_model: Runs, top: int = 5) -> Table:
    """:func:`fmnist_helpers.ranking.confused_pairs_table`: the top groups, as a table."""
    from . import ranking

    return ranking.confused_pairs_table(results_by_model, check_top(top))


def classes_where_models_differ(results: Runs, top: int = 3) -> pd.DataFrame:
    """:func:`fmnist_helpers.ranking.classes_where_models_differ`: classes that separate the
    models beyond the seeds' noise, widest spread first, in groups."""
    from . import ranking

    return ranking.classes_where_models_differ(results, check_top(top))


def best_and_worst(results: Runs) -> tuple[list[Result], list[Result]]:
    """:func:`fmnist_helpers.ranking.best_and_worst`: one model's seeds from the best group
    and one from the worst, each naming the group it stands for."""
    from . import ranking

    return ranking.best_and_worst(results)


# ---------------------------------------------------------------------------------------------
# One run: its mistakes, its first layer, its dead units
# ---------------------------------------------------------------------------------------------

def data_for(result: Result, data: FashionMNIST | None) -> FashionMNIST:
    """The data a run was scored on: ``data`` when given (checked), else loaded."""
    data = get_data(result.quick) if data is None else data
    if len(data.test) != len(result.predictions):
        raise ValueError(f"the run has predictions for {len(result.predictions):,} test images, "
                         f"the data has {len(data.test):,}: load the data with quick="
                         f"{result.quick}")
    return data


@torch.no_grad()
def _probabilities(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits_in_chunks(model, images), 1)


def mistakes(result: Result, data: FashionMNIST | None = None, top: int = 16,
             against: Result | None = None) -> pd.DataFrame:
    """The run's misclassified test images, most confident first (``top`` of them).

    Columns: ``image`` (row of ``data.test``), ``true``, ``predicted`` (the stored
    prediction), ``confidence`` (the softmax probability of the predicted class, from the
    model rebuilt from the stored weights). With ``against`` (another run on the same test
    set): ``other predicted`` and ``other right``, what that run makes of the same images.
    """
    data = data_for(result, data)
    predicted, labels = result.predictions, data.test.labels
    wrong = torch.nonzero(predicted != labels).flatten()
    probs = _probabilities(result.model(), data.test.images[wrong])
    confidence = probs.gather(1, predicted[wrong].unsqueeze(1)).squeeze(1)
    check_top(top)
    order = torch.sort(confidence, descending=True, stable=True).indices[:top]
    rows = wrong[order]
    frame = pd.DataFrame({"image": rows.numpy(), "true": [CLASSES[c] for c in labels[rows]],
                          "predicted": [CLASSES[c] for c in predicted[rows]],
                          "confidence": confidence[order].numpy()})
    if against is not None:
        data_for(against, data)  # the same test set
        other = against.predictions[rows]
        frame["other predicted"] = [CLASSES[c] for c in other]
        frame["other right"] = (other == labels[rows]).numpy()
    return frame


def _name(result: Result) -> str:
    return f"{result.experiment.title} (seed {result.seed})"


@styled
def plot_mistakes(result: Result, data: FashionMNIST | None = None, top: int = 16,
                  against: Result | None = None, columns: int = 8) -> Figure:
    """The run's most confident mistakes as images, true and predicted class under each;
    with ``against``, whether that other run gets each image right."""
    data = data_for(result, data)
    table = mistakes(result, data, top, against)
    rows = max(1, -(-len(table) // columns))
    lines = 3 if against is not None else 2  # title lines above each image
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns, (1.5 + 0.16 * lines) * rows
                                                     + 0.5),
                             squeeze=False, facecolor="white", constrained_layout=True)
    for ax in axes.flat:
        ax.axis("off")
    for ax, m in zip(axes.flat, table.to_dict("records"), strict=False):
        ax.imshow(data.test.images[m["image"]].numpy(), cmap="gray_r", vmin=0, vmax=1)
        text = f"{m['true']}\n→ {m['predicted']} ({m['confidence']:.0%})"
        if against is not None:
            text += "\nother: " + ("right" if m["other right"] else m["other predicted"])
        ax.set_title(text, fontsize=7, color="black")
    fig.suptitle(f"{result.experiment.name} (seed {result.seed}): its {len(table)} most "
                 "confident mistakes", color="black")
    what = "true class, then → the predicted class and the network's confidence in it"
    if against is not None:
        what += f"; 'other': what {against.experiment.name} (seed {against.seed}) predicts"
    caption(fig, f"Each image: {what}. Confident mistakes are often ambiguous garments.")
    return fig


def first_layer_images(run: Result | nn.Module) -> torch.Tensor:
    """The first linear layer's weights as images, ``(units, 28, 28)``: unit k's input weights.

    ``run`` is a cached run or a trained model (the playground's).
    """
    model = run if isinstance(run, nn.Module) else run.model()
    weight = linear_layers(model)[0].weight.detach()
    return weight.view(-1, IMAGE_SIZE, IMAGE_SIZE).clone()


@styled
def plot_first_layer(result: Result | nn.Module, data: FashionMNIST | None = None,
                     columns: int = 10, title: str | None = None) -> Figure:
    """Each first-layer unit's weights as an image (red positive, blue negative, white zero,
    one symmetric scale for all), under the mean test image of each class: each set is one
    :func:`fmnist_helpers.mosaic.draw_mosaic`, its tiles labelled."""
    if isinstance(result, nn.Module) and data is None:
        raise ValueError("a trained model needs its data: pass data=FashionMNIST(...)")
    data = data if isinstance(result, nn.Module) else data_for(result, data)
    units = first_layer_images(result).numpy()
    limit = float(np.abs(units).max()) or 1.0
    images, labels = data.test.images.flatten(1), data.test.labels
    sums = torch.zeros(N_CLASSES, images.shape[1]).index_add_(0, labels, images)
    counts = torch.bincount(labels, minlength=N_CLASSES).unsqueeze(1)
    means = (sums / counts).view(N_CLASSES, IMAGE_SIZE, IMAGE_SIZE).numpy()  # per class, 1 pass
    columns = check_columns(columns)
    class_rows, unit_rows = -(-N_CLASSES // columns), -(-len(units) // columns)
    fig, ((class_ax, blank), (unit_ax, bar_ax)) = plt.subplots(  # both mosaics fill the width
        2, 2, figsize=(1.1 * columns + 1.2, 1.32 * (class_rows + unit_rows) + 0.8),
        width_ratios=[1, 0.02], height_ratios=[class_rows, unit_rows], facecolor="white",
        constrained_layout=True)
    blank.axis("off")
    draw_mosaic(class_ax, means, list(CLASSES), columns, "gray_r", (0, 1))
    shown = draw_mosaic(unit_ax, units, [f"unit {k + 1}" for k in range(len(units))],
                         columns, "RdBu_r", (-limit, limit))
    fig.colorbar(shown, cax=bar_ax, label="weight")
    bar_ax.grid(False)
    name = title or _name(result)
    fig.suptitle(f"{name}: mean image per class (top) and the first layer's "
                 f"{len(units)} units", color="black")
    caption(fig, "Red pixels push a unit up, blue pull it down: compare each unit with the "
                  "class silhouettes above to see which shapes it detects.")
    return fig


# ---------------------------------------------------------------------------------------------
# Per-class figures
# ---------------------------------------------------------------------------------------------

def _class_heatmap(mean: pd.DataFrame, annot, title: str, note: str, row: float) -> Figure:
    """Models x classes as a heat map of accuracy in percent, ``annot`` written in the cells."""
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(11, row * len(mean) + 1.9), constrained_layout=True)
    sns.heatmap(100 * mean, annot=annot, fmt="" if annot is not True else ".1f",
                cmap="viridis", vmin=0, vmax=100, ax=ax, annot_kws={"fontsize": 7},
                cbar_kws={"label": "test accuracy of the class (%)"})
    ax.grid(False)
    ax.set_xlabel("true class")
    ax.set_ylabel("model")
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(title)
    caption(fig, note)
    return fig


@styled
def plot_class_accuracy(results: Runs, title: str | None = None) -> Figure:
    """Per-class test accuracy of a few models: mean ± sd over each model's seeds, as a heat map."""
    mean, sd = per_class_table(results), per_class_table(results, "sd")
    labels = [[f"{100 * m:.1f}" + ("" if np.isnan(d) else f"\n±{100 * d:.1f}")
               for m, d in zip(mrow, drow, strict=True)]
              for mrow, drow in zip(mean.to_numpy(), sd.to_numpy(), strict=True)]
    return _class_heatmap(mean, np.array(labels),
                          title or "Test accuracy per class: mean ± sd over the seeds",
                          "Read across a row for a model's weak classes, down a column for a "
                          "class that every model finds hard.", 0.62)


@styled
def plot_per_class_heatmap(table: pd.DataFrame, title: str | None = None) -> Figure:
    """:func:`per_class_table` as a heatmap: models x classes, accuracy written in each cell."""
    return _class_heatmap(table, True,
                          title or "Test accuracy per class and model (mean over seeds)",
                          "Read down a column: a class that stays dark for every model is hard "
                          "for all of them; a column that changes colour is where the models "
                          "differ.", 0.45)


@styled
def plot_confusion(matrix: np.ndarray, title: str, note: str = "") -> Figure:
    """A confusion matrix: counts in the cells, colour = share of the true class's images;
    ``note`` opens the caption."""
    import seaborn as sns

    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (N_CLASSES, N_CLASSES):
        raise ValueError(f"matrix must be {N_CLASSES} x {N_CLASSES}, got {matrix.shape}")
    share = matrix / matrix.sum(1, keepdims=True)
    whole = np.allclose(matrix, matrix.round())
    diagonal = np.eye(N_CLASSES, dtype=bool)  # masked: the mistakes are what to read
    top = float(np.nanmax(np.where(diagonal, np.nan, share))) if share.size else 1.0
    fig, ax = plt.subplots(figsize=(8, 6.8), constrained_layout=True)
    sns.heatmap(share, mask=diagonal, annot=matrix, fmt=".0f" if whole else ".1f",
                cmap="Reds", vmin=0, vmax=max(top, 0.01), ax=ax, xticklabels=CLASSES,
                yticklabels=CLASSES, annot_kws={"fontsize": 7},
                cbar_kws={"label": "share of the true class's test images",
                          "format": PercentFormatter(1.0, decimals=0)})
    for k in range(N_CLASSES):  # the diagonal, greyed: right answers, not mistakes
        ax.text(k + 0.5, k + 0.5, f"{matrix[k, k]:.0f}", ha="center", va="center",
                fontsize=7, color="#999999")
    ax.grid(False)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.tick_params(axis="x", rotation=40)
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(title)
    caption(fig, (note + " " if note else "") + (
        "Rows are the true classes; the diagonal (right answers, in grey) is left uncoloured so "
        "the mistakes stand out: the darker a cell, the more of that row's images are taken "
        "for the column's class."))
    return fig


def first_kept(runs: Iterable[Result]) -> Result:
    """One model's lowest seed that did not collapse (its lowest seed, when every one did):
    the seed to show as an example."""
    (kept,) = by_model(runs).values()
    return min(kept, key=lambda r: r.seed)


def plot_model_confusion(runs: Iterable[Result]) -> Figure:
    """One model's confusion matrix, counts averaged over its seeds (collapsed ones left out),
    titled with its name; a :func:`best_and_worst` pick says in the caption which models it
    stands for."""
    stands_for = getattr(runs, "note", "")
    runs = list(runs)
    (kept,) = by_model(runs).values()
    out = len(runs) - len(kept)
    note = f", {out} collapsed left out" if out else ""
    seeds = f"{len(kept)} seed{'s' if len(kept) > 1 else ''}"
    return plot_confusion(confusion_of(runs), f"{runs[0].experiment.name}: confusion matrix, "
                                              f"mean over {seeds}{note}", stands_for)


@styled
def plot_class_bars(accuracy: np.ndarray, title: str) -> Figure:
    """One run's test accuracy per class as horizontal bars, the run's overall mean marked."""
    accuracy = np.asarray(accuracy, dtype=float)
    fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
    ax.barh(range(N_CLASSES), 100 * accuracy, color="#0173b2")
    ax.axvline(100 * np.nanmean(accuracy), color="#555555", linestyle="--", linewidth=1,
               label="mean over classes")
    ax.set_yticks(range(N_CLASSES), CLASSES)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("test accuracy of the class (%)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    caption(fig, "Short bars are the classes this network confuses with others.")
    return fig
