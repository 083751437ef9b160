"""Seeds trained together give the histories of separate runs, and share their cache.

How close is close enough. Trained together, each seed does the same arithmetic as its own
run, but batched products may add in another order, so values agree up to float rounding
(observed here: losses within 1e-6 in float32, accuracies identical). A real fault (a wrong
dropout mask, batch order, batch-norm statistic or gradient) moves losses by 1e-3 or more.
So float32 runs must agree within ``LOSS_TOL = 1e-4`` on every loss, and every accuracy may
differ by at most one flipped prediction (``ACC_TOL``: one image of the 500-image test set is
0.002, one image of the last, 20-image study batch 1/20/16 = 0.0031), since a near tie in the
logits can flip an argmax under rounding alone; the number of epochs must be equal.

Batch norm placed after ReLU, as in the study, is chaotic in training: a channel that is
almost dead in a batch has a variance near 0, and dividing by ``sqrt(var + eps)`` amplifies
differences up to ``1/sqrt(1e-5) = 316`` times. Nudging one first-layer weight by a single
float32 ulp in a plain single run moves the test accuracy of the ``mixed`` model by up to 0.28
after two quick epochs (and by 0.12 in float64 for width 50). No batched computation can match
such runs to 1e-4 in float32, so the batch-norm models are compared in float64, where rounding
stays far below the tolerance (``LOSS_TOL_64 = 1e-6``; observed 1e-10), and the width-50
``mixed`` model over a short run (20 steps) before the chaos takes hold.
"""

import json
import math
from dataclasses import dataclass

import pytest
import torch

from fmnist_helpers import experiments as ex
from fmnist_helpers import multiseed
from fmnist_helpers.data import FashionMNIST, Split
from fmnist_helpers.experiments import STUDY, Experiment, run_experiment, train_experiment
from fmnist_helpers.multiseed import run_seeds, train_seeds
from fmnist_helpers.train import TrainingDiverged

LOSS_TOL = 1e-4
LOSS_TOL_64 = 1e-6
ACC_TOL = 0.004
SEEDS = [0, 1, 2]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these tiny products gain nothing from more, and on a busy two-core
    machine two OpenMP threads spin on each other (seen here: 53 s for this file, 4 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class Float64Experiment(Experiment):
    """The same experiment with its model in float64 (initialised in float32, then widened)."""

    def build(self) -> torch.nn.Module:
        return super().build().double()


def _float64(data: FashionMNIST) -> FashionMNIST:
    def widen(split: Split) -> Split:
        return Split(split.images.double(), split.labels)

    return FashionMNIST(widen(data.train), widen(data.test), data.source)


def _separate(experiment: Experiment, data: FashionMNIST, seed: int, epochs: int, device: str):
    """One seed the single-run way, as ``run_experiment`` trains it."""
    return train_experiment(experiment, data, seed, epochs, device=device, progress=False)[1]


def _assert_same_histories(together, separate, loss_tol):
    assert len(together) == len(separate)
    for seed, (h, s) in enumerate(zip(together, separate, strict=True)):
        assert len(h) == len(s), f"seed {seed}: {len(h)} epochs together, {len(s)} alone"
        assert (h.stopped_early, h.best_epoch) == (s.stopped_early, s.best_epoch)
        for got, want in zip(h.rows, s.rows, strict=True):
            assert got.keys() == want.keys()
            for key in want:
                if key == "seconds":
                    continue
                tol = loss_tol if "loss" in key else ACC_TOL if "acc" in key else 0
                assert abs(got[key] - want[key]) <= tol, (seed, got["epoch"], key)


def _compare(experiment, data, epochs, device="cpu", loss_tol=LOSS_TOL):
    together = train_seeds(experiment, SEEDS, data, epochs=epochs, device=device, progress=False)
    separate = [_separate(experiment, data, s, epochs, device) for s in SEEDS]
    _assert_same_histories(together, separate, loss_tol)
    return together


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["shallow", "dropout", "l1_l2"])
def test_together_matches_separate_runs(quick_data, name, device):
    """Plain, dropout and penalised models, 2 epochs on the quick subset, float32."""
    _compare(STUDY[name], quick_data, epochs=2, device=device)


def test_batch_norm_and_dropout_match_in_float64(quick_data):
    """A small mixed model (batch norm + dropout, 10 units), 2 epochs, in float64."""
    small_mixed = Float64Experiment(**{
        **vars(STUDY["mixed"]), "n_linear": 3, "hidden": 10, "early_stopping": None})
    _compare(small_mixed, _float64(quick_data), epochs=2, loss_tol=LOSS_TOL_64)


def test_mixed_model_matches_on_a_short_run(quick_data):
    """The study's mixed model (4 layers of 50, batch norm, dropout): 2 epochs of 10 batches."""
    short = FashionMNIST(quick_data.train.take(torch.arange(320)), quick_data.test, "short")
    _compare(Float64Experiment(**vars(STUDY["mixed"])), _float64(short), epochs=2,
             loss_tol=LOSS_TOL_64)


def test_early_stopping_freezes_each_seed_on_its_own(quick_data):
    """Validation early stopping, strict enough that the three seeds stop at different epochs."""
    strict = STUDY["early_stopping_val"].replace(patience=1, min_delta=0.05)
    together = _compare(strict, quick_data, epochs=4)
    assert len({len(h) for h in together}) > 1, "the seeds should stop at different epochs"
    assert all("val_loss" in h.rows[0] for h in together)


def test_divergence_names_the_seed(quick_data):
    with pytest.raises(TrainingDiverged, match=r"seed \d"):
        train_seeds(STUDY["deeper"].replace(lr=1e6), SEEDS, quick_data, epochs=1,
                    progress=False)


def test_seeds_must_be_distinct(quick_data):
    with pytest.raises(ValueError, match="without repeats"):
        train_seeds(STUDY["shallow"], [1, 1], quick_data, epochs=1, progress=False)


def test_run_seeds_and_run_experiment_share_the_cache(monkeypatch):
    first = run_experiment("shallow", seed=3, quick=True)  # cached the single-run way
    calls = []
    real = multiseed.train_seeds
    monkeypatch.setattr(multiseed, "train_seeds",
                        lambda e, seeds, *a, **k: calls.append(seeds) or real(e, seeds, *a, **k))
    results = run_seeds("shallow", [3, 4, 5], quick=True)
    assert calls == [[4, 5]]  # seed 3 came from the cache
    assert [r.seed for r in results] == [3, 4, 5]
    assert results[0].history.rows == first.history.rows
    assert all(r.epochs_trained == ex.QUICK_EPOCHS and r.n_params == 8070 for r in results)

    def no_training(*a, **k):
        raise AssertionError("should have loaded from the cache")

    monkeypatch.setattr(ex, "train", no_training)
    again = run_experiment("shallow", seed=4, quick=True)
    assert again.history.rows == results[1].history.rows
    monkeypatch.setattr(multiseed, "train_seeds", no_training)
    assert [r.history.rows for r in run_seeds("shallow", [5, 3], quick=True)] == [
        results[2].history.rows, first.history.rows]
    for path in ex.results_dir(True).glob("shallow-seed*.json"):
        assert math.isfinite(json.loads(path.read_text())["history"]["rows"][-1]["test_loss"])
