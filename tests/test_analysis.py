"""Statistics over seeds, the claims and the findings, on small hand-made histories.

The histories here are synthetic (unit-test fixtures only), so every expected verdict can be
worked out by hand; the notebooks run the same code on the real runs.
"""

import math

import numpy as np
import pytest

from fmnist_helpers import analysis, findings, seeds
from fmnist_helpers.engine import History
from fmnist_helpers.runs import Result
from fmnist_helpers.study import PAPER, READINGS, STUDY, get_experiment


def fake(name: str, seed: int, test_accs: list[float], diverged: str | None = None,
         **last) -> Result:
    """A synthetic result: one history row per test accuracy."""
    rows = [{"epoch": i + 1, "test_acc": a, "train_acc": a + 0.01, "train_acc_running": a,
             "train_loss": 0.5, "test_loss": 0.5, "test_acc_study": a}
            for i, a in enumerate(test_accs)]
    rows[-1].update(last)
    return Result(get_experiment(name), seed, False, History(rows, diverged=diverged), 8070,
                  "cpu")


def model(name: str, finals: list[float], epochs: int = 10) -> list[Result]:
    return [fake(name, s, [0.7] * (epochs - 1) + [a]) for s, a in enumerate(finals)]


def test_summary_leaves_collapsed_seeds_out_and_stays_in_range():
    s = seeds.Seeds(model("deeper", [0.80, 0.81, 0.10, 0.82, 0.79]))
    summary = s.summary()
    assert [r.seed for r in s.collapsed] == [2]
    assert summary.n == 4 and summary.n_collapsed == 1
    assert summary.mean == pytest.approx(0.805) and summary.high == 0.82
    assert 0 <= summary.low <= summary.high <= 1  # a range, never a t-interval past 100%
    assert seeds.mean_sd(summary) == "80.5 ± 1.3 (1 collapsed)"
    assert seeds.pct_sd(summary) == "80.5 ± 1.3% (1 collapsed)"  # in a sentence: unit first
    assert seeds.pct_sd(seeds.Seeds(model("deeper", [0.80, 0.81])).summary()) == "80.5 ± 0.7%"
    diverged = seeds.Seeds([fake("deeper", 0, [0.5, 0.8], diverged="loss NaN at epoch 2")])
    assert diverged.collapsed and diverged.kept == diverged.runs  # all collapsed: keep all


def test_mann_whitney_and_hodges_lehmann_by_hand():
    a = seeds.Seeds(model("wide", [0.86, 0.87, 0.88, 0.89, 0.90]))
    b = seeds.Seeds(model("shallow", [0.80, 0.81, 0.82, 0.83, 0.84]))
    c = seeds.compare(a, b)
    # every a above every b: the exact two-sided p is 2 / C(10, 5) = 2 / 252
    assert c.p_two_sided == pytest.approx(2 / 252) and c.significant
    assert c.difference == pytest.approx(0.06)  # median of the 25 differences
    assert c.direction == "higher"
    assert seeds.smallest_p(5, 5) == pytest.approx(2 / 252)
    assert seeds.smallest_p(2, 2) == pytest.approx(1 / 3)


def test_one_outlier_cannot_turn_a_verdict_around():
    good = [0.80, 0.81, 0.805, 0.815, 0.812]
    shallow = seeds.Seeds(model("shallow", [0.84, 0.845, 0.842, 0.848, 0.85]))
    with_collapse = seeds.Seeds(model("deeper", good[:4] + [0.10]))
    c = seeds.compare(with_collapse, shallow)
    assert c.significant and c.direction == "lower"
    claim = analysis.CLAIMS[0]
    assert analysis.judge(claim, c) == "supported"


def test_ties_are_ties_and_support_nothing():
    a = seeds.Seeds(model("l1_l2", [0.8423, 0.8420, 0.8425]))
    b = seeds.Seeds(model("l1", [0.8421, 0.8424, 0.8422]))
    c = seeds.compare(a, b, margin=seeds.MARGIN)
    assert c.tie and c.direction == "tie"
    no_better = next(cl for cl in analysis.CLAIMS if cl.expect == "no higher")
    # a tie is not evidence of "no better"; the equivalence test is: 0.03-point spreads are
    # far inside a 1-point margin
    assert c.p_not_above < 0.001
    assert analysis.judge(no_better, c) == "supported: at most 1 point higher"
    higher = next(cl for cl in analysis.CLAIMS if cl.expect == "higher")
    assert analysis.judge(higher, c) == "not supported: a tie"
    from fmnist_helpers.discuss import points

    assert points(-0.00001) == "0.0 points"  # never "-0.0"


