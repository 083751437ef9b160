"""Five seeds are the unit of truth: summarise an experiment's seeds and compare two of them.

The study ran each model once. Here every model runs with several seeds, and every statement
the report makes about a model rests on all of them, and claims no more than they show:

* A seed whose final test accuracy is below :data:`COLLAPSE_BELOW` (twice chance), or whose
  loss diverged, has *collapsed*. It is named and reported apart; means and spreads describe
  the other seeds. Accuracies stay in [0, 1]: the spread is the seeds' range, never a
  symmetric interval that can pass 100%.
* Effect sizes first: two models are compared by the difference of their mean test accuracies
  (over the seeds that did not collapse) with a 95% percentile-bootstrap interval
  (:func:`scipy.stats.bootstrap`, seeds resampled within each model, fixed random state so a
  rerun writes the same text), and by the probability that a seed of one beats a seed of the
  other (the common-language effect size, U / (n_a n_b), over all seeds).
* Then the test: two-sided Mann-Whitney U on all seeds (ranks only, so a collapsed seed counts
  as one low rank, not as a 70-point outlier). A family of tests is corrected with Holm's
  step-down method (:func:`holm`).
* "The same" or "no higher" is never read from a test that found nothing: it needs an
  equivalence test against a stated margin (:data:`MARGIN`, two one-sided Welch t-tests).
* Two models are put in an order only when they are :func:`separated`: the bootstrap interval
  of the difference excludes 0 and the test has p < 0.05; otherwise they are a group, within
  the seeds' noise of each other.
* Whether a single run (the study's) could be one more draw of ours: the t-based 95%
  prediction interval for one new run, :func:`prediction_interval`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .results import Result
from .settings import Settings
from .study import Experiment

CHANCE = 0.1  # ten balanced classes
COLLAPSE_BELOW = 2 * CHANCE
ALPHA = 0.05  # the significance level of every test in the report
LEVEL = 0.95  # bootstrap and prediction intervals
MARGIN = 0.01  # equivalence margin for accuracies: one percentage point
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 20  # a fixed random state: a rerun on the same seeds writes the same interval

Measure = Callable[[Result], float]


def test_acc(r: Result) -> float:
    """Exact test accuracy (correct / total) after the last epoch."""
    return r.final["test_acc"]


def train_acc_running(r: Result) -> float:
    """The study's train accuracy: mean of per-batch accuracies during the last epoch."""
    return r.final["train_acc_running"]


def epochs(r: Result) -> float:
    """Epochs trained (early stopping may end a run before its cap)."""
    return float(r.epochs_trained)


def jitter(r: Result, metric: str = "test_acc") -> float:
    """How much a curve fluctuates around its trend, in the metric's units.

    The standard deviation of the noise around a locally straight trend, estimated from second
    differences: ``sqrt(mean((a[t+1] - 2 a[t] + a[t-1])^2) / 6)``. A steady rise (the learning
    trend) adds nothing; for white noise of standard deviation s it estimates s.
    """
    values = np.asarray(r.history[metric], dtype=float)
    if len(values) < 3:
        return math.nan
    second = values[2:] - 2 * values[1:-1] + values[:-2]
    return float(math.sqrt(np.mean(second**2) / 6))


JITTER_DEFINITION = (
    "*Jitter* is the standard deviation of test accuracy around its local trend, estimated "
    "from second differences, sqrt(mean((a[t+1] - 2a[t] + a[t-1])²) / 6): a steady rise "
    "counts as trend, not as roughness."
)


def collapsed(r: Result) -> bool:
    """True for a run that ended at chance level or whose loss diverged."""
    return bool(r.history.diverged) or not r.final["test_acc"] >= COLLAPSE_BELOW


@dataclass(frozen=True)
class Summary:
    """A metric over the seeds that did not collapse: centre and spread, and what was left out."""

    n: int
    mean: float
    sd: float
    median: float
    low: float
    high: float
    n_collapsed: int


