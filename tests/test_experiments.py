import json

import pytest

from fmnist_helpers import experiments as ex
from fmnist_helpers.experiments import PAPER, QUICK_EPOCHS, QUICK_MAX_EPOCHS, STUDY, run_experiment


def test_every_paper_row_has_a_config():
    assert set(PAPER) <= set(STUDY)
    assert len(PAPER) == 10  # the study's table has ten rows
    assert all(e.notes for e in STUDY.values())


def test_quick_run_is_cached_and_reloaded(monkeypatch):
    first = run_experiment("shallow", seed=1, quick=True)
    assert first.epochs_trained == QUICK_EPOCHS and first.quick
    files = list(ex.results_dir(True).glob("*.json"))
    assert len(files) == 1 and "shallow-seed1" in files[0].name
    assert not list(ex.results_dir(True).glob("*.part"))

    def no_training(*a, **k):
        raise AssertionError("should have loaded from the cache")

    monkeypatch.setattr(ex, "train", no_training)
    again = run_experiment("shallow", seed=1, quick=True)
    assert again.history.rows == first.history.rows
    assert again.n_params == 8070


def test_cache_key_separates_what_changes_numbers():
    e = STUDY["shallow"]
    base = ex.cache_path(e, 0, 10, False, "cpu")
    assert base != ex.cache_path(e, 1, 10, False, "cpu")
    assert base != ex.cache_path(e, 0, 11, False, "cpu")
    assert base != ex.cache_path(e.replace(lr=0.05), 0, 10, False, "cpu")
    assert ex.cache_path(e, 0, 10, True, "cpu").parent.name == "quick"
    assert base.parent.name == "full"
    assert base == ex.cache_path(e.replace(notes="other words"), 0, 10, False, "cpu")


def test_corrupt_cache_file_is_retrained():
    first = run_experiment("shallow", seed=2, quick=True)
    path = next(ex.results_dir(True).glob("shallow-seed2-*.json"))
    path.write_text("{ not json")
    again = run_experiment("shallow", seed=2, quick=True)
    assert again.history.rows[-1]["test_acc"] == first.history.rows[-1]["test_acc"]
    json.loads(path.read_text())


def test_early_stopping_experiments_in_quick_mode():
    study = run_experiment("early_stopping", quick=True)
    assert study.epochs_trained <= QUICK_MAX_EPOCHS
    sound = run_experiment("early_stopping_val", quick=True)
    assert "val_loss" in sound.history.rows[0]
    assert "val_loss" not in study.history.rows[0]


def test_unknown_experiment_lists_the_names():
    with pytest.raises(KeyError, match="shallow"):
        run_experiment("shalow", quick=True)


def test_bad_early_stopping_value():
    with pytest.raises(ValueError, match="early_stopping"):
        STUDY["shallow"].replace(early_stopping="train")


@pytest.mark.slow
def test_shallow_full_reproduces_the_paper():
    """The study's baseline: 10 epochs on the full data, test accuracy about 0.844."""
    result = run_experiment("shallow", seed=0, quick=False)
    assert result.epochs_trained == 10
    assert abs(result.final["test_acc"] - PAPER["shallow"].test_acc) <= 0.01
