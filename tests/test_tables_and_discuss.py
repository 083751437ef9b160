"""The comparison table and the discussion sentences, on small real quick-mode runs."""

import dataclasses
import math
import shutil

import pytest

from fmnist_helpers import discuss, tables
from fmnist_helpers.engine import History
from fmnist_helpers.runs import Result, cached_results, results_dir, run_experiment
from fmnist_helpers.study import PAPER


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real quick-mode runs in a private cache: copied from the session's cache where it holds
    them (``make test`` runs the notebooks first), trained otherwise."""
    cache = tmp_path_factory.mktemp("results")
    (cache / "quick").mkdir()
    for path in results_dir(quick=True).glob("*.json"):  # runs this session already made
        shutil.copy(path, cache / "quick" / path.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_RESULTS_DIR", str(cache))
        mp.setenv("FMNIST_PROGRESS", "0")
        out = {
            "shallow": run_experiment("shallow", 0, quick=True),
            "shallow_1": run_experiment("shallow", 1, quick=True),
            "wide": run_experiment("wide", 0, quick=True),
            "early_stopping": run_experiment("early_stopping", 0, quick=True),
            "l2_first": run_experiment("l2_first", 0, quick=True),
        }
        yield out


def as_full(result: Result) -> Result:
    """The same run, labelled as a full-settings one (to exercise the comparisons)."""
    return dataclasses.replace(result, quick=False)


def with_accs(result: Result, accs: list[float]) -> Result:
    """A copy of a real run whose test accuracies are replaced (edge cases only)."""
    rows = [dict(result.history.rows[0], epoch=i + 1, test_acc=a) for i, a in enumerate(accs)]
    return dataclasses.replace(result, history=History(rows))


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------

def test_table_averages_seeds_and_sorts_by_test_accuracy(runs):
    table = tables.comparison_table(list(runs.values()))
    assert table.attrs["quick"] is True
    assert list(table[tables.OURS["test_acc"]]) == sorted(table[tables.OURS["test_acc"]],
                                                          reverse=True)
    assert set(table.index) == {"shallow", "wide", "early_stopping", "l2_first"}
    row = table.loc["shallow"]
    both = [runs["shallow"].final["test_acc"], runs["shallow_1"].final["test_acc"]]
    assert row["seeds"] == 2
    assert row["test acc"] == pytest.approx(sum(both) / 2)
    assert row["test acc sd"] == pytest.approx(abs(both[0] - both[1]) / math.sqrt(2))
    assert row["paper test acc"] == PAPER["shallow"].test_acc
    assert row["test diff (ours - paper)"] == pytest.approx(row["test acc"] - row["paper test acc"])
    assert row["parameters"] == runs["shallow"].n_params
    for column in ("model", "train acc (running)", "train acc (end of epoch)", "test acc",
                   "epochs trained", "parameters", "paper train acc",
                   "paper test acc", "test diff (ours - paper)"):
        assert column in table.columns
    assert math.isnan(table.loc["l2_first", "paper test acc"])  # not in the study's table


def test_table_single_seed_has_exact_values_and_no_sd(runs):
    table = tables.comparison_table([runs["wide"], runs["early_stopping"]])
    assert "test acc sd" not in table.columns
    assert table.loc["wide", "test acc"] == runs["wide"].final["test_acc"]
    assert table.loc["early_stopping", "epochs trained"] == runs["early_stopping"].epochs_trained
    html = tables.format_table(table).to_html()
    assert "Shallow network using early stopping" in html and "<table" in html


def test_table_refuses_to_mix_quick_and_full(runs):
    with pytest.raises(ValueError, match="quick-mode and full.*shallow"):
        tables.comparison_table([runs["shallow"], as_full(runs["wide"])])
    with pytest.raises(ValueError, match="no results"):
        tables.comparison_table([])


def test_cached_results_finds_the_trained_runs_without_training(tmp_path, monkeypatch):
    from fmnist_helpers import runs as store

    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(tmp_path / "results"))
    trained = run_experiment("shallow", 0, quick=True)

    def no_training(*args, **kwargs):
        raise AssertionError("cached_results must not train")

    monkeypatch.setattr(store, "train_stack", no_training)
    found = cached_results(["shallow", "deeper"], seeds=(0, 1), quick=True)
    assert [(r.experiment.name, r.seed) for r in found] == [("shallow", 0)]
    assert found[0].history.rows == trained.history.rows


# ---------------------------------------------------------------------------------------------
# discuss: every number comes from the run
# ---------------------------------------------------------------------------------------------

def test_describe_run_states_the_runs_own_numbers(runs):
    r = runs["wide"]
    text = discuss.describe_run(r)
    assert f"trained for {r.epochs_trained} epochs" in text
    assert discuss.pct(r.final["test_acc"]) in text
    assert discuss.pct(r.final["train_acc"]) in text
    assert f"{r.n_params:,}" in text
    g = r.final["train_acc"] - r.final["test_acc"]
    if abs(g) >= discuss.TIE:
        assert discuss.points(g) in text
    assert "quick-mode run cannot be compared" in text
    assert discuss.pct(PAPER["wide"].test_acc) in text  # the study's number, named as such


def test_loss_against_chance(runs):
    text = discuss.loss_vs_chance(runs["shallow"], runs["wide"])
    assert text.count("ln 10 = 2.303") == 1
    assert f"{runs['wide'].history['train_loss'][-1]:.3f} over its last" in text


def test_paper_line_says_above_or_below(runs):
    r = as_full(runs["shallow"])
    d = r.final["test_acc"] - PAPER["shallow"].test_acc
    text = discuss.paper_line(r)
    assert ("below" if d < 0 else "above") in text and discuss.points(d) in text
    assert "no row" in discuss.paper_line(runs["l2_first"])


def test_compare_runs_names_the_winner(runs):
    a, b = runs["wide"], runs["shallow"]
    winner = a if a.final["test_acc"] > b.final["test_acc"] else b
    text = discuss.compare_runs(a, b)
    assert f"**{discuss.label(winner)} is ahead by" in text
    assert discuss.points(a.final["test_acc"] - b.final["test_acc"]) in text
    assert "times the parameters" in text
    small_change = dataclasses.replace(b, n_params=b.n_params + 40)
    assert "40 more parameters than" in discuss.compare_runs(small_change, b)
    assert "level" in discuss.compare_runs(a, a)


def test_compare_runs_counts_dips(runs):
    a = with_accs(runs["shallow"], [0.5, 0.6, 0.55, 0.7])
    b = with_accs(runs["wide"], [0.5, 0.6, 0.7, 0.8])
    assert discuss.dips(a) == (1, 3, pytest.approx(0.05))
    text = discuss.compare_runs(a, b)
    assert "fell once in 3 steps (by at most 5.0 points)" in text
    assert "never fell in 3 steps" in text
    assert "fell in 1 of 3 epoch-to-epoch steps, by at most 5.0 points" in discuss.describe_run(a)
    assert "never fell from one epoch to the next (3 steps)" in discuss.describe_run(b)


def test_describe_stopping_matches_the_history(runs):
    r = runs["early_stopping"]
    text = discuss.describe_stopping(r)
    if r.history.stopped_early:
        assert f"after epoch {r.epochs_trained}" in text
        assert f"at epoch {r.history.best_epoch}" in text
    else:
        assert f"used all {r.epochs_trained} epochs" in text
    assert discuss.describe_stopping(runs["shallow"]) == ""


def test_rank_runs_orders_best_first(runs):
    group = [runs["shallow"], runs["wide"], runs["l2_first"]]
    text = discuss.rank_runs(group)
    best = max(group, key=lambda r: r.final["test_acc"])
    assert text.index("1. " + discuss.label(best)) >= 0


def test_data_and_mode_sentences(quick_data):
    text = discuss.describe_data(quick_data)
    assert "**2,000**" in text and "**500**" in text
    assert "exactly 200 training and 50 test images" in text
    assert "Quick mode" in discuss.mode_line(True)
    assert "60,000" in discuss.mode_line(False)


def test_model_description_counts_parameters():
    from fmnist_helpers.study import STUDY

    text = discuss.describe_model(STUDY["mixed"], quick=False)
    assert "4 linear layers (784 → 50 → 50 → 50 → 10)" in text
    assert "batch normalisation" in text and "dropout with p = 0.2" in text
    assert "at most 50 epochs" in text
    assert "0.001 × Σ|W|" in discuss.describe_model(STUDY["l1_l2"], quick=False)


def test_summarize_table(runs):
    table = tables.comparison_table([as_full(r) for r in runs.values()])
    text = discuss.summarize_table(table)
    best = table.index[0]
    assert f"Our best model is {discuss.LABELS[best]}" in text
    assert "Kendall's rank correlation" in text
    quick = discuss.summarize_table(tables.comparison_table(list(runs.values())))
    assert "quick-mode runs" in quick
