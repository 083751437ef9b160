"""The collapse sentences read a run's whole history; the diagnostics change no number."""

import math

import numpy as np
import torch

from fmnist_helpers import diagnostics, discuss, why_deeper
from fmnist_helpers.engine import History
from fmnist_helpers.runs import Result
from fmnist_helpers.seeds import Seeds
from fmnist_helpers.settings import settings
from fmnist_helpers.study import STUDY


def history(test_accs, train_losses, diverged=None) -> History:
    rows = [{"epoch": e, "train_loss": loss, "train_acc_running": acc, "train_acc": acc,
             "test_loss": loss, "test_acc": acc, "test_acc_study": acc}
            for e, (acc, loss) in enumerate(zip(test_accs, train_losses, strict=True), 1)]
    return History(rows, diverged=diverged)


def run(seed, test_accs, train_losses, name="deeper") -> Result:
    return Result(STUDY[name], seed, False, history(test_accs, train_losses), 8600, "cpu")


# seed 0 learns to 57% after epoch 1, then falls to chance from epoch 6 on, its loss at 2.30
DIES = ([0.573, 0.41, 0.30, 0.22, 0.21, 0.10, 0.10, 0.10, 0.10, 0.10],
        [1.83, 1.9, 2.1, 2.2, 2.25, 2.30, 2.30, 2.30, 2.30, 2.30])
NEVER = ([0.10] * 10, [2.30] * 10)
TRAINS = ([0.6 + 0.02 * e for e in range(10)], [1.2 - 0.06 * e for e in range(10)])


def test_life_of_reads_the_whole_history():
    life = diagnostics.life_of(history(*DIES))
    assert (life.kind, life.best_epoch, life.died_at) == ("died", 1, 6)
    assert life.best_acc == 0.573
    assert diagnostics.life_of(history(*NEVER)).kind == "never learned"
    assert diagnostics.life_of(history(*TRAINS)).kind == "trained"


def test_collapse_sentences_say_learned_then_died():
    s = Seeds([run(0, *DIES), run(1, *TRAINS), run(2, *NEVER)])
    text = discuss.loss_vs_chance(s)
    assert "seed 0 learned (57.3% test accuracy after epoch 1), then died: from epoch 6" in text
    assert "seed 0 never moved" not in text
    assert "seed 2 never moved away from guessing" in text
    assert "seed 1" not in text
    line = discuss.collapse_line(s)
    assert line == ("Seed 0 learned (57.3% test accuracy after epoch 1), then died: from epoch "
                    "6 on it scores at chance (10.0% at the end); seed 2 never moved away from "
                    "guessing (10.0% at the end). They are left out of the numbers above, which "
                    "describe the other seed.")


def test_measure_gradient_norms_and_dead_units():
    torch.manual_seed(0)
    experiment = STUDY["deeper"]
    model = experiment.build()
    state = model.state_dict()
    images, labels = torch.rand(50, 784), torch.arange(50) % 10
    before = torch.random.get_rng_state()
    out = diagnostics.measure(state, images, labels, experiment.n_linear, experiment.hidden)
    assert torch.equal(before, torch.random.get_rng_state())  # draws nothing
    assert out["grad_norm"].shape == (8,) and out["dead"].shape == (7,)
    assert np.all(out["grad_norm"] > 0)
    # kill every unit of layer 3: its bias far below zero
    state["5.bias"] = torch.full((10,), -1e3)
    out = diagnostics.measure(state, images, labels, experiment.n_linear, experiment.hidden)
    assert out["dead"][2] == 1.0
    assert np.all(out["grad_norm"][:3] == 0)  # nothing flows back past a dead layer
    assert math.isfinite(float(out["loss"]))


def test_the_run_store_records_diagnostics_and_changes_no_number(tmp_path, monkeypatch):
    """deeper's runs carry diagnostics per epoch, written through the planner's snapshot hook;
    the same run trained alone without the hook has the same history, and the diagnostics
    computed again from a retraining (diagnostics.load_or_retrain on a run cached without
    them) are equal."""
    from fmnist_helpers.bridge import train_one
    from fmnist_helpers.results import cache_path, get_data
    from fmnist_helpers.runs import run_experiment

    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("FMNIST_PROGRESS", "0")
    result = run_experiment("deeper", 1, config=settings(quick=True))
    entry = cache_path(result.experiment, 1, True, result.device)
    stored = diagnostics.read(diagnostics.path_of(entry))
    assert stored["grad_norm"].shape == (len(result.history), 8)
    assert stored["dead"].shape == (len(result.history), 7)
    alone = train_one(result.experiment, 1, get_data(True))
    assert alone.history.rows == result.history.rows
    diagnostics.path_of(entry).unlink()
    again = diagnostics.load_or_retrain(result)  # trains it again, alone, with the hook
    for key in stored:
        assert np.array_equal(stored[key], again[key]), key
    assert not diagnostics.wanted(STUDY["wide"])
    wide = run_experiment("wide", 1, config=settings(quick=True))
    assert not diagnostics.path_of(cache_path(wide.experiment, 1, True, result.device)).exists()


def evidence(**changes) -> why_deeper.Evidence:
    died = diagnostics.life_of(history(*DIES))
    base = dict(deaths=[(0, died, 1.0)], never=[], survivors=4, first_layer_ratio=0.8,
                stuck_ratio=float("nan"), late=[], rising=0.001,
                by_lr={0.03: 0.0, 0.1: 0.2, 0.3: 1.0},
                by_lr_shallow={0.03: 0.0, 0.1: 0.0, 0.3: 0.4}, rescue={0.3: 0.0},
                deepest=8, shallowest=3, map_dead={0.3: (3, 3)})
    return why_deeper.Evidence(**(base | changes))


def test_the_answer_follows_the_evidence():
    text = why_deeper.answer(evidence())
    assert "Seed 0 learned (57.3% test accuracy after epoch 1), then died" in text
    assert "*Vanishing gradients*: not supported" in text
    assert "*Too few epochs*: not supported" in text
    assert "a learning rate too large for the depth" in text and "batch norm prevents" in text
    assert "at lr 0.3, all 3 collapsed deep seeds had a layer whose every unit is dead" in text
    assert "At lr 0.3, all 3 collapsed deep seeds had a layer with every unit dead." in text
    assert "100% at lr 0.3" in text and "the evidence supports neither." in text
    text = why_deeper.answer(evidence(first_layer_ratio=0.01, rising=0.02,
                                       by_lr={0.03: 0.4, 0.1: 0.2, 0.3: 0.0}))
    assert "*Vanishing gradients*: supported" in text and "still improving" in text
    assert "too large for the depth" not in text and "supports both, each in part" in text
    late = diagnostics.life_of(history([0.1] * 4 + [0.4, 0.7, 0.8, 0.8, 0.8, 0.8], [1.0] * 10))
    assert late.kind == "trained" and late.started == 5
    text = why_deeper.answer(evidence(late=[(2, late, 0.01)], map_dead={0.03: (0, 1)},
                                       by_lr={0.03: 0.3, 0.1: 0.0, 0.3: 0.2}))
    assert "the one collapsed deep seed had no a layer" not in text
    assert "At lr 0.03, the one collapsed deep seed had no layer with every unit dead." in text
    assert "seed 2 sat at chance for 4 epochs, then learned" in text.lower()
    assert "supported at the start only" in text
    assert "seed 2 spent 4 epochs at chance before it learned" in text
    assert "supports both, each in part" in text
