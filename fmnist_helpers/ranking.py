"""Orders that rest on the seeds: the hardest classes, the most frequent confusions, the class
the models differ on most, and the best and worst model.

One rule for every order of classes or confusions: item A is named before item B only when the
95% percentile-bootstrap interval of their difference excludes 0. The difference is paired (the
same runs score both items), and the bootstrap resamples each model's seeds within that model
(:data:`~fmnist_helpers.seeds.BOOTSTRAP_RESAMPLES` resamples, the fixed random state
:data:`~fmnist_helpers.seeds.BOOTSTRAP_SEED`, as :func:`fmnist_helpers.seeds.bootstrap_interval`),
the statistic being the mean over the models of each model's mean over its seeds. No rank test
is added: with 5 paired seeds a signed-rank test cannot go below p = 0.0625.

Items sorted by their mean are cut into groups, as the models are in
:func:`fmnist_helpers.discuss.noise_groups`: a cut falls between two neighbours only where every
item above it is apart from every item below it; inside a group no order is said ("not separable
with 5 seeds"). A model with a single seed adds no noise estimate; when no model has two seeds,
no order is tested and the sentences say so. Models are ranked by the package's rule for models
(:func:`fmnist_helpers.lessons.top_group`). Collapsed seeds are left out, as everywhere. An
order that one of the two seed sets (:func:`~fmnist_helpers.seeds.seed_sets`) reverses is
marked *fragile* in the sentence (:func:`fragile`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .data import CLASSES, N_CLASSES
from .learned import Runs, by_model, flat_runs, per_seed_class_accuracy, run_confusion
from .results import Result, get_data
from .seeds import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, LEVEL, group, pct, seed_sets, seeds_text
from .tables import Table

PAIRS = [(t, p) for t in range(N_CLASSES) for p in range(N_CLASSES) if t != p]
RULE = ("an order is named only where the 95% bootstrap interval of the paired difference "
        "over the seeds excludes 0")


# ---------------------------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------------------------

def resample(per_model: Sequence[np.ndarray], over_models: bool = True) -> np.ndarray | None:
    """Bootstrap draws of each model's mean over its seeds; ``per_model[m]`` is (seeds, items).

    Returns (resamples, items), the mean over the models, or with ``over_models=False``
    (resamples, models, items). None when no model has two seeds (nothing to resample).
    """
    if all(len(v) < 2 for v in per_model):
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = []
    for values in per_model:
        n = len(values)  # how often each seed is drawn, per resample: (resamples, seeds)
        counts = rng.multinomial(n, np.full(n, 1 / n), size=BOOTSTRAP_RESAMPLES)
        draws.append(counts @ np.asarray(values, dtype=float) / n)
    return np.mean(draws, axis=0) if over_models else np.stack(draws, axis=1)


def apart(differences: np.ndarray) -> np.ndarray:
    """Whether the percentile interval of each difference (resamples on axis 0) excludes 0.

    Counted rather than sorted: the interval's low end is above 0 when fewer draws than its
    order statistic are at or below 0 (the high end likewise). Only where 0 falls between the
    two draws that ``np.percentile`` interpolates does it decide, so the answer is its own.
    """
    d = np.asarray(differences, dtype=float)
    flat = d.ndim == 1
    d = d[:, None] if flat else d
    tail = 100 * (1 - LEVEL) / 2
    below = int(np.floor((len(d) - 1) * tail / 100))  # low end: sorted d[below], d[below + 1]
    above = int(np.floor((len(d) - 1) * (100 - tail) / 100))  # high end: d[above], d[above + 1]
    at_or_under, under = (d <= 0).sum(0), (d < 0).sum(0)
    out = (at_or_under <= below) | (under >= above + 2)
    unsure = (at_or_under == below + 1) | (under == above + 1) | np.isnan(d).any(0)
    if unsure.any():
        low, high = np.percentile(d[:, unsure], [tail, 100 - tail], axis=0)
        out[unsure] = (low > 0) | (high < 0)
    return out[0] if flat else out


def noise_groups(point: np.ndarray, draws: np.ndarray | None, descending: bool,
                 enough: int | None = None) -> list[list[int]]:
    """Item indices sorted by ``point`` (largest first when ``descending``), cut into groups:
    a cut only where every item above is :func:`apart` from every item below. Stops once the
    groups hold ``enough`` items; without draws, each item is its own group (untested)."""
    order = list(np.argsort(-point if descending else point, kind="stable"))
    enough = len(order) if enough is None else enough
    if draws is None:
        return [[int(i)] for i in order[:enough]]
    ordered = np.asarray(draws, dtype=float)[:, order]
    clear = np.zeros((len(order), len(order)), dtype=bool)  # [a, b]: a above b, told apart
    for a in range(len(order) - 1):
        clear[a, a + 1:] = apart(ordered[:, [a]] - ordered[:, a + 1:])
    groups: list[list[int]] = []
    start = 0
    for cut in range(1, len(order)):
        if clear[start:cut, cut:].all():
            groups.append([int(i) for i in order[start:cut]])
            start = cut
            if sum(map(len, groups)) >= enough:
                return groups
    groups.append([int(i) for i in order[start:]])
    return groups


def seeds_phrase(per_model: Sequence[np.ndarray]) -> str:
    """"not separable with 5 seeds" (or "with 4-5 seeds" where the models kept different
    numbers)."""
    counts = sorted({len(v) for v in per_model})
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"not separable with {n} seed{'s' if n != '1' else ''}"


# ---------------------------------------------------------------------------------------------
# Classes and confusions
# ---------------------------------------------------------------------------------------------

def _pairs_per_model(groups: dict[str, list[Result]]) -> list[np.ndarray]:
    """Each model's counts of every ordered mistake (true -> predicted), (seeds, 90)."""
    rows, columns = zip(*PAIRS, strict=True)
    return [np.array([run_confusion(r)[rows, columns] for r in runs]) for runs in
            groups.values()]


