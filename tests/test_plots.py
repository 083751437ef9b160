"""The report's charts: labelled axes, legends, train and test told apart, best epoch marked."""

import matplotlib.pyplot as plt
import pytest

from fmnist_helpers import plots, seeds
from fmnist_helpers.runs import run_experiment


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_examples_and_class_balance(quick_data):
    fig = plots.plot_examples(quick_data, per_class=3)
    assert len(fig.axes) == 3 * len(quick_data.classes)
    assert fig.axes[0].get_ylabel() == quick_data.classes[0]
    ax = plots.plot_class_balance(quick_data).axes[0]
    assert ax.get_xlabel() == "class" and "share" in ax.get_ylabel()
    texts = legend_texts(ax)
    assert any(t.startswith("train") for t in texts) and any(t.startswith("test") for t in texts)


def test_history_marks_train_test_validation_and_best_epoch():
    run = run_experiment("early_stopping_val")
    fig = plots.plot_history(run)
    loss, acc = fig.axes
    assert loss.get_xlabel() == "epoch" and loss.get_ylabel() == "cross-entropy loss"
    texts = legend_texts(acc)
    assert {"train", "test", "validation"} <= set(texts)
    assert f"best epoch ({run.history.best_epoch})" in texts
    train, test = acc.get_lines()[:2]
    assert train.get_linestyle() != test.get_linestyle()  # apart without colour too
    assert train.get_color() != test.get_color()


def captions(fig) -> list[str]:
    return [t.get_text() for t in fig.texts]


def test_seed_curves_show_every_seed_and_the_median():
    shallow, val = seeds.load_or_train("shallow", "early_stopping_val")
    fig = plots.plot_seeds_curves([shallow, val])
    acc = fig.axes[3]  # the early-stopping row, accuracy
    assert {"train (median)", "test (median)", "validation (median)"} <= set(legend_texts(acc))
    # per split: one faint line per seed, then the bold median
    assert len(acc.get_lines()) == 3 * (len(val) + 1)
    assert acc.get_title().startswith(val.experiment.title)
    assert any("seeds" in c and "median" in c for c in captions(fig))


def test_all_curves_are_small_multiples_with_distinct_series():
    results = seeds.load_or_train("shallow", "deeper", "wide")
    fig = plots.plot_all_curves([r for s in results for r in s])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["1. Depth", "2. Width", "3. Dropout",
                                                  "4. Early stopping", "5. Batch norm", "7. Mixed"]
    for ax in visible:
        lines = ax.get_lines()
        assert len(lines) <= 6
        styles = {(line.get_color(), str(line.get_linestyle())) for line in lines}
        colours = {line.get_color() for line in lines}
        assert len(styles) == len(colours) == len(lines)  # colour and style both differ
    assert captions(fig)


def test_comparison_chart_marks_seeds_medians_and_the_study():
    results = [r for s in seeds.load_or_train("shallow", "wide", "l2_first") for r in s]
    fig = plots.plot_comparison(results)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "test accuracy, last epoch"
    assert {"our seeds", "our median", "the study's single run"} <= set(legend_texts(ax))
    assert any("Quick mode" in c for c in captions(fig))


def test_one_style_for_every_series():
    from fmnist_helpers import style

    assert len({style.series(i)["color"] for i in range(style.MAX_SERIES)}) == style.MAX_SERIES
    with pytest.raises(ValueError, match="at most 6"):
        style.series(6)


def accuracy_axes(fig):
    """Every axis of the figure labelled as an accuracy, with the Axes it belongs to."""
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis, label in ((ax.xaxis, ax.get_xlabel()), (ax.yaxis, ax.get_ylabel())):
            if "accuracy" in label:
                yield ax, axis, label


def test_every_accuracy_axis_is_in_percent():
    from matplotlib.ticker import PercentFormatter

    shallow, deeper, val = seeds.load_or_train("shallow", "deeper", "early_stopping_val")
    results = [r for s in (shallow, deeper, val) for r in s]
    figures = [plots.plot_seeds_curves([shallow, deeper]), plots.plot_all_curves(results),
               plots.plot_comparison(results), plots.plot_history(shallow.runs[0]),
               plots.plot_overlay({"a": shallow.runs[0], "b": deeper.runs[0]})]
    found = 0
    for fig in figures:
        for ax, axis, label in accuracy_axes(fig):
            found += 1
            assert isinstance(axis.get_major_formatter(), PercentFormatter), (label, ax.title)
            low, high = axis.get_view_interval()
            assert -0.05 <= low and high <= 1.05, (label, low, high)  # fractions shown as %
    assert found >= 2 + 1 + 1 + 1 + 1  # two curve rows, a panel, the chart, history, overlay


def test_comparison_axis_fits_the_data_and_puts_collapsed_seeds_at_its_edge():
    shallow, deeper = seeds.load_or_train("shallow", "deeper")
    results = [*shallow, *deeper]
    ax = plots.plot_comparison(results).axes[0]
    left, _ = ax.get_xlim()
    collapsed = [r.final["test_acc"] for r in deeper.collapsed]
    if collapsed:  # quick mode's deeper network collapses; the axis does not reach down to it
        assert left > max(collapsed)
        assert "collapsed seed (at the edge)" in legend_texts(ax)
    kept = [r.final["test_acc"] for r in shallow]
    assert left < min(kept)


def test_all_curves_panels_have_their_own_range_and_the_seeds_spread():
    results = [r for s in seeds.load_or_train("shallow", "deeper", "wide") for r in s]
    fig = plots.plot_all_curves(results)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len({ax.get_ylim() for ax in visible}) > 1  # not one shared range
    assert any(ax.collections for ax in visible)  # shaded spread of the seeds


def test_seed_curves_draw_the_gap():
    shallow, wide = seeds.load_or_train("shallow", "wide")
    fig = plots.plot_seeds_curves([shallow, wide])
    notes = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum(n.startswith("train-test gap ") and n.endswith(" pts") for n in notes) == 2
