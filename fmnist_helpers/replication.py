"""Replication: every finding of the report on two independent seed sets.

:func:`conclusions` writes each verdict, claim, lesson and ranking without digits: what a rerun
must not change. :func:`replication` computes them on all seeds and on each half of the seeds
(:func:`fmnist_helpers.seeds.seed_sets`: 0-1 and 2-4 of the default 5; 0-4 and 5-9 with
``FMNIST_SEEDS=10``) and says of each whether it replicated, by one rule per kind:

* a verdict or a lesson: the three say the same;
* a claim: a verdict that states something (supported, contradicted) holds when each set's
  estimate points its way and neither set states the opposite, as Holm's correction over the
  family asks more than half the seeds can give; one that states nothing holds when neither set
  states anything;
* a ranking (classes, confusions, models; the ranking lesson): no set reverses an order, a set
  that merges groups for want of seeds ordering nothing.

:mod:`fmnist_helpers.findings` puts the answers into the report's words and tables, and
compares two caches with :func:`rank_agrees` for rankings.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .lessons import lesson_items
from .results import Result
from .seeds import seed_sets, seeds_text
from .tables import Table
from .verdicts import verdicts

NEEDS = 2  # seeds per set that replication needs (a prediction interval needs two)


def conclusions(results: Iterable[Result], readings: Iterable[Result] = ()) -> dict[str, str]:
    """Every verdict and lesson as a conclusion without digits: what a rerun must not change."""
    from .analysis import judge_claims, verdict_kind

    results, readings = list(results), list(readings)
    out = {}
    for row in verdicts(results, readings).to_dict("records"):
        out[f"row `{row['name']}`"] = row["verdict"] + (
            f" ({', '.join(row['readings'])})" if row["readings"] else "")
    for j in judge_claims(results):
        out[f"claim: {j.claim.text}"] = verdict_kind(j.verdict)
    for key, (_, conclusion) in lesson_items(results, readings).items():
        out[f"lesson: {key}"] = conclusion
    out.update(rank_conclusions(results))
    return out


def groups_order(found: Iterable[Iterable[str]]) -> str:
    """Groups of names, best first, without digits: "{Shirt} > {Coat, Pullover}" (each group's
    members sorted, so the text does not depend on the order inside a group)."""
    return " > ".join("{" + ", ".join(sorted(members)) + "}" for members in found)


def rank_conclusions(results: Iterable[Result]) -> dict[str, str]:
    """The orders :mod:`fmnist_helpers.ranking` names over the study's models, as conclusions
    without digits: the hardest and the easiest classes, the most frequent confusions ("Shirt
    taken for T-shirt/top"), and the models in the best and in the worst group. Runs without
    stored test predictions give no class orders (only the models' order)."""
    from . import ranking
    from .learned import by_model

    results = list(results)
    if not results:
        return {}
    out = {}
    if all(r.artifacts is not None for r in results):
        models = by_model(results)  # name -> each model's kept seeds
        out["rank: hardest classes"] = groups_order(ranking.hardest_classes(models))
        out["rank: easiest classes"] = groups_order(ranking.hardest_classes(models,
                                                                            easiest=True))
        pairs = ranking.most_confused_pairs(models)
        out["rank: most confused pairs"] = groups_order(
            [f"{p.true} taken for {p.predicted}" for p in part.itertuples()]
            for _, part in pairs.groupby("group", sort=True))
    best, worst = ranking.best_and_worst(results)
    out["rank: best and worst model"] = (f"best {groups_order([best.group])}; "
                                         f"worst {groups_order([worst.group])}")
    return out


def _numbered(order: str) -> dict[str, int]:
    """A :func:`groups_order` text read back: name -> its group's place (0 first). The best and
    worst models read as two places; a model in both (one group only) is left out."""
    found = [part.strip(" {}").split(", ") for part in
             order.removeprefix("best ").replace("; worst ", " > ").split(" > ")]
    places = {name: place for place, members in enumerate(found) for name in members}
    return {name: place for name, place in places.items()
            if sum(name in members for members in found) == 1}


def rank_replicated(said: str, first: str, second: str) -> bool:
    """A ranking replicates when neither seed set orders two names against all the seeds
    (:func:`fmnist_helpers.ranking.reversed_in`): a set that merges groups, having fewer seeds
    to tell them apart, orders nothing and reverses nothing; the sentences' *fragile* mark
    (:func:`fmnist_helpers.ranking.fragile`) follows the same rule."""
    return "-" not in (first, second) and rank_agrees(said, first) and rank_agrees(said, second)


def _braced(best_worst: str) -> str:
    """The ranking lesson's "best: a; worst: b, c" as a ranking, "best {a}; worst {b, c}"."""
    if not best_worst.startswith("best: ") or "; worst: " not in best_worst:
        return "-"
    best, worst = best_worst.removeprefix("best: ").split("; worst: ")
    return f"best {{{best}}}; worst {{{worst}}}"


def rank_agrees(a: str, b: str) -> bool:
    """Two rankings agree when neither orders two names against the other (a reversal either
    way is the same pair); one may tell apart what the other leaves in a group."""
    from .ranking import reversed_in

    return not reversed_in(_numbered(a), _numbered(b))


def _split(runs: list[Result], seeds: Iterable[int]) -> list[Result]:
    keep = set(seeds)
    return [r for r in runs if r.seed in keep]


FIRM = ("supported", "contradicted")  # a claim's verdicts that state something


def _claim_ways(results: list[Result]) -> dict[str, str]:
    """Per tested claim (its :func:`conclusions` key): which way its estimate points."""
    from .analysis import direction, judge_claims

    return {f"claim: {j.claim.text}": direction(j.claim, j.comparison)
            for j in judge_claims(results) if j.comparison is not None}


def _claim_row(said: str, sets: tuple[str, str], ways: list[str]) -> dict:
    """A claim's replication: a verdict that states something (supported, contradicted) holds
    when each seed set's estimate points the same way and neither set states the opposite; a
    set's own test, on half the seeds, need not pass (Holm over the family asks more than half
    the seeds can give). A verdict that states nothing holds when neither set states anything.
    """
    first, second = (f"{kind} ({way})" for kind, way in zip(sets, ways[1:], strict=True))
    if said in FIRM:
        held = (ways[1] == ways[2] == ways[0]
                and all(kind in (said, "not supported") for kind in sets))
    else:
        held = not any(kind in FIRM for kind in sets)
    return {"all": f"{said} ({ways[0]})" if said in FIRM else said, "first": first,
            "second": second, "replicated": "yes" if held else "fragile"}


_LAST: list = [None, None]  # the last replication's runs and rows (see replication())


def replication(results: Iterable[Result], readings: Iterable[Result] = ()) -> list[dict]:
    """Each finding on all seeds and on the two seed sets: replicated "yes", "fragile", or
    "needs more seeds" when a set has fewer than :data:`NEEDS` seeds.

    The headline, the verdict table, the lessons and the replication table each ask for it on
    the same runs; the last answer is kept (with the runs themselves, so that their identities
    stay theirs) and given again for the same run objects: computing it takes seconds.
    """
    results, readings = list(results), list(readings)
    if not results:
        return []
    key = [*results, None, *readings]
    if _LAST[0] is not None and len(_LAST[0]) == len(key) and all(
            x is y for x, y in zip(_LAST[0], key, strict=True)):
        return [dict(row) for row in _LAST[1]]
    rows = _replication(results, readings)
    _LAST[:] = [key, rows]
    return [dict(row) for row in rows]


def _replication(results: list[Result], readings: list[Result]) -> list[dict]:
    """:func:`replication`, computed."""
    first, second = seed_sets(r.seed for r in results)
    whole = conclusions(results, readings)
    enough = min(len(first), len(second)) >= NEEDS
    if enough:
        a = conclusions(_split(results, first), _split(readings, first))
        b = conclusions(_split(results, second), _split(readings, second))
        ways = [_claim_ways(runs) for runs in (results, _split(results, first),
                                                _split(results, second))]
    rows = []
    for finding, said in whole.items():
        row = {"finding": finding, "all": said, "first label": seeds_text(first),
               "second label": seeds_text(second)}
        if enough and finding in ways[0]:
            row.update(_claim_row(said, (a.get(finding, "-"), b.get(finding, "-")),
                                  [w.get(finding, "-") for w in ways]))
        elif enough:
            row["first"], row["second"] = a.get(finding, "-"), b.get(finding, "-")
            if finding.startswith("rank: "):
                same = rank_replicated(said, row["first"], row["second"])
            elif finding == "lesson: ranking":  # "best: a; worst: b, c", the same rule
                same = rank_replicated(*map(_braced, (said, row["first"], row["second"])))
            else:
                same = said == row["first"] == row["second"]
            row["replicated"] = "yes" if same else "fragile"
        else:
            row["first"] = row["second"] = "-"
            row["replicated"] = "needs more seeds"
        rows.append(row)
    return rows


def replication_note(results: Iterable[Result], readings: Iterable[Result] = ()) -> str:
    """One sentence: how many findings replicated in both seed sets, or why none could."""
    rows = replication(results, readings)
    if not rows:
        return ""
    first, second = rows[0]["first label"], rows[0]["second label"]
    if rows[0]["replicated"] == "needs more seeds":
        return (f"Replication needs more seeds: the seeds split into {first} and {second}, and a "
                f"set needs at least {NEEDS} for a prediction interval, so no finding here is "
                "checked on a second set.")
    held = sum(r["replicated"] == "yes" for r in rows)
    return (f"**{held} of {len(rows)}** findings (verdicts, claims, lessons and rankings) "
            f"replicated: {first} and {second}, judged apart, agree with all the seeds; the "
            "others are *fragile* and are marked so.")


def replication_table(results: Iterable[Result], readings: Iterable[Result] = ()) -> Table:
    """Which findings replicated: each verdict and lesson on all seeds and on each seed set."""
    rows = replication(results, readings)
    if not rows:
        return Table(pd.DataFrame())
    first, second = rows[0]["first label"], rows[0]["second label"]
    frame = pd.DataFrame([{"finding": r["finding"], "all seeds": r["all"], first: r["first"],
                           second: r["second"], "replicated": r["replicated"]} for r in rows])
    return Table(frame, f"Each finding computed on all seeds, on {first} alone and on {second} "
                        "alone, by the same rules. Replicated: the three agree; for a claim, "
                        "each set's estimate points the way of the verdict on all seeds and "
                        "neither set states the opposite (a set's own Holm-corrected test, on "
                        "half the seeds, need not pass); for a ranking (classes, confusions, "
                        "models, in groups the seeds tell apart), no set reverses an order. "
                        "Fragile: they do not, so the finding is not stated as firm.")
