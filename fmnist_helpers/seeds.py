"""Five seeds are the unit of truth: summarise an experiment's seeds and compare two of them.

The study ran each model once. Here every model runs with several seeds, and every statement
the report makes about a model rests on all of them, with statistics that one bad seed cannot
turn around:

* A seed whose final test accuracy is below :data:`COLLAPSE_BELOW` (twice chance), or whose
  loss diverged, has *collapsed*. It is named and reported apart; means and spreads describe
  the other seeds. Accuracies stay in [0, 1]: the spread is the seeds' range, never a
  symmetric interval that can pass 100%.
* Two models are compared with the Mann-Whitney U test on all their seeds (``scipy.stats``).
  It uses ranks only, so a collapsed seed counts as one low rank, not as a 70-point outlier.
  The size of a difference is the Hodges-Lehmann estimate: the median of all pairwise
  differences between the two models' seeds.
* Differences that round to zero at the precision shown are ties, and said to be ties.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .results import Result
from .runs import study_results
from .study import Experiment

CHANCE = 0.1  # ten balanced classes
COLLAPSE_BELOW = 2 * CHANCE
ALPHA = 0.05  # the significance level of every test in the report

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


def load(*names: str | Experiment, seeds: Sequence[int] | None = None,
         quick: bool | None = None) -> list[Seeds]:
    """Every seed of each named experiment (cached, or trained together), one Seeds per name."""
    results = study_results(list(names), seeds, quick)
    groups = group(results)
    return [groups[n if isinstance(n, str) else n.name] for n in names]


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against model ``b`` on one measure, over all their seeds."""

    a: str
    b: str
    difference: float  # Hodges-Lehmann: median of the pairwise differences a_i - b_j
    p_two_sided: float  # Mann-Whitney U
    p_greater: float  # one-sided, alternative: a > b
    p_less: float  # one-sided, alternative: a < b
    n_a: int
    n_b: int
    resolution: float  # differences smaller than half of this round to zero when shown

    @property
    def tie(self) -> bool:
        return abs(self.difference) < self.resolution / 2

    @property
    def significant(self) -> bool:
        return self.p_two_sided < ALPHA

    @property
    def direction(self) -> str:
        """"higher", "lower" or "tie" (a against b)."""
        if self.tie:
            return "tie"
        return "higher" if self.difference > 0 else "lower"


def compare(a: Seeds, b: Seeds, measure: Measure = test_acc,
            resolution: float = 0.001) -> Comparison:
    """Compare two models' seeds: Hodges-Lehmann difference and Mann-Whitney U p-values.

    ``resolution`` is the precision the difference is shown at (0.001 = 0.1 points of
    accuracy); a smaller difference is a tie.
    """
    x, y = a.values(measure), b.values(measure)
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError(f"{a.name} or {b.name}: the measure is undefined for some seed")
    difference = float(np.median(np.subtract.outer(x, y)))
    if np.ptp(np.concatenate([x, y])) == 0:  # all equal: no test can tell them apart
        p2 = pg = pl = 1.0
    else:
        p2 = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
        pg = float(stats.mannwhitneyu(x, y, alternative="greater").pvalue)
        pl = float(stats.mannwhitneyu(x, y, alternative="less").pvalue)
    return Comparison(a.name, b.name, difference, p2, pg, pl, len(x), len(y), resolution)


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
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"
