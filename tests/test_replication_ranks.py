"""The rankings (hardest and easiest classes, most frequent confusions, best and worst model)
as conclusions: written without digits, part of the replication table and of
``findings --compare``.

Synthetic runs (hand-made test predictions on the real quick test set) for the format, then
real quick-mode runs trained into private folders for ``--compare``.
"""

from pathlib import Path

import pytest
import torch

from fmnist_helpers import findings
from fmnist_helpers.data import CLASSES
from fmnist_helpers.history import History
from fmnist_helpers.results import Artifacts, Result, get_data
from fmnist_helpers.settings import settings
from fmnist_helpers.study import STUDY

SHIRT, COAT, PULLOVER, TSHIRT = (CLASSES.index(c) for c in
                                 ("Shirt", "Coat", "Pullover", "T-shirt/top"))
RANKS = ("rank: hardest classes", "rank: easiest classes", "rank: most confused pairs",
         "rank: best and worst model")


def run(name: str, seed: int, wrong: dict[int, tuple[int, int]], accuracy: float) -> Result:
    """A run of ``STUDY[name]`` right on every quick test image except, per true class ``c``,
    ``wrong[c] = (n, p)``: its first ``n`` images taken for class ``p``."""
    labels = get_data(quick=True).test.labels
    predictions = labels.clone()
    for true, (n, predicted) in wrong.items():
        predictions[torch.nonzero(labels == true).flatten()[:n]] = predicted
    return Result(STUDY[name], seed, True, History(rows=[{"test_acc": accuracy}]), 0, "cpu",
                  artifacts=Artifacts(1, predictions=predictions, state={}))


def test_rankings_are_groups_of_sorted_names_without_digits():
    runs = [run(name, s, {SHIRT: (30 + s, TSHIRT), COAT: (10, PULLOVER), PULLOVER: (5, COAT)},
                accuracy + 0.01 * s)
            for name, accuracy in (("shallow", 0.60), ("wide", 0.85)) for s in range(5)]
    ranks = findings.rank_conclusions(runs)
    assert list(ranks) == list(RANKS)
    assert ranks["rank: hardest classes"] == "{Shirt} > {Coat} > {Pullover}"
    # the seven classes never missed tie: one group, its members sorted by name
    assert ranks["rank: easiest classes"] == ("{Ankle boot, Bag, Dress, Sandal, Sneaker, "
                                              "T-shirt/top, Trouser}")
    assert ranks["rank: most confused pairs"].startswith(
        "{Shirt taken for T-shirt/top} > {Coat taken for Pullover} > "
        "{Pullover taken for Coat} > {")
    assert ranks["rank: best and worst model"] == "best {wide}; worst {shallow}"
    assert not any(ch.isdigit() for ch in "".join(ranks.values()))
    # the order of the runs given changes nothing
    assert findings.rank_conclusions(runs[::-1]) == ranks


def test_runs_without_predictions_give_only_the_models_order():
    bare = [Result(STUDY[name], s, True, History(rows=[{"test_acc": a + 0.01 * s}]), 0, "cpu")
            for name, a in (("deeper", 0.60), ("wide", 0.85)) for s in range(5)]
    assert findings.rank_conclusions(bare) == {
        "rank: best and worst model": "best {wide}; worst {deeper}"}
    assert findings.rank_conclusions([]) == {}


def test_a_ranking_replicates_unless_a_seed_set_reverses_it():
    said = "{Shirt} > {Coat, Pullover}"
    merged = "{Coat, Pullover, Shirt}"  # fewer seeds tell fewer groups apart: no reversal
    assert findings.rank_replicated(said, merged, "{Shirt} > {Coat} > {Pullover}")
    assert not findings.rank_replicated(said, said, "{Coat} > {Shirt}")
    assert not findings.rank_replicated(said, "-", said)  # a set that could not say it
    models = "best {wide}; worst {deeper, shallow}"
    assert findings.rank_replicated(models, "best {deeper, shallow, wide}; "
                                            "worst {deeper, shallow, wide}", models)
    assert not findings.rank_replicated(models, "best {shallow}; worst {wide}", models)


# ---------------------------------------------------------------------------------------------
# findings --compare on two real quick-mode caches made with different seeds
# ---------------------------------------------------------------------------------------------

NAMES = ("shallow", "wide", "deeper")


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> tuple[Path, Path]:
    from fmnist_helpers.runs import study_results

    folders = []
    for label, seeds_ in (("a", (0, 1)), ("b", (2, 3))):
        root = tmp_path_factory.mktemp(f"ranks-{label}")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FMNIST_RESULTS_DIR", str(root))
            patch.setenv("FMNIST_QUICK", "1")
            study_results(NAMES, seeds=seeds_, config=settings(quick=True))
        folders.append(root / "quick")
    return folders[0], folders[1]


def test_compare_lists_a_ranking_exactly_when_it_differs(caches):
    a, b = caches
    in_a = findings.conclusions(*findings.load_folder(a))
    in_b = findings.conclusions(*findings.load_folder(b))
    assert set(RANKS) <= set(in_a) and set(RANKS) <= set(in_b)
    assert in_a["rank: hardest classes"].startswith("{")
    lines: list[str] = []
    findings.main(["--compare", str(a), str(b)], out=lines.append)
    for key in RANKS:
        listed = [line for line in lines if line.startswith(f"- {key}")]
        assert bool(listed) == (in_a[key] != in_b[key]), key
        for line in listed:
            assert line.endswith(f"\n    A: {in_a[key]}\n    B: {in_b[key]}")
    same: list[str] = []
    assert findings.main(["--compare", str(a), str(a)], out=same.append) == 0
    assert same[-1] == "Every verdict and lesson is the same in both caches."
    assert "rank: " not in "\n".join(same)
