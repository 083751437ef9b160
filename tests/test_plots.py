"""The report's charts: labelled axes, legends, train and test told apart, best epoch marked."""

import matplotlib.pyplot as plt
import pytest

from fmnist_helpers import plots, tables
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


def test_histories_mark_train_test_validation_and_best_epoch():
    runs = [run_experiment("shallow", quick=True), run_experiment("early_stopping_val", quick=True)]
    fig = plots.plot_histories(runs)
    loss, acc = fig.axes[2], fig.axes[3]  # the early-stopping row
    assert loss.get_xlabel() == "epoch" and loss.get_ylabel() == "cross-entropy loss"
    assert acc.get_ylabel() == "accuracy"
    texts = legend_texts(acc)
    assert {"train", "test", "validation"} <= set(texts)
    assert f"best epoch ({runs[1].history.best_epoch})" in texts
    train, test = acc.get_lines()[:2]
    assert train.get_linestyle() != test.get_linestyle()  # apart without colour too
    assert train.get_color() != test.get_color()


def test_comparison_and_all_curves():
    runs = [run_experiment(n, quick=True) for n in ("shallow", "wide", "l2_first")]
    table = tables.comparison_table(runs)
    ax = plots.plot_comparison(table).axes[0]
    assert ax.get_xlabel() == "test accuracy (last epoch)"
    assert "the study's reported test acc" in legend_texts(ax)
    assert "quick mode" in ax.get_title()
    fig = plots.plot_all_curves(runs)
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == len(runs)
    assert [a.get_title() for a in fig.axes] == ["train loss", "test loss", "train accuracy",
                                                 "test accuracy"]