def hardest_classes(results: Runs, top: int = 3, easiest: bool = False) -> list[list[str]]:
    """The hardest classes (lowest mean accuracy over the models) in groups the seeds tell
    apart, enough groups for ``top`` classes; ``easiest`` from the other end."""
    per_model = per_seed_class_accuracy(by_model(results))
    point = np.mean([v.mean(0) for v in per_model], axis=0)
    found = noise_groups(point, resample(per_model), easiest, top)
    return [[CLASSES[i] for i in g] for g in found]


def most_confused_pairs(results_by_model: Runs, top: int = 5) -> pd.DataFrame:
    """The most frequent mistakes as ORDERED pairs, true class -> predicted class, in groups
    the seeds tell apart (enough groups for ``top`` pairs).

    Ordered, because the two directions differ (a shirt called a T-shirt is not a T-shirt
    called a shirt). ``images``: the mistake's count per run, averaged over each model's seeds
    and then over the models; ``share``: that count over the true class's test images;
    ``fewest``/``most``: the range of the per-model counts; ``group``: 1 for the pairs no
    other pair is clear of, 2 for the next, ...
    """
    groups = by_model(results_by_model)
    per_model = _pairs_per_model(groups)
    means = np.stack([v.mean(0) for v in per_model])  # (models, pairs)
    point = means.mean(0)
    sizes = get_data(next(iter(groups.values()))[0].quick).test.class_counts()
    rows = []
    for number, found in enumerate(noise_groups(point, resample(per_model), True, top), 1):
        for k in found:
            true, predicted = PAIRS[k]
            rows.append({"true": CLASSES[true], "predicted": CLASSES[predicted],
                         "images": point[k], "share": point[k] / sizes[true],
                         "fewest": means[:, k].min(), "most": means[:, k].max(),
                         "group": number})
    return pd.DataFrame(rows)


def confused_pairs_table(results_by_model: Runs, top: int = 5) -> Table:
    """:func:`most_confused_pairs` as a table that reads (counts and shares rounded)."""
    whole = most_confused_pairs(results_by_model, top)
    frame = whole.iloc[:2 * top]  # a large last group is cut, its other pairs counted
    rest = len(whole) - len(frame)
    more = (f" Group {whole['group'].iloc[-1]} holds {rest} more pair{'s' if rest > 1 else ''}, "
            "not shown." if rest else "")
    shown = pd.DataFrame({
        "group": frame["group"].astype(str),
        "true class": frame["true"], "taken for": frame["predicted"],
        "images per run": frame["images"].map(lambda x: f"{x:.1f}"),
        "share of the class": frame["share"].map(lambda x: f"{100 * x:.1f}%"),
        "fewest-most over models": [f"{a:.1f}-{b:.1f}" for a, b in
                                    zip(frame["fewest"], frame["most"], strict=True)]})
    return Table(shown, "Images per run: mean over each model's seeds, then over the models. "
                        f"Groups: {RULE}; the pairs of one group are not told apart.{more}")


