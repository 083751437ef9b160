"""What the networks learned: per-class accuracy, confusions, mistakes, first-layer features.

Everything here reads a run's stored test predictions and final weights (see
:class:`fmnist_helpers.results.Artifacts`); nothing is trained. Over several seeds of a model, the
seeds that collapsed to chance (:func:`fmnist_helpers.seeds.collapsed`) are left out of means
and spreads, as in the rest of the report. Every figure function returns a matplotlib
``Figure`` with a one-line caption under it saying what to look at. (Dead units are counted in
:mod:`fmnist_helpers.diagnostics`.) The module runs past the package's usual ~450 lines because
its figures share its counting helpers and are called as ``learned.plot_*`` by the notebooks and
the playground alike.
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
from .results import Result, get_data
from .seeds import group, pct
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


def _flat(results: Runs) -> list[Result]:
    """The runs of a mapping model -> runs, or of an iterable of runs, as one list."""
    if isinstance(results, Mapping):
        return [r for runs in results.values() for r in runs]
    return list(results)


def _by_model(results: Runs) -> dict[str, list[Result]]:
    """Each model's seeds that did not collapse (all, when every one did), by experiment name."""
    groups = group(_flat(results))
    if not groups:
        raise ValueError("no results given")
    return {name: seeds.kept for name, seeds in groups.items()}


def confusion_of(results: Iterable[Result]) -> np.ndarray:
    """The mean confusion matrix of one model's seeds (images per run; collapsed seeds out)."""
    groups = _by_model(results)
    if len(groups) != 1:
        raise ValueError(f"confusion_of takes the seeds of one model, got {sorted(groups)}")
    return np.mean([run_confusion(r) for r in next(iter(groups.values()))], axis=0)


# ---------------------------------------------------------------------------------------------
# Per class, over models
# ---------------------------------------------------------------------------------------------

def per_class_table(results: Runs, statistic: str = "mean") -> pd.DataFrame:
    """Per-class test accuracy, models (rows, by experiment name) x classes: ``statistic``
    ("mean", "sd", "min" or "max") over each model's seeds, collapsed seeds left out."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    rows = {}
    for name, runs in _by_model(results).items():
        per_run = np.array([per_class_accuracy(_test_labels(r), r.predictions) for r in runs])
        if statistic == "sd":
            rows[name] = (per_run.std(0, ddof=1) if len(runs) > 1
                          else np.full(N_CLASSES, np.nan))
        else:
            rows[name] = getattr(np, statistic)(per_run, axis=0)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(CLASSES))
    frame.index.name = "model"
    return frame


def _top(series: pd.Series, top: int, scale: float = 100) -> pd.Series:
    """The first ``top`` entries, and the next ones that tie with the last as shown (one
    decimal of ``scale`` times the value: of a percentage by default)."""
    if isinstance(top, bool) or int(top) != top or top < 1:
        raise ValueError(f"top must be a whole number >= 1, got {top!r}")
    shown = np.round(scale * series.to_numpy(), 1)
    n = min(top, len(series))
    while n < len(series) and shown[n] == shown[n - 1]:
        n += 1
    return series.iloc[:n]


def classes_where_models_differ(results: Runs, top: int = 3) -> pd.DataFrame:
    """Classes by the spread of the models' mean accuracy (best minus worst model), largest
    first: columns ``spread``, ``best model``, ``best``, ``worst model``, ``worst``."""
    table = per_class_table(results)
    frame = pd.DataFrame({"spread": table.max(axis=0) - table.min(axis=0),
                          "best model": table.idxmax(axis=0), "best": table.max(axis=0),
                          "worst model": table.idxmin(axis=0), "worst": table.min(axis=0)})
    frame.index.name = "class"
    order = frame.sort_values("spread", ascending=False, kind="stable")
    return order.loc[_top(order["spread"], top).index]


def most_confused_pairs(results_by_model: Runs, top: int = 5) -> pd.DataFrame:
    """The most frequent mistakes as ORDERED pairs, true class -> predicted class.

    Ordered, because the two directions differ (a shirt called a T-shirt is not a T-shirt
    called a shirt) and summing them would hide which class absorbs the other. ``images``: the
    mistake's count per run, averaged over each model's seeds and then over the models;
    ``share``: that count over the true class's test images; ``fewest``/``most``: the range
    of the per-model counts. Ties at one decimal with the last row join it.
    """
    means = {n: np.mean([run_confusion(r) for r in runs], axis=0)
             for n, runs in _by_model(results_by_model).items()}
    stacked = np.stack(list(means.values()))  # (models, true, predicted)
    off = ~np.eye(N_CLASSES, dtype=bool)
    rows = []
    for true, predicted in zip(*np.nonzero(off), strict=True):
        counts = stacked[:, true, predicted]
        class_size = stacked[0, true].sum()
        rows.append({"true": CLASSES[true], "predicted": CLASSES[predicted],
                     "images": counts.mean(), "share": counts.mean() / class_size,
                     "fewest": counts.min(), "most": counts.max()})
    frame = pd.DataFrame(rows).sort_values("images", ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    return frame.loc[_top(frame["images"], top, scale=1).index]


# ---------------------------------------------------------------------------------------------
# In words
# ---------------------------------------------------------------------------------------------

def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _named(names: list[str], limit: int, noun: str) -> str:
    """``names`` joined, at most ``limit`` of them, the rest counted: "A, B and 4 other
    classes"."""
    if len(names) <= limit:
        return _join(names)
    rest = len(names) - limit
    return _join([*names[:limit], f"{rest} other {noun}{'es' if rest > 1 else ''}"])


