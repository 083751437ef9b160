import json

import pytest
import torch

from fmnist_helpers import engine, planner
from fmnist_helpers import runs as ex
from fmnist_helpers.runs import plan, run_experiment, study_results
from fmnist_helpers.settings import QUICK_EPOCHS, QUICK_MAX_EPOCHS, settings
from fmnist_helpers.study import PAPER, READINGS, STUDY, Experiment


def test_every_paper_row_has_a_config():
    assert set(PAPER) <= set(STUDY)
    assert len(PAPER) == 10  # the study's table has ten rows
    assert all(e.notes for e in STUDY.values())


def test_quick_run_is_cached_and_reloaded(monkeypatch):
    first = run_experiment("shallow", seed=1, config=settings(quick=True))
    assert first.epochs_trained == QUICK_EPOCHS and first.quick
    files = list(ex.results_dir(True).glob("*.json"))
    assert len(files) == 1 and "shallow-seed1" in files[0].name
    assert not list(ex.results_dir(True).glob("*.part"))

    def no_training(*a, **k):
        raise AssertionError("should have loaded from the cache")

    monkeypatch.setattr(planner, "train_stack", no_training)
    again = run_experiment("shallow", seed=1, config=settings(quick=True))
    assert again.history.rows == first.history.rows
    assert again.n_params == 8070


def test_cache_key_separates_what_changes_numbers():
    e = STUDY["shallow"]
    base = ex.cache_path(e, 0, False, "cpu")
    assert base != ex.cache_path(e, 1, False, "cpu")
    assert base != ex.cache_path(e.replace(epochs=11), 0, False, "cpu")
    assert base != ex.cache_path(e.replace(lr=0.05), 0, False, "cpu")
    assert base != ex.cache_path(e, 0, False, "cuda")
    assert ex.cache_path(e, 0, True, "cpu").parent.name == "quick"
    assert base.parent.name == "full"
    assert base == ex.cache_path(e.replace(notes="other words"), 0, False, "cpu")


def test_corrupt_cache_file_is_retrained():
    first = run_experiment("shallow", seed=2, config=settings(quick=True))
    path = next(ex.results_dir(True).glob("shallow-seed2-*.json"))
    path.write_text("{ not json")
    again = run_experiment("shallow", seed=2, config=settings(quick=True))
    assert again.history.rows[-1]["test_acc"] == first.history.rows[-1]["test_acc"]
    json.loads(path.read_text())


def test_early_stopping_experiments_in_quick_mode():
    study = run_experiment("early_stopping", config=settings(quick=True))
    assert study.epochs_trained <= QUICK_MAX_EPOCHS
    sound = run_experiment("early_stopping_val", config=settings(quick=True))
    assert "val_loss" in sound.history.rows[0]
    assert "val_loss" not in study.history.rows[0]


def test_unknown_experiment_lists_the_names():
    with pytest.raises(KeyError, match="shallow"):
        run_experiment("shalow", config=settings(quick=True))


@pytest.mark.parametrize("bad, match", [
    (dict(early_stopping="train"), "early_stopping"), (dict(lr=0), "learning rate"),
    (dict(lr=-1), "learning rate"), (dict(dropout=1.0), "dropout"), (dict(hidden=0), "width"),
    (dict(l2=-1e-4), "l2"), (dict(epochs=0), "epochs"), (dict(n_linear=2.5), "n_linear"),
])
def test_bad_experiments_are_refused_by_name_without_drawing_randomness(bad, match):
    state = torch.get_rng_state()
    with pytest.raises(ValueError, match=f"experiment 'shallow': .*{match}"):
        STUDY["shallow"].replace(**bad)
    Experiment("mine", "My network", hidden=64)
    assert torch.equal(torch.get_rng_state(), state)