def classes_where_models_differ(results: Runs, top: int = 3) -> pd.DataFrame:
    """The classes where the best and the worst model on that class are apart beyond the
    seeds' noise, by the spread (best minus worst model's mean accuracy), in groups the seeds
    tell apart, enough for ``top`` classes: columns ``spread``, ``best model``, ``best``,
    ``worst model``, ``worst``, ``group``. Empty when no class separates the models."""
    groups = by_model(results)
    per_model = per_seed_class_accuracy(groups)
    means = np.stack([v.mean(0) for v in per_model])  # (models, classes)
    draws = resample(per_model, over_models=False)  # (resamples, models, classes)
    columns = ["spread", "best model", "best", "worst model", "worst", "group"]
    if draws is None or len(groups) < 2:
        return pd.DataFrame(columns=columns).rename_axis("class")
    best, worst = means.argmax(0), means.argmin(0)
    classes = np.arange(N_CLASSES)
    beyond = apart(draws[:, best, classes] - draws[:, worst, classes])
    kept = np.flatnonzero(beyond)
    spread = means.max(0) - means.min(0)
    spread_draws = draws.max(1) - draws.min(1)  # (resamples, classes)
    names = list(groups)
    rows = {}
    found = noise_groups(spread[kept], spread_draws[:, kept], True, top) if kept.size else []
    for number, members in enumerate(found, 1):
        for c in kept[members]:
            rows[CLASSES[c]] = [spread[c], names[best[c]], means[best[c], c],
                                names[worst[c]], means[worst[c], c], number]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("class")


# ---------------------------------------------------------------------------------------------
# Best and worst model
# ---------------------------------------------------------------------------------------------

class Pick(list):
    """The seeds of the model shown for one end of the ranking, with the models it stands
    for: ``group`` (names), ``side`` ("highest" or "lowest")."""

    def __init__(self, runs: Sequence[Result], group_names: Sequence[str], side: str):
        super().__init__(runs)
        self.group, self.side = list(group_names), side

    @property
    def note(self) -> str:
        """One sentence saying which models the shown one stands for."""
        if len(self.group) == 1:
            return (f"The model with the {self.side} mean test accuracy, clear of every other "
                    "model by the seeds.")
        return (f"Shown: the first, in the page's order of the models, of the {len(self.group)} "
                f"models the seeds do not separate from the {self.side} mean: "
                f"{', '.join(self.group)}.")


def best_and_worst(results: Runs) -> tuple[Pick, Pick]:
    """The seeds of one model from the best group and one from the worst group.

    The groups are :func:`fmnist_helpers.lessons.top_group`'s: the highest (lowest) mean and
    every model the seeds do not separate from it. From a group of several, the model shown is
    the first in the order the runs are given (the study's table order in the notebooks), so
    that it does not change with the seeds' noise; each :class:`Pick` names its group.
    """
    from .lessons import top_group

    models = list(group(flat_runs(results)).values())
    picks = []
    for best, side in ((True, "highest"), (False, "lowest")):
        members = {s.name for s in top_group(models, best)}
        in_order = [s for s in models if s.name in members]
        picks.append(Pick(in_order[0].runs, [s.name for s in in_order], side))
    return picks[0], picks[1]


# ---------------------------------------------------------------------------------------------
# In words
# ---------------------------------------------------------------------------------------------

