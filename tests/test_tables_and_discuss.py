"""The tables and the discussion sentences, on real quick-mode runs (2 seeds per model)."""

import dataclasses
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from fmnist_helpers import describe, discuss, seeds, tables
from fmnist_helpers.engine import History
from fmnist_helpers.runs import (
    Result,
    artifacts_path,
    cached_results,
    results_dir,
    run_experiment,
    study_results,
)
from fmnist_helpers.settings import settings
from fmnist_helpers.study import PAPER

NAMES = ("shallow", "wide", "early_stopping", "l2_first")


def copy_cached_runs(source: Path, dest: Path) -> dict[Path, tuple[int, int]]:
    """Copy the runs cached in ``source`` to ``dest``: each JSON entry with its predictions and
    weights (the ``.npz`` beside it, :func:`runs.artifacts_path`), without which the entry is
    incomplete and its run is trained again; an entry without them is left behind. Returns each
    copied entry's inode and modification time."""
    copied = {}
    dest.mkdir(parents=True, exist_ok=True)
    for entry in source.glob("*.json"):
        arrays = artifacts_path(entry)
        if arrays.is_file():
            shutil.copy(arrays, dest / arrays.name)  # the arrays first, as the cache writes them
            stat = os.stat(shutil.copy(entry, dest / entry.name))
            copied[dest / entry.name] = (stat.st_ino, stat.st_mtime_ns)
    return copied


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> SimpleNamespace:
    """A private results folder holding a copy of the quick runs this session already cached
    (``make test`` runs the notebooks first); ``copied``: what was copied (see above)."""
    root = tmp_path_factory.mktemp("results")
    return SimpleNamespace(root=root, copied=copy_cached_runs(results_dir(quick=True),
                                                              root / "quick"))