def test_no_better_than_needs_an_equivalence_test_not_a_failed_one():
    claim = next(cl for cl in analysis.CLAIMS if cl.expect == "no higher")
    l1 = seeds.Seeds(model("l1", [0.82, 0.83, 0.825, 0.822, 0.828]))
    lower = seeds.compare(seeds.Seeds(model("l1_l2", [0.80, 0.81, 0.79, 0.80, 0.805])), l1,
                          margin=seeds.MARGIN)
    higher = seeds.compare(seeds.Seeds(model("l1_l2", [0.86, 0.87, 0.865, 0.862, 0.868])), l1,
                           margin=seeds.MARGIN)
    # noisy and level: Mann-Whitney finds nothing, which supports nothing
    noisy = seeds.compare(seeds.Seeds(model("l1_l2", [0.80, 0.85, 0.82, 0.79, 0.84])), l1,
                          margin=seeds.MARGIN)
    assert analysis.judge(claim, lower) == "supported: at most 1 point higher"
    assert analysis.judge(claim, higher).startswith("not supported")
    assert not noisy.significant
    assert analysis.judge(claim, noisy) == "not supported: not shown to be at most 1 point higher"


def test_jitter_ignores_the_trend():
    rising = fake("shallow", 0, [0.70 + 0.01 * i for i in range(10)])
    noisy = fake("shallow", 1, [0.80 + (0.01 if i % 2 else -0.01) for i in range(10)])
    assert seeds.jitter(rising) == pytest.approx(0, abs=1e-12)
    # alternating +-0.01: second differences are +-0.04, so sqrt(0.04^2 / 6)
    assert seeds.jitter(noisy) == pytest.approx(0.04 / math.sqrt(6))
    assert math.isnan(seeds.jitter(fake("shallow", 2, [0.8, 0.81])))


def test_claims_use_the_same_lr_control():
    claims = {c.text: c for c in analysis.CLAIMS}
    assert claims["L1 regularization lowers test accuracy"].b == "shallow_lr_control"
    assert claims["L2 regularization raises test accuracy"].b == "shallow_lr_control"
    results = (model("l2", [0.85, 0.851, 0.852, 0.853, 0.854])
               + model("shallow_lr_control", [0.83, 0.831, 0.832, 0.833, 0.834])
               + model("shallow", [0.86, 0.861, 0.862, 0.863, 0.864]))
    table = analysis.check_claims(results).frame
    row = table[table.claim == "L2 regularization raises test accuracy"].iloc[0]
    assert row.against == "shallow_lr_control"
    assert row.p == "0.008" and row["Holm p"] == "0.008"  # alone in its family
    assert row.verdict == "supported"
    assert row["difference [95% CI]"].startswith("+2.0 [")
    assert row["P(a beats b)"] == "1.00"


def test_findings_reproduced_by_a_reading():
    paper = PAPER["dropout"].test_acc
    literal = model("dropout", [0.78, 0.79, 0.80, 0.79, 0.785])
    w50 = model("dropout_w50", [paper - 0.002, paper, paper + 0.003, paper - 0.001, paper])
    frame = findings.verdicts(literal, w50)
    row = frame[frame.name == "dropout"].iloc[0]
    assert row.verdict == "reproduced under another reading" and row.readings == ["dropout_w50"]
    assert "50 hidden units" in findings.verdict_table(literal, w50).frame.verdict.iloc[0]
    assert findings.headline(literal, w50).startswith("**0 of 1**")


def test_findings_early_stopping_needs_the_epochs_too():
    paper = PAPER["early_stopping"]
    near = [paper.test_acc] * 5
    short = [fake("early_stopping", s, [0.8] * 8 + [a]) for s, a in enumerate(near)]
    assert findings.verdicts(short).verdict.iloc[0] == "accuracy reproduced, epochs not"
    long = [fake("early_stopping", s, [0.8] * 15 + [a]) for s, a in enumerate(near)]
    assert findings.verdicts(long).verdict.iloc[0] == "reproduced"


def test_lessons_name_collapses_and_ranking():
    results = (model("deeper", [0.80, 0.10, 0.81]) + model("shallow", [0.84, 0.845, 0.85])
               + model("wide", [0.87, 0.875, 0.88]))
    text = findings.lessons(results)
    assert "`deeper`: 1 of 3 (seed 1 (10.0%))" in text
    assert "Kendall's tau" in text and "p = " in text


def test_ranking_agreement_is_scipys_kendall_tau():
    assert seeds.ranking_agreement(list("abcd"), list("abcd"))[0] == pytest.approx(1)
    assert seeds.ranking_agreement(list("abcd"), list("dcba"))[0] == pytest.approx(-1)
    assert seeds.ranking_agreement(list("abc"), list("acb"))[0] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same models"):
        seeds.ranking_agreement(list("ab"), list("ac"))


def test_every_reading_names_its_base_and_what_it_changes():
    from fmnist_helpers.study import base_of, changes

    for name, e in READINGS.items():
        assert changes(e, STUDY[base_of(name)]) != "nothing", name


def test_the_studys_test_accuracies_are_per_batch_means():
    table = analysis.paper_denominators().frame
    off_10016 = table["off a whole number "].astype(float)
    off_10000 = table["off a whole number"].astype(float)
    assert (off_10016 < 0.01).all()
    assert (off_10000 > 0.02).sum() >= len(table) - 1
    assert np.all(table.shape[1] <= 8)