class Seeds:
    """All seeds of one experiment, in seed order."""

    def __init__(self, runs: Iterable[Result]):
        self.runs = sorted(runs, key=lambda r: r.seed)
        if not self.runs:
            raise ValueError("Seeds needs at least one run")
        names = {r.experiment.name for r in self.runs}
        if len(names) > 1:
            raise ValueError(f"runs of several experiments given together: {sorted(names)}")

    @property
    def experiment(self) -> Experiment:
        return self.runs[0].experiment

    @property
    def name(self) -> str:
        return self.experiment.name

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self):
        return iter(self.runs)

    def __repr__(self) -> str:
        return f"Seeds({self.name!r}, seeds={[r.seed for r in self.runs]})"

    @property
    def collapsed(self) -> list[Result]:
        return [r for r in self.runs if collapsed(r)]

    @property
    def kept(self) -> list[Result]:
        """The seeds that did not collapse (all of them when every seed collapsed)."""
        return [r for r in self.runs if not collapsed(r)] or self.runs

    def values(self, measure: Measure = test_acc, kept: bool = False) -> np.ndarray:
        return np.array([measure(r) for r in (self.kept if kept else self.runs)], dtype=float)

    def summary(self, measure: Measure = test_acc) -> Summary:
        """Mean, sd, median and range of ``measure`` over the seeds that did not collapse."""
        v = self.values(measure, kept=True)
        sd = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
        return Summary(len(v), float(np.mean(v)), sd, float(np.median(v)), float(v.min()),
                       float(v.max()), len(self.runs) - len(self.kept))

    def curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Epochs and the per-epoch median of ``metric`` over the kept seeds still training."""
        longest = max(len(r.history) for r in self.kept)
        epochs_, medians = [], []
        for e in range(longest):
            at = [r.history[metric][e] for r in self.kept if len(r.history) > e]
            epochs_.append(e + 1)
            medians.append(float(np.median(at)))
        return np.array(epochs_), np.array(medians)


def group(results: Iterable[Result]) -> dict[str, Seeds]:
    """Results keyed by experiment name, each as :class:`Seeds`, in first-seen order."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[r.experiment.name].append(r)
    return {name: Seeds(runs) for name, runs in groups.items()}


def load_or_train(*names: str | Experiment, seeds: Sequence[int] | None = None,
                  config: Settings | None = None) -> list[Seeds]:
    """The notebooks' loader: every seed of each named experiment, one Seeds per name. Cached
    runs are loaded; the missing ones are TRAINED, all together in one plan. ``seeds`` default
    to ``config.seeds``, ``config`` to ``settings()``. Nothing else in this module trains."""
    from .runs import study_results  # the trainer, imported only by the one function that trains

    results = study_results(list(names), seeds, config)
    groups = group(results)
    return [groups[n if isinstance(n, str) else n.name] for n in names]


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against model ``b`` on one measure, over all their seeds."""

    a: str
    b: str
    difference: float  # mean of a minus mean of b, over the seeds that did not collapse
    p_two_sided: float  # Mann-Whitney U, all seeds
    p_greater: float  # one-sided, alternative: a > b
    p_less: float  # one-sided, alternative: a < b
    n_a: int
    n_b: int
    resolution: float  # differences smaller than half of this round to zero when shown
    ci_low: float = math.nan  # 95% percentile-bootstrap interval of ``difference``
    ci_high: float = math.nan  # (nan when a model has fewer than 2 seeds)
    superiority: float = math.nan  # P(a seed of a beats a seed of b), ties count half
    hodges_lehmann: float = math.nan  # median of the pairwise differences a_i - b_j
    margin: float = math.nan  # equivalence margin (nan: no equivalence test)
    p_equivalent: float = math.nan  # TOST: |difference| < margin (two one-sided Welch tests)
    p_not_above: float = math.nan  # one-sided Welch test: difference < margin

    @property
    def tie(self) -> bool:
        return abs(self.difference) < self.resolution / 2

    @property
    def significant(self) -> bool:
        return self.p_two_sided < ALPHA

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.ci_low) or math.isnan(self.ci_high))

    @property
    def interval_excludes_zero(self) -> bool:
        return self.has_interval and (self.ci_low > 0 or self.ci_high < 0)

    @property
    def direction(self) -> str:
        """"higher", "lower" or "tie" (a against b)."""
        if self.tie:
            return "tie"
        return "higher" if self.difference > 0 else "lower"


def bootstrap_interval(x: np.ndarray, y: np.ndarray,
                       level: float = LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval of mean(x) - mean(y), seeds resampled within each model.

    nan, nan when either side has fewer than two seeds (one seed has no spread to resample).
    """
    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # nothing varies: the interval is the point
        d = float(np.mean(x) - np.mean(y))
        return d, d

    def diff(u, v, axis=-1):
        return np.mean(u, axis=axis) - np.mean(v, axis=axis)

    res = stats.bootstrap((x, y), diff, n_resamples=BOOTSTRAP_RESAMPLES, vectorized=True,
                          confidence_level=level, method="percentile",
                          rng=np.random.default_rng(BOOTSTRAP_SEED))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def equivalence(x: np.ndarray, y: np.ndarray, margin: float) -> tuple[float, float]:
    """Two one-sided Welch t-tests on mean(x) - mean(y) against ``margin``.

    Returns (p of "the difference lies within ±margin" (TOST: the larger of the two one-sided
    p-values), p of "the difference is below +margin" (x no more than ``margin`` above y)).
    nan when a side has fewer than two seeds or neither varies.
    """
    if len(x) < 2 or len(y) < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return math.nan, math.nan
    below = float(stats.ttest_ind(x - margin, y, equal_var=False, alternative="less").pvalue)
    above = float(stats.ttest_ind(x + margin, y, equal_var=False,
                                  alternative="greater").pvalue)
    return max(below, above), below