@pytest.fixture(scope="module")
def models(cache) -> dict[str, seeds.Seeds]:
    """Real quick-mode runs: loaded from the private cache where it holds them, trained (into
    it) otherwise."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_RESULTS_DIR", str(cache.root))
        mp.setenv("FMNIST_PROGRESS", "0")
        yield seeds.group(study_results(NAMES, config=settings(quick=True)))


def test_copied_runs_are_loaded_not_trained_again(cache, models):
    """A run copied from the session's cache is loaded as it is: training it again would have
    replaced its entry (a new file renamed into place). Nothing to check on an empty cache."""
    for entry, (inode, mtime) in cache.copied.items():
        now = os.stat(entry)
        assert (now.st_ino, now.st_mtime_ns) == (inode, mtime), f"{entry.name} was retrained"


def as_full(result: Result) -> Result:
    """The same run, labelled as a full-settings one (to exercise the comparisons)."""
    return dataclasses.replace(result, quick=False)


def with_accs(result: Result, accs: list[float]) -> Result:
    """A copy of a real run whose test accuracies are replaced (edge cases only)."""
    rows = [dict(result.history.rows[0], epoch=i + 1, test_acc=a) for i, a in enumerate(accs)]
    return dataclasses.replace(result, history=History(rows))


def all_runs(models) -> list[Result]:
    return [r for s in models.values() for r in s]


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------

def test_comparison_table_reads(models):
    table = tables.comparison_table(all_runs(models))
    frame = table.frame
    assert frame.shape[1] <= tables.MAX_COLUMNS
    means = [models[n].summary().mean for n in frame.model]
    assert means == sorted(means, reverse=True)
    row = frame.set_index("model").loc["shallow"]
    s = models["shallow"].summary()
    assert row["test %"] == f"{100 * s.mean:.1f} ± {100 * s.sd:.1f}"
    assert row["study test %"] == f"{100 * PAPER['shallow'].test_acc:.1f}"
    assert frame.set_index("model").loc["l2_first", "study test %"] == "-"
    assert "Quick mode" in table.caption and "2 seeds" in table.caption
    html, text = table._repr_html_(), repr(table)
    for cell in frame.to_numpy().flatten():
        assert str(cell) in html.replace("&#177;", "±") or str(cell) in text  # never cut short
    assert "..." not in text and "…" not in html


def test_tables_refuse_too_many_columns_and_mixed_modes(models):
    import pandas as pd

    with pytest.raises(ValueError, match="split it"):
        tables.Table(pd.DataFrame({str(i): [1] for i in range(9)}))
    mixed = [*models["shallow"], as_full(models["wide"].runs[0])]
    with pytest.raises(ValueError, match="quick-mode and full"):
        tables.comparison_table(mixed)
    with pytest.raises(ValueError, match="at least one"):
        tables.comparison_table([])


def test_cached_results_finds_the_trained_runs_without_training(tmp_path, monkeypatch):
    from fmnist_helpers import planner

    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(tmp_path / "results"))
    trained = run_experiment("shallow", 0, config=settings(quick=True))

    def no_training(*args, **kwargs):
        raise AssertionError("cached_results must not train")

    monkeypatch.setattr(planner, "train_stack", no_training)
    found = cached_results(["shallow", "deeper"], seeds=(0, 1), config=settings(quick=True))
    assert [(r.experiment.name, r.seed) for r in found] == [("shallow", 0)]
    assert found[0].history.rows == trained.history.rows


# ---------------------------------------------------------------------------------------------
# discuss: every number comes from the runs
# ---------------------------------------------------------------------------------------------

def test_describe_seeds_states_the_seeds_numbers(models):
    s = models["wide"]
    text = discuss.describe_seeds(s)
    assert text.startswith("Over its 2 seeds, the wide network trained for")
    assert seeds.pct_sd(s.summary()) in text
    assert "a quick-mode run cannot be compared" in text
    full = seeds.Seeds([as_full(r) for r in s])
    assert "from one run: its test accuracy is" in discuss.describe_seeds(full)


def test_a_collapsed_seed_is_named_and_left_out(models):
    a, b = models["shallow"].runs
    s = seeds.Seeds([with_accs(a, [0.5, 0.09]), b])
    assert discuss.collapse_line(s) == (
        "Seed 0 learned (50.0% test accuracy after epoch 1), then died: from epoch 2 on it "
        "scores at chance (9.0% at the end). It is left out of the numbers above, which "
        "describe the other seed.")
    assert discuss.collapse_line(models["shallow"]) == ""


def test_difference_line_with_two_seeds_says_no_test_can_decide(models):
    text = discuss.difference_line(models["wide"], models["shallow"])
    assert "2 seeds each" in text
    assert "no test can reach p < 0.05 (the smallest possible p is 0.33)" in text


def test_difference_line_ties_and_signs(models):
    a0, a1 = models["shallow"].runs
    same = seeds.Seeds([with_accs(a0, [0.84]), with_accs(a1, [0.85])])
    other = seeds.Seeds([dataclasses.replace(with_accs(a0, [0.84]), experiment=models["wide"]
                                             .experiment),
                         dataclasses.replace(with_accs(a1, [0.85]), experiment=models["wide"]
                                             .experiment)])
    text = discuss.difference_line(other, same)
    assert "minus that of the shallow network is 0.0 points (95% bootstrap interval" in text
    assert "not shown to differ" in text and "same" not in text  # a tie supports nothing
    assert "-" not in discuss.points(-0.019) and discuss.points(0.01) == "1.0 point"


def test_describe_stopping_matches_the_histories(models):
    s = models["early_stopping"]
    text = discuss.describe_stopping(s)
    stopped = [r for r in s if r.history.stopped_early]
    if not stopped:
        assert "never fired" in text
    elif len(stopped) < len(s):
        assert f"ended {len(stopped)} of {len(s)} seeds early" in text
    else:
        assert "ended every seed early" in text
    assert discuss.describe_stopping(models["shallow"]) == ""


def test_rank_models_numbers_groups_only_where_the_seeds_tell_them_apart(models, monkeypatch):
    group = [models[n] for n in ("shallow", "wide", "l2_first")]
    ranked = sorted(group, key=lambda s: -s.summary().mean)
    monkeypatch.setattr(discuss, "noise_groups", lambda ms: [ranked])  # all tied
    text = discuss.rank_models(group)
    assert "1. " not in text and "the seeds give no order" in text
    assert text.index(discuss.label(ranked[0])) < text.index(discuss.label(ranked[-1]))
    monkeypatch.setattr(discuss, "noise_groups", lambda ms: [ranked[:1], ranked[1:]])
    text = discuss.rank_models(group)
    assert "1. " + discuss.label(ranked[0]) in text and "2. " in text
    assert "tell 2 groups apart" in text


def test_data_and_mode_sentences(quick_data):
    text = describe.describe_data(quick_data)
    assert "**2,000**" in text and "**500**" in text
    assert "exactly 200 training and 50 test images" in text
    assert "Quick mode" in describe.mode_line(settings(quick=True))
    assert "60,000" in describe.mode_line(settings(quick=False))


def test_model_description_counts_parameters():
    from fmnist_helpers.study import READINGS, STUDY

    text = describe.describe_model(STUDY["mixed"], config=settings(quick=False))
    assert "4 linear layers (784 → 50 → 50 → 50 → 10)" in text
    assert "batch normalisation" in text and "dropout with p = 0.2" in text
    assert "at most 50 epochs" in text and "against the best so far" in text
    assert "0.001 × Σ|W|" in describe.describe_model(STUDY["l1_l2"], config=settings(quick=False))
    full = settings(quick=False)
    prev = describe.describe_model(READINGS["early_stopping_w50_prev"], config=full)
    assert "against the epoch before" in prev
