"""Conclusions that claim no more than the seeds show (issue 20): effect sizes with bootstrap
intervals, Holm over the family of claims, equivalence tests, prediction intervals, replication
on two seed sets, and ``findings --compare`` on two caches.

Synthetic histories (unit-test fixtures) except the last tests, which train real quick-mode runs
into private folders.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fmnist_helpers import analysis, discuss, findings, replication, seeds
from fmnist_helpers.engine import History
from fmnist_helpers.results import Result
from fmnist_helpers.settings import settings
from fmnist_helpers.study import PAPER, get_experiment

ROOT = Path(__file__).resolve().parent.parent


def fake(name: str, seed: int, test_accs: list[float], epochs_: int | None = None) -> Result:
    rows = [{"epoch": i + 1, "test_acc": a, "train_acc": a + 0.01, "train_acc_running": a,
             "train_loss": 0.5, "test_loss": 0.5, "test_acc_study": a}
            for i, a in enumerate(test_accs)]
    return Result(get_experiment(name), seed, False, History(rows), 8070, "cpu")


def model(name: str, finals, epochs: int = 10, wiggle: float = 0.0) -> list[Result]:
    """Seeds of a model: flat histories ending at ``finals``; ``wiggle`` alternates the
    earlier epochs by that much (jitter)."""
    out = []
    for s, a in enumerate(finals):
        w = wiggle * (1 + 0.05 * s)  # each seed its own jitter
        body = [a + (w if i % 2 else -w) for i in range(epochs - 1)]
        out.append(fake(name, s, body + [a]))
    return out


def spread(centre: float, n: int, step: float = 0.002) -> list[float]:
    return [centre + step * (i - (n - 1) / 2) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# effect sizes, tests, intervals
# ---------------------------------------------------------------------------------------------

def test_holm_step_down_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, then 0.04 x 1 -> kept at 0.06
    assert seeds.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert seeds.holm([0.5, math.nan]) == pytest.approx([1.0, 1.0])  # nan counts as 1
    assert seeds.holm([]) == []


def test_effect_sizes_bootstrap_and_superiority():
    a = seeds.Seeds(model("wide", [0.86, 0.87, 0.88, 0.89, 0.90]))
    b = seeds.Seeds(model("shallow", [0.80, 0.81, 0.82, 0.83, 0.84]))
    c = seeds.compare(a, b)
    assert c.difference == pytest.approx(0.06) and c.hodges_lehmann == pytest.approx(0.06)
    assert c.ci_low < 0.06 < c.ci_high and c.interval_excludes_zero
    assert c.superiority == 1.0 and seeds.compare(b, a).superiority == 0.0
    assert seeds.separated(c)
    again = seeds.compare(a, b)  # a fixed random state: the same text on a rerun
    assert (again.ci_low, again.ci_high) == (c.ci_low, c.ci_high)
    assert "+6.0 points (95% bootstrap interval +" in seeds.effect(c)
    one = seeds.compare(seeds.Seeds(model("wide", [0.86])), seeds.Seeds(model("shallow", [0.8])))
    assert not one.has_interval and not seeds.separated(one)


def test_difference_of_means_leaves_collapsed_seeds_out_but_the_test_ranks_them():
    a = seeds.Seeds(model("deeper", [0.80, 0.81, 0.10, 0.82, 0.79]))
    b = seeds.Seeds(model("shallow", [0.84, 0.845, 0.842, 0.848, 0.85]))
    c = seeds.compare(a, b)
    assert c.difference == pytest.approx(0.805 - 0.845)  # the means shown beside it
    assert c.superiority == 0.0 and c.n_a == 5


def test_equivalence_is_two_one_sided_welch_tests():
    x = np.array([0.842, 0.845, 0.843, 0.846, 0.844])
    y = np.array([0.843, 0.844, 0.846, 0.842, 0.845])
    p_eq, p_not_above = seeds.equivalence(x, y, 0.01)
    below = stats.ttest_ind(x - 0.01, y, equal_var=False, alternative="less").pvalue
    above = stats.ttest_ind(x + 0.01, y, equal_var=False, alternative="greater").pvalue
    assert p_eq == pytest.approx(max(below, above)) and p_not_above == pytest.approx(below)
    assert p_eq < 0.001
    far = seeds.equivalence(x + 0.03, y, 0.01)
    assert far[0] > 0.5
    assert all(math.isnan(p) for p in seeds.equivalence(x[:1], y, 0.01))


def test_prediction_interval_by_hand():
    low, high = seeds.prediction_interval([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 * math.sqrt(1 + 1 / 3)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    assert all(math.isnan(v) for v in seeds.prediction_interval([0.8]))


def test_seed_sets_for_5_10_and_quick_mode():
    assert seeds.seed_sets(range(5)) == ((0, 1), (2, 3, 4))
    assert seeds.seed_sets(range(10)) == (tuple(range(5)), tuple(range(5, 10)))
    assert seeds.seed_sets([0, 1]) == ((0,), (1,))
    assert seeds.seeds_text([0, 1]) == "seeds 0-1" and seeds.seeds_text([3]) == "seed 3"


# ---------------------------------------------------------------------------------------------
# the family of claims
# ---------------------------------------------------------------------------------------------

def every_model(n: int) -> list[Result]:
    """All models of the claims, n seeds each, far apart where the study says they differ."""
    centres = {"shallow": 0.84, "deeper": 0.80, "wide": 0.88, "dropout": 0.86,
               "batch_norm": 0.861, "shallow_lr_control": 0.83, "l1": 0.81, "l2": 0.85,
               "l1_l2": 0.811, "early_stopping": 0.86, "mixed": 0.85}
    out = []
    for name, c in centres.items():
        out += model(name, spread(c, n), wiggle=0.01 if name == "shallow" else 0.002)
    return out


def test_holm_over_the_family_leaves_nothing_significant_with_5_seeds():
    results = every_model(5)
    judged = analysis.judge_claims(results)
    assert len(judged) == len(analysis.CLAIMS) + 1  # and "the wide network is the best"
    for j in judged:
        if analysis.test_of(j.claim) == "Mann-Whitney U":
            assert j.p == pytest.approx(2 / 252)  # as far apart as 5 seeds can be...
            assert j.p_holm >= 0.05  # ...and still nothing after Holm
            assert j.verdict == ("not supported: significant alone (p = 0.008), not after "
                                 "Holm's correction")
    note = analysis.family_note(results)
    assert "smallest two-sided Mann-Whitney p is 0.008" in note
    assert "none of the 7 claims tested by ranks can reach significance" in note
    table = analysis.check_claims(results).frame
    assert {"difference [95% CI]", "P(a beats b)", "p", "Holm p"} <= set(table.columns)
    assert table.shape[1] <= 8
    # the equivalence claims pass on their own test, Holm-corrected
    same = table[table.claim == "Batch norm performs like dropout"].iloc[0]
    assert same.verdict == "supported: within ±1 point" and same.test.startswith("equivalence")


def test_with_ten_seeds_clear_differences_survive_holm():
    judged = {j.claim.text: j for j in analysis.judge_claims(every_model(10))}
    assert judged["The deeper network has lower test accuracy"].verdict == "supported"
    assert judged["More hidden units give higher test accuracy"].verdict == "supported"
    assert "significance" not in analysis.family_note(every_model(10))


# ---------------------------------------------------------------------------------------------
# sentences: no order inside the noise
# ---------------------------------------------------------------------------------------------

def test_smoothness_is_stated_only_when_the_seeds_show_it():
    shallow = seeds.Seeds(model("shallow", spread(0.84, 5), wiggle=0.010))
    close = seeds.Seeds(model("wide", spread(0.88, 5), wiggle=0.0101))
    text = discuss.compare_seeds(close, shallow)
    assert "the seeds do not show which curve is smoother" in text
    assert "has the smoother curve" not in text
    assert "the seeds do not show which gap is wider" in text  # equal gaps: no order
    # five seeds with visibly different jitter, spread so the test can tell
    smooth = seeds.Seeds([fake("wide", s, [0.7 + (w if i % 2 else -w) for i in range(9)] + [0.88])
                          for s, w in enumerate([0.001, 0.0012, 0.0014, 0.0016, 0.0018])])
    rough = seeds.Seeds([fake("shallow", s, [0.7 + (w if i % 2 else -w) for i in range(9)]
                              + [0.84]) for s, w in enumerate([0.010, 0.011, 0.012, 0.013, 0.014])])
    assert "the wide network has the smoother curve" in discuss.compare_seeds(smooth, rough)


def test_rank_models_names_an_order_only_between_groups():
    a = seeds.Seeds(model("wide", spread(0.880, 5, 0.004)))
    b = seeds.Seeds(model("dropout", spread(0.881, 5, 0.004)))
    c = seeds.Seeds(model("deeper", spread(0.80, 5)))
    groups = discuss.noise_groups([c, a, b])
    assert [[s.name for s in g] for g in groups] == [["dropout", "wide"], ["deeper"]]
    text = discuss.rank_models([c, a, b])
    assert "(not ordered by the seeds); 2. the deeper network" in text
    quick = discuss.rank_models([seeds.Seeds(model("wide", [0.88, 0.89])),
                                 seeds.Seeds(model("deeper", [0.80, 0.81]))])
    assert "the seeds give no order" in quick


def test_paper_line_uses_a_prediction_interval():
    s = seeds.Seeds(model("wide", spread(0.870, 5)))
    text = discuss.paper_line(s)
    assert "above the 95% prediction interval for one more of our runs" in text
    assert "t(0.975, n-1)" in text
    assert "(per seed, from +1.0 to +1.0 points)" in discuss.describe_seeds(s)  # gap's spread


# ---------------------------------------------------------------------------------------------
# the reproduction rule and replication
# ---------------------------------------------------------------------------------------------

def test_rows_are_judged_by_prediction_interval_and_tuned_rows_named():
    paper = PAPER["l2"].test_acc
    results = model("l2", spread(paper, 5)) + model("deeper", spread(0.70, 5))
    frame = findings.verdicts(results)
    assert frame.set_index("name").loc["l2", "verdict"] == "reproduced"
    assert frame.set_index("name").loc["deeper", "accuracy"] == "above"
    assert findings.tuned_rows() == ["l2", "l1", "l1_l2"]
    assert "`l2`" in findings.headline(results) and "tuned" in findings.headline(results)
    assert "l2 (tuned)" in set(findings.verdict_table(results).frame["study row"])


def test_every_consistent_reading_is_reported():
    paper = PAPER["dropout"].test_acc
    literal = model("dropout", spread(0.79, 5))
    w50 = model("dropout_w50", spread(paper, 5))
    frame = findings.verdicts(literal, w50)
    assert frame.readings.iloc[0] == ["dropout_w50"]
    assert "consistent with the study" in analysis.readings_table(literal, w50).frame.columns


def test_replication_with_5_seeds_marks_a_one_set_finding_fragile():
    results = every_model(5)
    results[[i for i, r in enumerate(results) if r.experiment.name == "deeper"][0]] = \
        fake("deeper", 0, [0.7] * 9 + [0.1])  # seed 0 of deeper collapses: set 0-1 only
    rows = {r["finding"]: r for r in findings.replication(results)}
    collapse = rows["lesson: collapses"]
    assert (collapse["first label"], collapse["second label"]) == ("seeds 0-1", "seeds 2-4")
    assert collapse["all"] == "deeper" and collapse["second"] == "none"
    assert collapse["replicated"] == "fragile"
    assert "***Fragile***: seeds 0-1 say: deeper; seeds 2-4: none" in findings.lessons(results)
    table = findings.replication_table(results)
    assert list(table.frame.columns) == ["finding", "all seeds", "seeds 0-1", "seeds 2-4",
                                         "replicated"]
    assert "of" in findings.replication_note(results)


def test_replication_with_10_seeds_and_in_quick_mode():
    rows = findings.replication(every_model(10))
    assert rows[0]["first label"] == "seeds 0-4" and rows[0]["second label"] == "seeds 5-9"
    claims = {r["finding"]: r for r in rows}
    deeper = claims["claim: The deeper network has lower test accuracy"]
    assert deeper["all"] == "supported (the claim's way)"
    # each set of 5 points the same way, though Holm over the family asks more than 5 seeds
    assert deeper["first"].endswith("(the claim's way)") and deeper["replicated"] == "yes"
    two = every_model(2)
    assert {r["replicated"] for r in findings.replication(two)} == {"needs more seeds"}
    assert findings.replication_note(two).startswith("Replication needs more seeds")


def test_a_claims_replication_asks_each_set_to_point_its_way():
    rule = replication._claim_row  # (verdict on all seeds, each set's verdict, the three ways)
    way, against = "the claim's way", "against the claim"
    held = rule("supported", ("not supported", "supported"), [way, way, way])
    assert held["replicated"] == "yes" and held["all"] == "supported (the claim's way)"
    assert held["first"] == "not supported (the claim's way)"
    assert rule("supported", ("not supported",) * 2, [way, way, against])["replicated"] == \
        "fragile"  # the second set's estimate points the other way
    assert rule("supported", ("contradicted", "supported"), [way, way, way])["replicated"] == \
        "fragile"
    assert rule("not supported", ("not supported",) * 2, [way, against, way])["replicated"] == \
        "yes"  # a verdict that states nothing, and neither set states anything
    assert rule("not supported", ("supported", "not supported"),
                [way, way, way])["replicated"] == "fragile"


# ---------------------------------------------------------------------------------------------
# findings --compare on two real quick-mode caches made with different seeds
# ---------------------------------------------------------------------------------------------

NAMES = ("shallow", "wide", "deeper")


def quick_cache(root: Path, seeds_: tuple[int, ...], monkeypatch) -> Path:
    from fmnist_helpers.runs import study_results

    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(root))
    monkeypatch.setenv("FMNIST_QUICK", "1")
    study_results(NAMES, seeds=seeds_, config=settings(quick=True))
    return root / "quick"


def test_findings_compare_two_quick_caches(tmp_path, monkeypatch):
    a = quick_cache(tmp_path / "a", (0, 1), monkeypatch)
    b = quick_cache(tmp_path / "b", (2, 3), monkeypatch)
    assert findings.compare_folders(a, a) == []
    with pytest.raises(ValueError, match="pass .*quick"):
        findings.load_folder(tmp_path / "a")  # the store's root, not a mode's folder
    lines: list[str] = []
    rc = findings.main(["--compare", str(a), str(b)], out=lines.append)
    differ = findings.compare_folders(a, b)
    assert lines[0].startswith(f"A: {a}: 6 runs, seeds 0-1")
    assert lines[1].startswith(f"B: {b}: 6 runs, seeds 2-3")
    assert rc == (1 if differ else 0)
    text = "\n".join(lines)
    status = findings.status_in(a), findings.status_in(b)
    assert set(status[0].values()) == {"needs more seeds"}  # 1 seed per set: nothing is fragile
    for finding, in_a, in_b in differ:
        if finding.startswith("rank: ") and findings.rank_agrees(in_a, in_b):  # regrouped
            assert f"- {finding}\n    A: {in_a}\n    B: {in_b}" in text
            continue
        assert (f"- {finding} [A: needs more seeds, B: needs more seeds]\n    A: {in_a}\n"
                f"    B: {in_b}") in text
    assert "other seeds" in text  # 0-1 against 2-3
    keys = set(findings.conclusions(*findings.load_folder(a)))
    assert {"row `wide`", "row `deeper`", "lesson: ranking",
            "claim: The deeper network has lower test accuracy"} <= keys
    # the module's command line, as the README shows it
    done = subprocess.run([sys.executable, "-m", "fmnist_helpers.findings", "--compare", str(a),
                           str(a)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "FMNIST_PROGRESS": "0"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Every verdict and lesson is the same in both caches." in done.stdout


def test_a_cache_of_two_arithmetics_is_read_in_this_ones(tmp_path, monkeypatch):
    import json
    import shutil

    a = quick_cache(tmp_path / "a", (0, 1), monkeypatch)
    mixed = tmp_path / "mixed"
    shutil.copytree(a, mixed)
    entries = sorted(mixed.glob("*.json"))
    first = json.loads(entries[0].read_text())
    first["versions"]["cpu_kernels"] = "other: AVX512 kernels, MKL_CBWR=unset"
    entries[0].write_text(json.dumps(first))
    results, _ = findings.load_folder(mixed)  # this process's arithmetic: the other entries
    assert len(results) == len(entries) - 1
    for entry in entries[1:]:
        d = json.loads(entry.read_text())
        d["versions"]["cpu_kernels"] = "third: SSE kernels"
        entry.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="2 CPU arithmetics.*set FMNIST_KERNELS"):
        findings.load_folder(mixed)


def test_replication_is_computed_once_for_the_same_runs(monkeypatch):
    results = every_model(5)
    first = findings.replication(results)
    calls = []
    monkeypatch.setattr(replication, "_replication", lambda *a: calls.append(a) or [])
    first[0]["replicated"] = "changed by a caller"
    again = findings.replication(list(results))  # a new list of the same runs: kept
    assert not calls and again[0]["replicated"] != "changed by a caller"
    findings.replication(every_model(5))  # other runs: computed
    assert len(calls) == 1


def test_rankings_agree_unless_an_order_is_reversed():
    assert findings.rank_agrees("{Trouser} > {Bag} > {Sandal, Sneaker}",
                                "{Trouser} > {Bag, Sandal}")
    assert not findings.rank_agrees("{Trouser} > {Bag}", "{Bag} > {Trouser}")
    assert findings.rank_agrees("best {wide}; worst {deeper, l1}", "best {wide}; worst {deeper}")


def test_the_ranking_lesson_replicates_where_no_set_reverses_it():
    assert findings._braced("best: wide; worst: deeper, l1") == "best {wide}; worst {deeper, l1}"
    assert findings._braced("no ranking") == "-"
    merged = "best: deeper, l1, wide; worst: deeper, l1, wide"  # 2 seeds tell nothing apart
    said = "best: wide; worst: deeper, l1"
    assert findings.rank_replicated(*map(findings._braced, (said, merged, said)))
    assert not findings.rank_replicated(*map(findings._braced, (
        said, "best: deeper; worst: wide", said)))
