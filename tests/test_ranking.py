"""Orders over the seeds: a clear gap is named as an order, a gap within the noise is a group.

Small synthetic runs: a model's seeds are made by hand as test predictions on the real quick
test set (50 images per class), so that each class's accuracy per seed is known exactly.
"""

import numpy as np
import pytest
import torch

from fmnist_helpers import learned, ranking
from fmnist_helpers.data import CLASSES
from fmnist_helpers.history import History
from fmnist_helpers.results import Artifacts, Result
from fmnist_helpers.study import STUDY

SHIRT, COAT, PULLOVER, TSHIRT = (CLASSES.index(c) for c in
                                 ("Shirt", "Coat", "Pullover", "T-shirt/top"))


def run(name: str, seed: int, labels: torch.Tensor, wrong: dict[int, tuple[int, int]],
        accuracy: float = 0.8) -> Result:
    """A run of ``STUDY[name]`` whose predictions are right except, per true class ``c``,
    ``wrong[c] = (n, p)``: its first ``n`` test images taken for class ``p``."""
    predictions = labels.clone()
    for true, (n, predicted) in wrong.items():
        rows = torch.nonzero(labels == true).flatten()[:n]
        predictions[rows] = predicted
    return Result(STUDY[name], seed, True, History(rows=[{"test_acc": accuracy}]), 0, "cpu",
                  artifacts=Artifacts(1, predictions=predictions, state={}))


@pytest.fixture(scope="module")
def labels():
    from fmnist_helpers.results import get_data

    return get_data(quick=True).test.labels


# ---------------------------------------------------------------------------------------------
# The rule, on arrays
# ---------------------------------------------------------------------------------------------

def test_a_clear_gap_is_an_order_and_a_crossing_one_a_group():
    # three seeds of one model, three items: item 0 is always far below 1 and 2; 1 and 2 cross
    seeds = np.array([[0.50, 0.80, 0.78], [0.52, 0.77, 0.81], [0.49, 0.79, 0.80]])
    draws = ranking.resample([seeds])
    assert draws.shape == (9999, 3)
    groups = ranking.noise_groups(seeds.mean(0), draws, descending=False)
    assert groups == [[0], [1, 2]] or groups == [[0], [2, 1]]
    assert ranking.noise_groups(seeds.mean(0), draws, descending=True) in ([[1, 2], [0]],
                                                                          [[2, 1], [0]])
    # enough: stop once the groups hold that many items
    assert ranking.noise_groups(seeds.mean(0), draws, descending=False, enough=1) == [[0]]


def test_the_bootstrap_is_within_each_model_and_one_seed_adds_no_noise():
    one_seed = np.array([[0.5, 0.9]])
    assert ranking.resample([one_seed]) is None  # nothing to resample: nothing is tested
    assert ranking.noise_groups(one_seed[0], None, descending=False) == [[0], [1]]
    noisy = np.array([[0.6, 0.7], [0.8, 0.5]])  # the two seeds disagree on the order
    draws = ranking.resample([one_seed, noisy])
    # the mean over the models: the single seed is held fixed, only the noisy model varies
    assert draws.min(0) == pytest.approx(np.mean([one_seed[0], [0.6, 0.5]], axis=0))
    assert draws.max(0) == pytest.approx(np.mean([one_seed[0], [0.8, 0.7]], axis=0))
    per_model = ranking.resample([one_seed, noisy], over_models=False)
    assert per_model.shape == (9999, 2, 2) and np.ptp(per_model[:, 0], axis=0).max() == 0
    assert ranking.seeds_phrase([one_seed, noisy]) == "not separable with 1-2 seeds"


def test_apart_reads_the_percentile_interval():
    assert ranking.apart(np.linspace(0.01, 1, 1000)).item()
    assert not ranking.apart(np.linspace(-0.1, 1, 1000)).item()  # 2.5% below 0 and more
    assert ranking.apart(np.linspace(-0.01, 1, 1000)).item()  # only 1% below 0


# ---------------------------------------------------------------------------------------------
# Classes, confusions, models: synthetic runs on the real quick test set
# ---------------------------------------------------------------------------------------------

def test_hardest_classes_clear_gap_named_in_order(labels):
    runs = [run("shallow", s, labels, {SHIRT: (25 + s, TSHIRT), COAT: (10 + s, PULLOVER),
                                       PULLOVER: (11 - s, COAT)}) for s in range(3)]
    assert ranking.hardest_classes(runs, top=1) == [["Shirt"]]
    assert ranking.hardest_classes(runs, top=2) == [["Shirt"], ["Coat", "Pullover"]]
    text = learned.describe_classes(runs)
    assert ("the class classified right least often is *Shirt* (48.0%); then *Coat* (78.0%) "
            "and *Pullover* (80.0%), not separable with 3 seeds") in text, text
    pairs = learned.most_confused_pairs(runs, top=1)
    assert pairs[["true", "predicted", "group"]].values.tolist() == [["Shirt", "T-shirt/top", 1]]
    assert pairs["images"].iloc[0] == pytest.approx(26) and pairs["share"].iloc[0] == 0.52


def test_hardest_classes_within_noise_form_one_group(labels):
    crossing = [(20, 10), (10, 20), (16, 14)]  # Shirt and Coat swap places between the seeds
    runs = [run("shallow", s, labels, {SHIRT: (a, TSHIRT), COAT: (b, PULLOVER)})
            for s, (a, b) in enumerate(crossing)]
    assert ranking.hardest_classes(runs, top=1) == [["Shirt", "Coat"]]
    text = learned.describe_classes(runs, top=1)
    assert ("the classes classified right least often are *Shirt* (69.3%) and *Coat* (70.7%), "
            "not separable with 3 seeds") in text, text
    assert ("*Shirt* taken for *T-shirt/top* (15.3 of 50, 30.7%) and *Coat* taken for "
            "*Pullover* (14.7 of 50, 29.3%), not separable with 3 seeds") in text
    table = learned.confused_pairs_table(runs, top=1)
    assert table.frame["group"].tolist() == ["1", "1"] and "excludes 0" in table.caption