def join(words: list[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _named(names: list[str], limit: int, noun: str) -> str:
    """``names`` joined, at most ``limit`` of them, the rest counted: "A, B and 4 other
    classes"."""
    if len(names) <= limit:
        return join(names)
    rest = len(names) - limit
    plural = {"class": "classes"}.get(noun, noun + "s") if rest > 1 else noun
    return join([*names[:limit], f"{rest} other {plural}"])


def groups_text(found: list[list[str]], value: Callable[[str], str], noise: str,
                limit: int = 4, noun: str = "class") -> str:
    """Groups in order, "then" between them; a group of several says it is not ordered:
    "*Shirt* (47.3%), then *Coat* (69.9%) and *Pullover* (70.1%), not separable with 5
    seeds"."""
    parts = []
    for members in found:
        named = [f"{m} ({value(m)})" for m in members]
        text = _named(named, limit, noun)
        parts.append(text if len(members) == 1 else f"{text}, {noise}")
    return "; then ".join(parts) if any(len(g) > 1 for g in found) else ", then ".join(parts)


def _who(results: list[Result], groups: dict[str, list[Result]]) -> str:
    """Whose classes a sentence describes: one run, one model's seeds, or several models."""
    from .discuss import label

    runs = [r for rs in groups.values() for r in rs]
    out = sum(len(s.collapsed) for s in group(results).values() if len(s.kept) < len(s))
    note = "" if not out else f"; {out} collapsed seed{'s' if out > 1 else ''} left out"
    if len(groups) > 1:
        return (f"Over the {len(groups)} models (each model's mean over its seeds{note}, then "
                "the mean over the models)")
    if len(runs) == 1 and not note:
        return f"For {label(runs[0])} (seed {runs[0].seed})"
    return f"For {label(runs[0])} (mean over its {len(runs)} seeds{note})"


def _differ_text(groups: dict[str, list[Result]]) -> str:
    from .discuss import label

    differ = classes_where_models_differ(groups, top=1)
    if differ.empty:
        if all(len(runs) < 2 for runs in groups.values()):
            return " With one seed per model, no class can be said to separate the models."
        return (" No class separates the models beyond the seeds' noise: on every class the "
                "bootstrap interval of the best model's mean minus the worst's includes 0.")
    said = [f"*{c}* (from {pct(row['worst'])}, {label(groups[row['worst model']][0])}, to "
            f"{pct(row['best'])}, {label(groups[row['best model']][0])})"
            for c, row in differ.iterrows()]
    noise = "" if len(said) == 1 else (
        f" (their spreads {seeds_phrase(per_seed_class_accuracy(groups))})")
    return f" The models differ most on {_named(said, 3, 'class')}{noise}."


def reversed_in(whole: dict[str, int], part: dict[str, int]) -> bool:
    """Whether ``part`` (name -> group number, on fewer seeds) puts two items in the opposite
    order to ``whole``. A group merged for lack of seeds is no reversal: it orders nothing."""
    return any(whole[a] < whole[b] and part[a] > part[b]
               for a in whole for b in whole if a in part and b in part)


def fragile(results: list[Result], conclude: Callable[[list[Result]], dict[str, int]]) -> str:
    """" *Fragile*: seeds 2-4 alone reverse part of this order." when either seed set
    (:func:`~fmnist_helpers.seeds.seed_sets`) orders two items against all seeds'
    ``conclude`` (name -> group number); "" otherwise, or when a set has a single seed."""
    sets = seed_sets({r.seed for r in results})
    if len(sets[0]) < 2:
        return ""
    whole = conclude(results)
    for seeds in sets:
        if reversed_in(whole, conclude([r for r in results if r.seed in seeds])):
            return f" *Fragile*: {seeds_text(seeds)} alone reverse part of this order."
    return ""


def _numbered(found: list[list[str]]) -> dict[str, int]:
    return {name: number for number, members in enumerate(found) for name in members}


def describe_classes(results: Runs, top: int = 3) -> str:
    """Markdown naming the hardest and the easiest classes, the most frequent confusions and,
    with several models, the class they differ on most: an order only where the seeds show
    it, otherwise a group; every number computed from the runs."""
    results = flat_runs(results)
    groups = by_model(results)
    per_model = per_seed_class_accuracy(groups)
    means = dict(zip(CLASSES, np.mean([v.mean(0) for v in per_model], axis=0), strict=True))
    noise = seeds_phrase(per_model)
    untested = all(len(v) < 2 for v in per_model)
    hard, easy = hardest_classes(groups, top), hardest_classes(groups, 1, easiest=True)
    first = [f"*{c}*" for c in hard[0]]

    def accuracy(name: str) -> str:
        return pct(means[name.strip("*")])

    def named(found: list[list[str]]) -> str:
        return groups_text([[f"*{c}*" for c in g] for g in found], accuracy, noise)

    lead = ("the class classified right least often is" if len(first) == 1 else
            "the classes classified right least often are")
    if len(first) == N_CLASSES:  # one group: neither end can be named
        low, high = hard[0][0], hard[0][-1]
        text = (f"{_who(results, groups)}, the seeds put the classes in no order: all "
                f"{N_CLASSES} are {noise}, from *{low}* ({pct(means[low])} of its test images) "
                f"to *{high}* ({pct(means[high])}).")
    else:
        text = (f"{_who(results, groups)}, in % of each class's test images, {lead} "
                f"{named(hard)}; the easiest {'is' if len(easy[0]) == 1 else 'are'} "
                f"{named(easy)}.")
    text += fragile(results, lambda runs: _numbered(hardest_classes(runs, N_CLASSES)))
    pairs = most_confused_pairs(groups, top=top)
    sizes = get_data(results[0].quick).test.class_counts()
    found = [[f"*{p.true}* taken for *{p.predicted}*" for p in part.itertuples()]
             for _, part in pairs.groupby("group", sort=True)]
    images = {f"*{p.true}* taken for *{p.predicted}*":
              f"{p.images:.1f} of {sizes[CLASSES.index(p.true)]:,}, {pct(p.share)}"
              for p in pairs.itertuples()}
    per = "test images per run" + ("" if len(groups) == 1 else ", averaged over the models")
    text += (f" The most frequent mistake{'s' if len(pairs) > 1 else ''} ({per}): "
             f"{groups_text(found, images.__getitem__, noise, noun='pair')}.")
    text += fragile(results, lambda runs: {f"{p.true}>{p.predicted}": p.group for p in
                                           most_confused_pairs(runs, 2 * top).itertuples()})
    if untested:
        text += (" With one seed, these orders are the run's own, not tested against the "
                 "seeds' noise.")
    if len(groups) > 1:
        text += _differ_text(groups) + fragile(results, lambda runs: dict(
            classes_where_models_differ(runs, N_CLASSES)["group"]))
    return text
