import math

import pytest

from fmnist_helpers.analysis import (
    against_paper,
    check_claims,
    kendall_tau,
    mean_interval,
    paper_ranking,
    ranking_agreement,
    roughness,
    seed_summary,
    t_quantile,
    verdict,
)
from fmnist_helpers.engine import History
from fmnist_helpers.runs import Result
from fmnist_helpers.study import PAPER, STUDY


def fake(name: str, seed: int, test_accs: list[float]) -> Result:
    """A synthetic result (unit-test fixture only): one history row per test accuracy."""
    rows = [{"epoch": i + 1, "test_acc": a, "train_acc": a + 0.01} for i, a in enumerate(test_accs)]
    return Result(STUDY[name], seed, False, History(rows), 0, "cpu")


def test_mean_interval_by_hand():
    mean, sd, lo, hi = mean_interval([0.80, 0.82, 0.84])
    assert mean == pytest.approx(0.82) and sd == pytest.approx(0.02)
    assert hi - mean == pytest.approx(4.303 * 0.02 / math.sqrt(3))
    assert math.isnan(mean_interval([0.5])[2])
    assert t_quantile(4) == 2.776 and t_quantile(12) == 2.228 and t_quantile(100) == 1.96


def test_kendall_tau():
    assert kendall_tau(list("abcd"), list("abcd")) == 1.0
    assert kendall_tau(list("abcd"), list("dcba")) == -1.0
    assert kendall_tau(list("abc"), list("acb")) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        kendall_tau(list("ab"), list("ac"))


def test_verdicts():
    assert verdict(0.85, 0.84, 0.86) == "inside our 95% interval"
    assert verdict(0.90, 0.84, 0.86) == "above our interval by 0.040"
    assert verdict(0.80, 0.84, 0.86) == "below our interval by 0.040"
    assert verdict(0.80, math.nan, math.nan) == "one seed: no interval"


def test_summary_and_paper_columns():
    results = [fake("shallow", s, [0.80, a]) for s, a in enumerate([0.84, 0.845, 0.85])]
    results += [fake("deeper", s, [0.7, 0.79 + 0.001 * s]) for s in range(3)]
    table = against_paper(results)
    assert list(table.experiment) == ["shallow", "deeper"]
    row = table.iloc[0]
    assert row.seeds == 3 and row["mean"] == pytest.approx(0.845)
    assert row.paper == PAPER["shallow"].test_acc
    assert row.verdict == "inside our 95% interval"
    assert table.iloc[1].verdict.startswith("above our interval")
    assert seed_summary(results, "train_acc").iloc[0]["mean"] == pytest.approx(0.855)


def test_ranking_agreement_uses_only_common_models():
    results = [fake(n, 0, [PAPER[n].test_acc]) for n in PAPER]
    tau, theirs, ours = ranking_agreement(results)
    assert tau == 1.0 and theirs == ours == paper_ranking()


def test_claims_are_judged_from_the_runs():
    results = [fake("shallow", s, [0.80, 0.84, 0.80, 0.84 + 0.001 * s]) for s in range(3)]
    results += [fake("deeper", s, [0.78, 0.79, 0.79, 0.79 + 0.001 * s]) for s in range(3)]
    results += [fake("dropout", s, [0.80, 0.81, 0.82, 0.83 + 0.001 * s]) for s in range(3)]
    claims = check_claims(results).set_index("claim").verdict
    assert claims["The deeper network has lower test accuracy"] == "supported"
    assert claims["Dropout makes the test accuracy curve smoother"] == "supported"
    assert "The wide network is the best model" not in claims


def test_roughness():
    assert roughness(fake("shallow", 0, [0.8, 0.9, 0.8])) == pytest.approx(0.1)
    assert math.isnan(roughness(fake("shallow", 0, [0.8])))


def test_the_studys_test_accuracies_are_per_batch_means():
    """The reading of the study's metric, checked on its own table: every test accuracy is
    a whole number of /10,016ths (per-batch mean) and not of /10,000ths (exact)."""
    from fmnist_helpers.analysis import paper_denominators

    t = paper_denominators()
    assert (t["x 10,016: off a whole number by"] < 0.01).all()
    assert (t["x 10,000: off a whole number by"] > 0.01).sum() >= 8
    assert (t["train x 60,000: off a whole number by"] < 0.03).all()