def compare(a: Seeds, b: Seeds, measure: Measure = test_acc, resolution: float = 0.001,
            margin: float | None = None) -> Comparison:
    """Compare two models' seeds: effect sizes first, then the Mann-Whitney U test.

    The difference of means and its bootstrap interval use the seeds that did not collapse
    (as the means shown beside them do); the test and the probability that a seed of ``a``
    beats one of ``b`` rank all seeds. ``resolution`` is the precision the difference is shown
    at (0.001 = 0.1 points of accuracy); a smaller difference is a tie. With ``margin``, the
    equivalence tests against it are run too (:func:`equivalence`).
    """
    x, y = a.values(measure), b.values(measure)
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError(f"{a.name} or {b.name}: the measure is undefined for some seed")
    xk, yk = a.values(measure, kept=True), b.values(measure, kept=True)
    difference = float(np.mean(xk) - np.mean(yk))
    low, high = bootstrap_interval(xk, yk)
    if np.ptp(np.concatenate([x, y])) == 0:  # all equal: no test can tell them apart
        p2 = pg = pl = 1.0
        superiority = 0.5
    else:
        p2 = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
        greater = stats.mannwhitneyu(x, y, alternative="greater")
        pg = float(greater.pvalue)
        pl = float(stats.mannwhitneyu(x, y, alternative="less").pvalue)
        superiority = float(greater.statistic) / (len(x) * len(y))
    p_eq, p_not_above = (math.nan, math.nan) if margin is None else equivalence(xk, yk, margin)
    return Comparison(a.name, b.name, difference, p2, pg, pl, len(x), len(y), resolution,
                      low, high, superiority, float(np.median(np.subtract.outer(x, y))),
                      math.nan if margin is None else margin, p_eq, p_not_above)


def separated(c: Comparison) -> bool:
    """True when the gap exceeds the seeds' noise: the bootstrap interval of the difference
    excludes 0 and the two-sided Mann-Whitney p is below :data:`ALPHA`."""
    return c.interval_excludes_zero and c.significant


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (nan counts as 1).

    Sorted ascending, the k-th smallest (k = 0, 1, ...) of m is multiplied by m - k; each
    adjusted value is at least the one before it and at most 1. A hypothesis is rejected at
    level alpha when its adjusted p is below alpha.
    """
    p = np.array([1.0 if math.isnan(v) else float(v) for v in pvalues])
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for k, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - k) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def prediction_interval(values: Sequence[float],
                        level: float = LEVEL) -> tuple[float, float]:
    """Where one more run should land: mean ± t(level, n-1) · sd · sqrt(1 + 1/n).

    The t-based prediction interval for a single new draw from the distribution the seeds come
    from (assumed roughly normal); nan, nan with fewer than two values.
    """
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(v, ddof=1) * math.sqrt(1 + 1 / n))
    mean = float(np.mean(v))
    return mean - half, mean + half


PREDICTION_METHOD = (
    "95% prediction interval for one new run from our seeds (those that did not collapse): "
    "mean ± t(0.975, n-1) · sd · √(1 + 1/n)"
)


def seed_sets(seeds: Iterable[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The seeds split into two independent sets: the first half and the second (5 seeds:
    2 and 3; 10: 5 and 5; 2: 1 and 1)."""
    ordered = tuple(sorted(set(seeds)))
    half = len(ordered) // 2
    return ordered[:half], ordered[half:]