def _ranked(series: pd.Series, limit: int) -> list[str]:
    """``*Shirt* (62.3% of its test images)``, then ``*Coat* (70.1%)``; classes tied at one
    decimal grouped, ``*A* and *B* (both 80.1% of their test images)``; at most ``limit``
    named, the others of the last group counted."""
    out, rounded, named = [], series.round(3), 0
    for value in dict.fromkeys(rounded):
        names = [f"*{c}*" for c in rounded.index[rounded == value]]
        both = "both " if len(names) == 2 else "all " if len(names) > 2 else ""
        whose = ("" if out else " of its test images" if len(names) == 1 else
                 " of their test images")
        out.append(f"{_named(names, max(1, limit - named), 'class')} ({both}{pct(value)}{whose})")
        named += len(names)
    return out


def _who(results: list[Result], groups: dict[str, list[Result]]) -> str:
    """Whose classes a sentence describes: one run, one model's seeds, or several models."""
    from .discuss import label

    runs = [r for rs in groups.values() for r in rs]
    out = sum(len(s.collapsed) for s in group(results).values() if len(s.kept) < len(s))
    note = "" if not out else f"; {out} collapsed seed{'s' if out > 1 else ''} left out"
    if len(groups) > 1:
        return (f"Over the {len(groups)} models (each model's mean over its seeds{note}, then "
                "the mean over the models)")
    if len(runs) == 1 and not note:
        return f"For {label(runs[0])} (seed {runs[0].seed})"
    return f"For {label(runs[0])} (mean over its {len(runs)} seeds{note})"