def test_the_planner_stacks_by_shape_and_training_set():
    runs = [(e, s) for e in [*STUDY.values(), *READINGS.values()] for s in range(5)]
    stacks = plan(runs, max_stack=40)
    planned = [(e, t.seed) for stack in stacks for t in stack for e in t.runs]
    assert sorted(planned, key=str) == sorted(runs, key=str)  # every run once
    for stack in stacks:
        assert len(stack) <= 40
        runs_in = [e for t in stack for e in t.runs]
        assert len({(e.n_linear, e.hidden, e.batch_norm) for e in runs_in}) == 1
        assert len({e.early_stopping == "validation" for e in runs_in}) == 1
        for t in stack:  # a trajectory: one seed, one training, several ends
            assert len({(e.lr, e.l1, e.l2, e.l2_first, e.dropout) for e in t.runs}) == 1
    shapes = {(e.n_linear, e.hidden, e.batch_norm, e.early_stopping == "validation")
              for e, _ in runs}
    assert len(stacks) < len(shapes) + 4  # a few stacks, not one per experiment
    assert sum(len(s) for s in stacks) <= len(runs) - 40  # shared trainings


def test_with_workers_the_planner_cuts_only_a_stack_over_a_workers_share():
    """One experiment's five seeds are cut between two workers; in the whole report, where no
    stack costs half of the total, a shape is cut only past MAX_UNITS first-layer units."""
    from fmnist_helpers.explorer import grid_runs

    alone = plan([(STUDY["wide"], s) for s in range(5)], parts=2)
    assert sorted(sorted(t.seed for t in stack) for stack in alone) == [[0, 2, 4], [1, 3]]
    runs = [(e, s) for e in [*STUDY.values(), *READINGS.values()] for s in range(5)]
    runs += grid_runs(config=settings(quick=False))
    stacks = plan(runs, parts=2)
    kinds = [(ex.shape_of(stack[0].runs[0]), stack[0].validation) for stack in stacks]
    for kind in set(kinds):
        models = sum(len(s) for s, k in zip(stacks, kinds, strict=True) if k == kind)
        assert kinds.count(kind) == -(-models * kind[0].hidden // ex.MAX_UNITS), kind
    assert len(kinds) > len(set(kinds))  # the wide shallow networks: 27 x 50 units
    costs = [ex.cost(stack) for stack in stacks]
    assert costs == sorted(costs, reverse=True) and max(costs) < sum(costs) / 2
    # an early-stopping run is planned at STOP_GUESS epochs, not at its cap of 50
    stopping = plan([(STUDY["early_stopping_val"], 0)])[0]
    fixed = plan([(STUDY["early_stopping_val"].replace(early_stopping=None,
                                                       epochs=ex.STOP_GUESS), 0)])[0]
    assert ex.cost(stopping) == ex.cost(fixed) < ex.cost(
        plan([(STUDY["early_stopping_val"].replace(early_stopping=None), 0)])[0])


def test_study_results_trains_what_is_missing_in_one_pass_and_caches_each_run(monkeypatch):
    first = run_experiment("dropout", seed=1, config=settings(quick=True))  # in the cache already
    calls = []
    real = planner.train_stack

    def counting(shape, members, *a, **k):
        calls.append(len(members))
        return real(shape, members, *a, **k)

    monkeypatch.setattr(planner, "train_stack", counting)
    results = study_results(["shallow", "dropout", "l1", "deeper"], seeds=[0, 1],
                            config=settings(quick=True))
    assert [(r.experiment.name, r.seed) for r in results] == [
        (n, s) for n in ("shallow", "dropout", "l1", "deeper") for s in (0, 1)]
    assert sorted(calls) == [2, 5]  # deeper alone; the 3-layer, 10-unit runs in one stack
    assert results[3].history.rows == first.history.rows  # loaded, and equal anyway
    again = run_experiment("shallow", 0, config=settings(quick=True))
    assert results[0].history.rows == again.history.rows
    assert len(calls) == 2  # that last one came from the cache


@pytest.mark.slow
def test_shallow_full_reproduces_the_paper():
    """The study's baseline: 10 epochs on the full data, test accuracy about 0.844."""
    result = run_experiment("shallow", seed=0, config=settings(quick=False))
    assert result.epochs_trained == 10
    assert abs(result.final["test_acc"] - PAPER["shallow"].test_acc) <= 0.01


def test_worker_processes_give_the_same_numbers(monkeypatch, tmp_path):
    """Stacks trained in spawned processes: the same histories, cached where expected."""
    names = ["shallow", "deeper", "batch_norm"]
    here = study_results(names, seeds=[0, 1], config=settings(quick=True))
    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(tmp_path / "other"))
    monkeypatch.setenv("FMNIST_WORKERS", "2")
    there = study_results(names, seeds=[0, 1], config=settings(quick=True))
    assert [r.history.rows for r in there] == [r.history.rows for r in here]
    assert len(list(ex.results_dir(True).glob("*.json"))) == 6
    for a, b in zip(here, there, strict=True):  # the workers send paths; read here, equal
        assert b.artifacts.path is not None and b.artifacts._loaded is None
        assert torch.equal(a.predictions, b.predictions)