def seeds_text(seeds: Sequence[int]) -> str:
    """"seeds 0-4", "seed 3", "seeds 0, 2, 5"."""
    seeds = sorted(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value Mann-Whitney can give with these many seeds (no ties)."""
    return 2 / math.comb(n_a + n_b, n_a)


def ranking_agreement(ours: Sequence[str], theirs: Sequence[str]) -> tuple[float, float]:
    """Kendall's tau between two orderings of the same models, and its two-sided p-value."""
    if sorted(ours) != sorted(theirs):
        raise ValueError("the two rankings must hold the same models")
    if len(ours) < 2:
        raise ValueError("need at least two models to compare rankings")
    position = {name: i for i, name in enumerate(theirs)}
    result = stats.kendalltau(range(len(ours)), [position[n] for n in ours])
    return float(result.statistic), float(result.pvalue)


# ---------------------------------------------------------------------------------------------
# Numbers as text: percentages with one decimal, spreads as mean ± sd
# ---------------------------------------------------------------------------------------------

def pct(x: float) -> str:
    """An accuracy as a percentage with one decimal: 0.8423 -> "84.2%"."""
    return f"{100 * x:.1f}%"


def mean_sd(s: Summary, unit: str = "%") -> str:
    """"84.2 ± 0.3" (percent) or "16.2 ± 3.1" (unit ""), plus the collapsed seeds left out."""
    scale = 100 if unit == "%" else 1
    spread = "" if math.isnan(s.sd) else f" ± {scale * s.sd:.1f}"
    text = f"{scale * s.mean:.1f}{spread}"
    if s.n_collapsed:
        text += f" ({s.n_collapsed} collapsed)"
    return text


def pct_sd(s: Summary) -> str:
    """"84.2 ± 0.3%" for a sentence, with the collapsed seeds after the unit: "80.1 ± 2.9%
    (1 collapsed)"."""
    text, note = mean_sd(s), f" ({s.n_collapsed} collapsed)"
    return f"{text.removesuffix(note)}%{note}" if s.n_collapsed else f"{text}%"


def p_value(p: float) -> str:
    """A p-value as people write it: "p = 0.008", "p < 0.001", "p = 0.42"."""
    if math.isnan(p):
        return "p not defined"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def signed(d: float, scale: float = 100, digits: int = 1) -> str:
    """A difference with its sign, in points: 0.012 -> "+1.2"; never "-0.0"."""
    text = f"{scale * d:+.{digits}f}"
    return text.replace("-", "+") if float(text) == 0 else text


def interval(c: Comparison, scale: float = 100, digits: int = 1) -> str:
    """The bootstrap interval as "+0.4 to +2.0", or "none (one seed)"."""
    if not c.has_interval:
        return "no interval from one seed"
    return f"{signed(c.ci_low, scale, digits)} to {signed(c.ci_high, scale, digits)}"


def effect(c: Comparison, scale: float = 100, digits: int = 1, unit: str = "points") -> str:
    """Effect size first, then the test: "+1.2 points (95% bootstrap interval +0.4 to +2.0);
    a seed of a beats a seed of b with probability 0.88; two-sided Mann-Whitney U, p = 0.03"."""
    ci = (f"95% bootstrap interval {interval(c, scale, digits)}" if c.has_interval else
          "no interval: a model has a single seed")
    return (f"{signed(c.difference, scale, digits)} {unit} ({ci}); a seed of the first beats "
            f"a seed of the second with probability {c.superiority:.2f}; two-sided "
            f"Mann-Whitney U, {p_value(c.p_two_sided)}")