def test_where_models_differ_only_beyond_the_noise(labels):
    def model(name, shirt_wrong, coat_wrong):
        return [run(name, s, labels, {SHIRT: (a, TSHIRT), COAT: (b, PULLOVER)})
                for s, (a, b) in enumerate(zip(shirt_wrong, coat_wrong, strict=True))]

    # Shirt: 30 wrong for one model, 5 for the other, every seed; Coat: the same up to noise
    apart = model("shallow", [30, 31, 29], [10, 14, 12]) + model("wide", [5, 6, 4], [13, 9, 11])
    differ = learned.classes_where_models_differ(apart, top=1)
    assert differ.index.tolist() == ["Shirt"]
    assert differ.iloc[0][["best model", "worst model"]].tolist() == ["wide", "shallow"]
    assert differ.iloc[0]["spread"] == pytest.approx((30 - 5) / 50)
    assert "The models differ most on *Shirt* (from 40.0%, " in learned.describe_classes(apart)
    close = model("shallow", [10, 14, 12], [10, 14, 12]) + model("wide", [13, 9, 11],
                                                                 [13, 9, 11])
    assert learned.classes_where_models_differ(close).empty
    assert "No class separates the models beyond the seeds' noise" in \
        learned.describe_classes(close)


def test_best_and_worst_pick_the_first_of_a_group_in_the_given_order(labels):
    def model(name, accuracies):
        return [run(name, s, labels, {}, a) for s, a in enumerate(accuracies)]

    low, high = model("deeper", [0.60, 0.61, 0.62, 0.63, 0.64]), model("wide", [0.85] * 5)
    higher = model("mixed", [0.84, 0.86, 0.85, 0.87, 0.86])  # within the noise of wide
    best, worst = learned.best_and_worst(low + high + higher)
    assert best.group == ["wide", "mixed"] and best[0].experiment.name == "wide"
    assert worst.group == ["deeper"] and "clear of every other model" in worst.note
    best, _ = learned.best_and_worst(higher + low + high)  # the order given decides, not noise
    assert best.group == ["mixed", "wide"] and best[0].experiment.name == "mixed"
    assert "the 2 models the seeds do not separate from the highest mean" in best.note
    caption = [t.get_text() for t in learned.plot_model_confusion(best).texts]
    assert any(text.startswith("Shown: the first") for text in caption), caption


def test_a_single_run_is_described_without_a_tested_order(labels):
    one = [run("shallow", 0, labels, {SHIRT: (25, TSHIRT), COAT: (10, PULLOVER)})]
    text = learned.describe_classes(one, top=2)
    assert text.startswith("For the shallow network (seed 0)")
    assert "*Shirt* (50.0%), then *Coat* (80.0%)" in text
    assert "not tested against the seeds' noise" in text
    with pytest.raises(ValueError, match="top must be a whole number >= 1, got 0"):
        learned.describe_classes(one, top=0)


def test_classes_that_all_cross_are_said_to_have_no_order(labels):
    # seed 0 misses 2c images of class c, seed 1 misses 18 - 2c: every two classes swap places
    runs = [run("shallow", s, labels, {c: (2 * c if s == 0 else 18 - 2 * c, (c + 1) % 10)
                                       for c in range(10)}) for s in (0, 1)]
    assert ranking.hardest_classes(runs, top=3) == [list(CLASSES)]
    text = learned.describe_classes(runs)
    assert ("the seeds put the classes in no order: all 10 are not separable with 2 seeds, "
            "from *T-shirt/top* (82.0% of its test images) to *Ankle boot* (82.0%).") in text


def test_an_order_that_a_seed_set_reverses_is_fragile():
    whole = {"Shirt": 0, "Coat": 1, "Pullover": 1}
    assert not ranking.reversed_in(whole, {"Shirt": 0, "Coat": 0, "Pullover": 0})  # merged
    assert not ranking.reversed_in(whole, {"Shirt": 0, "Pullover": 1, "Coat": 2})  # inside
    assert ranking.reversed_in(whole, {"Coat": 0, "Shirt": 1})

    class Seed:
        def __init__(self, seed):
            self.seed = seed

    runs = [Seed(s) for s in range(5)]

    def conclude(part):  # seeds 2-4 alone put Coat first
        if {r.seed for r in part} == {2, 3, 4}:
            return {"Coat": 0, "Shirt": 1, "Pullover": 1}
        return whole

    assert ranking.fragile(runs, conclude) == (" *Fragile*: seeds 2-4 alone reverse part of "
                                               "this order.")
    assert ranking.fragile(runs, lambda part: whole) == ""
    assert ranking.fragile(runs[:2], conclude) == ""  # sets of one seed: nothing to test


def test_apart_decides_as_the_percentile_interval_does():
    """Counting draws on either side of 0 gives np.percentile's answer, ties and 0 included."""
    rng = np.random.default_rng(1)
    for resamples in (7, 100, 9999):
        draws = np.round(rng.normal(0.02, 0.05, (resamples, 40)), 2)  # ties, and exact zeros
        draws[:, 0] = 0.0
        low, high = np.percentile(draws, [2.5, 97.5], axis=0)
        assert (ranking.apart(draws) == ((low > 0) | (high < 0))).all()
        assert ranking.apart(draws[:, 3]) == ((low[3] > 0) | (high[3] < 0))