@pytest.mark.parametrize("sample", [None, 500])
def test_runs_that_differ_only_in_when_they_stop_share_one_training(sample, monkeypatch,
                                                                      tmp_path):
    """The shallow network is the early-stopping run cut at 10 epochs (quick: 2), and the
    early-stopping readings are the same training read by another rule: one member trains for
    them all, and each gets exactly the history it gets when trained alone. Also when the
    epochs before a run's last measure ``train_acc`` on a sample (the full data's case; 500 of
    the quick subset's 2,000 rows here) and a run's end on the trajectory is exact."""
    if sample is not None:
        monkeypatch.setattr(engine, "TRAIN_SAMPLE", sample)
    names = ["shallow", "early_stopping", "early_stopping_w10_delta0.001",
             "early_stopping_w10_delta0.0001", "dropout"]
    stacks = plan([(STUDY.get(n) or READINGS[n], 0) for n in names])
    assert [len(t.runs) for s in stacks for t in s] == [4, 1]
    together = study_results(names, seeds=[0], config=settings(quick=True))
    for name, result in zip(names, together, strict=True):
        monkeypatch.setenv("FMNIST_RESULTS_DIR", str(tmp_path / name))
        alone = run_experiment(name, 0, config=settings(quick=True))
        assert alone.history.rows == result.history.rows, name
        assert not any("train_acc_sample" in row for row in result.history.rows), name
        assert alone.history.stopped_early == result.history.stopped_early, name
        assert alone.history.best_epoch == result.history.best_epoch, name
        # the predictions and weights of the run's own last epoch, not the trajectory's
        assert result.artifacts.epoch == len(result.history) == alone.artifacts.epoch, name
        assert torch.equal(alone.predictions, result.predictions), name
        for a, b in zip(alone.state_dict().values(), result.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    assert len(together[0].history) == QUICK_EPOCHS
    if len(together[1].history) > QUICK_EPOCHS:  # the trajectory went on past the cut
        assert not torch.equal(together[0].state_dict()["1.weight"],
                               together[1].state_dict()["1.weight"])


def test_two_processes_training_the_same_run_leave_one_whole_entry(tmp_path):
    """Two notebooks open on the same run: both finish, one valid cache file, no leftovers;
    a temporary file left by a killed process is cleaned on the next training."""
    import os
    import subprocess
    import sys

    env = os.environ | {"FMNIST_RESULTS_DIR": str(tmp_path), "FMNIST_PROGRESS": "0"}
    code = ("from fmnist_helpers.runs import run_experiment, settings; "
            "run_experiment('deeper', 3, config=settings(quick=True))")
    folder = tmp_path / "quick"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    leftover = folder / f"deeper-seed3-x.pid{dead}.abc.part"
    leftover.write_text("{ half a")
    both = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
            for _ in range(2)]
    for p in both:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    files = list(folder.glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["seed"] == 3
    assert not list(folder.glob("*.part"))


def test_a_run_keeps_its_last_epochs_predictions_and_weights(quick_data):
    """Stored beside the entry, read on first use: accuracy and model agree with the history."""
    trained = run_experiment("dropout", 0, config=settings(quick=True))
    loaded = run_experiment("dropout", 0, config=settings(quick=True))
    assert loaded.artifacts._loaded is None  # nothing read yet
    assert torch.equal(loaded.predictions, trained.predictions)
    assert loaded.predictions.dtype == torch.int64 and loaded.predictions.shape == (500,)
    hits = (loaded.predictions == quick_data.test.labels).sum()
    assert int(hits) / 500 == loaded.final["test_acc"]
    model = loaded.model()
    assert not model.training and isinstance(model[3], torch.nn.Dropout)
    with torch.no_grad():
        guessed = model(quick_data.test.images).argmax(1)
    assert (guessed == loaded.predictions).float().mean() >= 0.99  # float rounding aside
    assert ex.artifacts_path(next(ex.results_dir(True).glob("dropout-*.json"))).stat().st_size \
        < 60_000


@pytest.mark.parametrize("old", ["no artifacts", "other format", "npz missing"])
def test_an_entry_without_predictions_and_weights_is_trained_again(old, monkeypatch):
    """An entry from before they were kept (or of another format) is never taken as complete."""
    first = run_experiment("shallow", 4, config=settings(quick=True))
    path = next(ex.results_dir(True).glob("shallow-seed4-*.json"))
    entry = json.loads(path.read_text())
    if old == "no artifacts":
        del entry["artifacts"]
        ex.artifacts_path(path).unlink()
    elif old == "other format":
        entry["artifacts"]["format"] = ex.ARTIFACTS_VERSION + 1
    else:
        ex.artifacts_path(path).unlink()
    path.write_text(json.dumps(entry))
    assert ex.load_cached(path) is None and path.exists()  # incomplete, kept until replaced
    assert ex.cached_results(["shallow"], seeds=[4], config=settings(quick=True)) == []
    calls = []
    real = planner.train_stack
    monkeypatch.setattr(planner, "train_stack",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    again = run_experiment("shallow", 4, config=settings(quick=True))
    assert calls == [1] and again.history.rows == first.history.rows
    assert torch.equal(again.predictions, first.predictions)
    assert ex.load_cached(path).complete  # completed on disk


def test_a_run_that_diverged_before_an_epoch_is_complete_without_predictions(monkeypatch):
    wild = Experiment("wild", "Diverging network", lr=1e3, l2=1e3)
    result = run_experiment(wild, 0, config=settings(quick=True))
    assert result.history.diverged and result.artifacts.epoch == 0
    with pytest.raises(ValueError, match="no predictions or weights: the training loss"):
        _ = result.predictions
    monkeypatch.setattr(planner, "train_stack", lambda *a, **k: pytest.fail("should be cached"))
    assert run_experiment(wild, 0, config=settings(quick=True)).history.diverged


@pytest.mark.parametrize("seed", [1.5, "0", -1, True, None, 2**63])
def test_seeds_that_are_not_whole_numbers_are_refused_before_training(seed, monkeypatch):
    from fmnist_helpers import runs as store

    def no_training(*args, **kwargs):
        raise AssertionError("nothing may train with a bad seed")

    monkeypatch.setattr(planner, "train_stack", no_training)
    with pytest.raises(ValueError, match="a seed must be a whole number"):
        store.run_experiment("shallow", seed=seed, config=settings(quick=True))
    with pytest.raises(ValueError, match="a seed must be a whole number"):
        store.study_results(["shallow"], seeds=[0, seed], config=settings(quick=True))
    with pytest.raises(ValueError, match="a seed must be a whole number"):
        store.cached_results(["shallow"], seeds=[seed], config=settings(quick=True))


def test_unknown_experiment_names_list_the_known_ones():
    from fmnist_helpers import runs as store

    with pytest.raises(KeyError, match="unknown experiment 'deep'; choose one of: shallow"):
        store.run_experiment("deep", config=settings(quick=True))


def test_fmnist_seeds_sets_the_seeds_per_experiment_and_refuses_nonsense(monkeypatch):
    from fmnist_helpers.seeds import seed_sets

    monkeypatch.setenv("FMNIST_SEEDS", "10")
    config = settings(quick=False)
    assert config.seeds == tuple(range(10))
    assert seed_sets(config.seeds) == ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))  # two sets of 5
    for bad in ("0", "ten", "-3", "51"):
        monkeypatch.setenv("FMNIST_SEEDS", bad)
        with pytest.raises(ValueError, match=f"FMNIST_SEEDS='{bad}'.*from 1 to 50"):
            settings(quick=False)
    monkeypatch.delenv("FMNIST_SEEDS")
    assert settings(quick=False).seeds == tuple(range(5))
    assert settings(quick=True).seeds == (0, 1)