def describe_classes(results: Runs, top: int = 3) -> str:
    """Markdown naming the hardest classes, the most frequent confusions and, with several
    models, the class they differ on most; every number computed from the runs."""
    from .discuss import label

    results = _flat(results)
    groups = _by_model(results)
    means = per_class_table(groups).mean(axis=0)
    hardest = _top(means.sort_values(kind="stable"), top)
    easiest = _top(means.sort_values(ascending=False, kind="stable"), 1)
    noun, verb = ("class", "is") if len(hardest) == 1 else ("classes", "are")
    text = (f"{_who(results, groups)}, the {noun} classified right least often {verb} "
            f"{_join(_ranked(hardest, top))}; the easiest "
            f"{'is' if len(easiest) == 1 else 'are'} {_ranked(easiest, top)[0]}.")
    pairs = most_confused_pairs(groups, top=top)
    sizes = get_data(results[0].quick).test.class_counts()
    said = [f"*{p.true}* taken for *{p.predicted}* ({p.images:.1f} of "
            f"{sizes[CLASSES.index(p.true)]:,}, {pct(p.share)})"
            for p in pairs.iloc[:top].itertuples()]
    if len(pairs) > top:
        more = len(pairs) - top
        said.append(f"{more} other pair{'s' if more > 1 else ''} as frequent")
    per = "test images per run" + ("" if len(groups) == 1 else ", averaged over the models")
    text += f" The most frequent mistake{'s' if len(said) > 1 else ''} ({per}): {_join(said)}."
    if len(groups) > 1:
        differ = classes_where_models_differ(groups, top=1)
        cls, row = differ.index[0], differ.iloc[0]
        text += (f" The models differ most on *{cls}*: from {pct(row['worst'])} "
                 f"({label(groups[row['worst model']][0])}) to {pct(row['best'])} "
                 f"({label(groups[row['best model']][0])}).")
    return text


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
    _top(pd.Series([0.0]), top)  # checks top
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
    one symmetric scale for all), under the mean test image of each class."""
    data = data if isinstance(result, nn.Module) else data_for(result, data)
    units = first_layer_images(result)
    limit = float(units.abs().max()) or 1.0
    unit_rows = -(-len(units) // columns)
    fig, axes = plt.subplots(1 + unit_rows, columns,
                             figsize=(1.1 * columns + 1.2, 1.25 * (1 + unit_rows) + 0.6),
                             squeeze=False, facecolor="white", constrained_layout=True)
    for ax in axes.flat:
        ax.axis("off")
    for c, ax in enumerate(axes[0][:N_CLASSES]):
        mean = data.test.images[data.test.labels == c].mean(0)
        ax.imshow(mean.numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(CLASSES[c], fontsize=7, color="black")
    for k, ax in enumerate(axes[1:].flat[:len(units)]):
        shown = ax.imshow(units[k].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"unit {k + 1}", fontsize=7, color="black")
    fig.colorbar(shown, ax=axes[1:].ravel().tolist(), shrink=0.8, label="weight")
    name = title or _name(result)
    fig.suptitle(f"{name}: mean image per class (top) and the first layer's "
                 f"{len(units)} units", color="black")
    caption(fig, "Red pixels push a unit up, blue pull it down: compare each unit with the "
                  "class silhouettes above to see which shapes it detects.")
    return fig


def confused_pairs_table(results_by_model: Runs, top: int = 5) -> Table:
    """:func:`most_confused_pairs` as a table that reads (counts and shares rounded)."""
    frame = most_confused_pairs(results_by_model, top)
    shown = pd.DataFrame({
        "true class": frame["true"], "taken for": frame["predicted"],
        "images per run": frame["images"].map(lambda x: f"{x:.1f}"),
        "share of the class": frame["share"].map(lambda x: f"{100 * x:.1f}%"),
        "fewest-most over models": [f"{a:.1f}-{b:.1f}" for a, b in
                                    zip(frame["fewest"], frame["most"], strict=True)]})
    return Table(shown, "Images per run: mean over each model's seeds, then over the models.")


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
def plot_confusion(matrix: np.ndarray, title: str) -> Figure:
    """A confusion matrix: counts in the cells, colour = share of the true class's images."""
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
    caption(fig, "Rows are the true classes; the diagonal (right answers, in grey) is left "
                  "uncoloured so the mistakes stand out: the darker a cell, the more of that "
                  "row's images are taken for the column's class.")
    return fig


def best_and_worst(results: Runs) -> tuple[list[Result], list[Result]]:
    """The seeds of the model with the highest and of the one with the lowest mean accuracy."""
    from .seeds import test_acc

    models = group(_flat(results))
    ranked = sorted(models.values(), key=lambda s: -s.summary(test_acc).mean)
    return ranked[0].runs, ranked[-1].runs


def first_kept(runs: Iterable[Result]) -> Result:
    """One model's lowest seed that did not collapse (its lowest seed, when every one did):
    the seed to show as an example."""
    (kept,) = _by_model(runs).values()
    return min(kept, key=lambda r: r.seed)


def plot_model_confusion(runs: Iterable[Result]) -> Figure:
    """One model's confusion matrix, counts averaged over its seeds (collapsed ones left out),
    titled with its name."""
    runs = list(runs)
    (kept,) = _by_model(runs).values()
    out = len(runs) - len(kept)
    note = f", {out} collapsed left out" if out else ""
    seeds = f"{len(kept)} seed{'s' if len(kept) > 1 else ''}"
    return plot_confusion(confusion_of(runs), f"{runs[0].experiment.name}: confusion matrix, "
                                              f"mean over {seeds}{note}")


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
