"""What the reproduction found, computed from the runs: a verdict per row of the study's table,
then the few things the reproduction learned, and which of them replicated. The results
notebook and ``report/index.html`` open with these.

The verdicts are :mod:`fmnist_helpers.verdicts`' (could the study's run be one more of ours?),
the lessons :mod:`fmnist_helpers.lessons`'; this module puts them into the report's words and
tables (:func:`headline`, :func:`verdict_table`, :func:`lessons`), checks that each replicates,
loads the runs (:func:`load_or_train`, the results notebook's loader, the one function here
that trains) and compares two caches. Its public names include the verdicts' and lessons'.

*Replication.* The seeds are split into two independent sets (the first half and the second,
:func:`fmnist_helpers.seeds.seed_sets`); every verdict and lesson is computed on each set and on
all seeds, and is a finding only when the three agree; otherwise it is shown as *fragile*, with
what each set says. With one seed per set (quick mode) replication needs more seeds.

``python -m fmnist_helpers.findings --compare DIR_A DIR_B`` lists every verdict and lesson that
differs between two result caches (two machines' ``results/full``, say).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from .lessons import (
    Lesson,
    lesson_collapse,
    lesson_items,
    lesson_ranking,
    lesson_stopping,
    lesson_width,
    top_group,
)
from .results import Result
from .seeds import (
    PREDICTION_METHOD,
    epochs,
    mean_sd,
    seed_sets,
    seeds_text,
    test_acc,
)
from .settings import Settings
from .study import STUDY
from .tables import Table, check_same_mode, epochs_text
from .verdicts import (
    consistent,
    interval_of,
    interval_text,
    names_text,
    readings_of,
    tuned,
    tuned_rows,
    verdict,
    verdicts,
    where,
)

__all__ = [
    "headline", "verdict_text", "verdict_table", "lessons", "conclusions", "replication",
    "replication_note", "replication_table", "load_or_train", "split_readings", "load_folder",
    "compare_folders", "main", "NEEDS",
    # the verdicts' and the lessons'
    "consistent", "interval_of", "readings_of", "tuned", "tuned_rows", "verdict", "verdicts",
    "where", "Lesson", "lesson_collapse", "lesson_items", "lesson_ranking", "lesson_stopping",
    "lesson_width", "top_group",
]

NEEDS = 2  # seeds per set that replication needs (a prediction interval needs two)


def verdict_text(row: dict) -> str:
    """A row's verdict in words, with the readings consistent with it."""
    if row["readings"]:
        return "reproduced under " + "; or ".join(row["how"])
    return row["verdict"]


def verdict_table(results: Iterable[Result], readings: Iterable[Result] = ()) -> Table:
    """The findings table: the study's row, our prediction intervals and the verdicts."""
    results, readings = list(results), list(readings)
    frame = verdicts(results, readings)
    status = {f["finding"]: f for f in replication(results, readings)}
    rows = []
    for row in frame.to_dict("records"):
        s = row["literal"]
        rep = status.get(f"row `{row['name']}`")
        mark = " (fragile)" if rep and rep["replicated"] == "fragile" else ""
        early = s.experiment.early_stopping
        rows.append({
            "study row": row["name"] + (" (tuned)" if row["tuned"] else ""),
            "study test %": f"{100 * row['study test']:.1f}",
            "ours test %: mean ± sd (95% PI)": (f"{mean_sd(s.summary(test_acc))} "
                                               f"({interval_text(*interval_of(s))})"),
            "accuracy": row["accuracy"],
            "study epochs": str(row["study epochs"]),
            "our epochs (95% PI)": (
                f"{epochs_text(s)} ({interval_text(*interval_of(s, epochs), 1, 0)})" if early
                else epochs_text(s)),
            "epochs": row["epochs"] or "-",
            "verdict": verdict_text(row) + mark,
        })
    return Table(pd.DataFrame(rows),
                 "Consistent: the study's number lies in the " + PREDICTION_METHOD + "; above "
                 "or below: outside it. Epochs are judged for the early-stopping rows only. "
                 "Tuned: the row's penalty strengths and learning rate were chosen by a sweep "
                 "towards the study's own rows, so a match there is partly by construction. "
                 "Fragile: the two seed sets do not agree (see the replication table).")


def headline(results: Iterable[Result], readings: Iterable[Result] = ()) -> str:
    """How many of the study's rows were reproduced, and how; which were tuned; which held."""
    results, readings = list(results), list(readings)
    frame = verdicts(results, readings)
    n = len(frame)
    literal = int((frame.verdict == "reproduced").sum())
    other = int((frame.verdict == "reproduced under another reading").sum())
    status = {f["finding"]: f["replicated"] for f in replication(results, readings)}

    def held(word: str) -> str:
        names = frame.name[frame.verdict == word]
        firm = sum(status.get(f"row `{x}`") == "yes" for x in names)
        if not len(names) or "needs more seeds" in status.values():
            return ""
        return f" ({firm} of them in both seed sets)"

    parts = [f"**{literal} of {n}** rows of the study's table are reproduced as we first read "
             "the study" + held("reproduced")]
    if other:
        parts.append(f"**{other}** more under another reading of what it leaves open"
                     + held("reproduced under another reading"))
    text = ", ".join(parts)
    half = frame.name[frame.verdict == "accuracy reproduced, epochs not"]
    if len(half):
        text += (f"; {names_text(half)} {'matches' if len(half) == 1 else 'match'} in accuracy "
                 "but not in epochs")
    missing = frame.name[frame.verdict.isin(["not reproduced", "not judged: one seed"])]
    if len(missing):
        text += f"; {names_text(missing)} {'is' if len(missing) == 1 else 'are'} not"
    text += (". Reproduced: the study's run lies in the 95% prediction interval for one more of "
             "ours, in accuracy and, with early stopping, in epochs.")
    hit = [n for n in frame.name if tuned(n)]
    if hit:
        text += (f" The parameters of {names_text(hit)} were tuned towards the study's rows (a "
                 f"sweep of learning rate and penalty strength, `study.py`), so "
                 f"{'its match is' if len(hit) == 1 else 'their matches are'} partly by "
                 "construction.")
    return text + " " + replication_note(results, readings)



def lessons(results: Iterable[Result], readings: Iterable[Result] = ()) -> str:
    """The things the reproduction learned, as Markdown bullets, each with whether it
    replicated in both seed sets."""
    results, readings = list(results), list(readings)
    status = {f["finding"]: f for f in replication(results, readings)}
    items = []
    for key, (text, _) in lesson_items(results, readings).items():
        rep = status.get(f"lesson: {key}")
        if rep and rep["replicated"] == "yes":
            text += " *Replicated: both seed sets say the same.*"
        elif rep and rep["replicated"] == "fragile":
            text += (f" ***Fragile***: {rep['first label']} say: {rep['first']}; "
                     f"{rep['second label']}: {rep['second']}.")
        items.append(text)
    return "\n".join(f"* {item}" for item in items)


# ---------------------------------------------------------------------------------------------
# Replication: every verdict and lesson on two independent seed sets
# ---------------------------------------------------------------------------------------------

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
    from .ranking import reversed_in

    if "-" in (first, second):
        return False
    whole = _numbered(said)
    return not any(reversed_in(whole, _numbered(part)) for part in (first, second))


def _braced(best_worst: str) -> str:
    """The ranking lesson's "best: a; worst: b, c" as a ranking, "best {a}; worst {b, c}"."""
    if not best_worst.startswith("best: ") or "; worst: " not in best_worst:
        return "-"
    best, worst = best_worst.removeprefix("best: ").split("; worst: ")
    return f"best {{{best}}}; worst {{{worst}}}"


def rank_agrees(a: str, b: str) -> bool:
    """Two rankings agree when neither orders two names against the other; one may tell
    apart what the other leaves in a group."""
    from .ranking import reversed_in

    return not (reversed_in(_numbered(a), _numbered(b)) or reversed_in(_numbered(b), _numbered(a)))


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


# ---------------------------------------------------------------------------------------------
# Loading, and comparing two caches
# ---------------------------------------------------------------------------------------------

def load_or_train(config: Settings | None = None) -> tuple[list[Result], list[Result]]:
    """The results notebook's loader: every seed of the study's models and controls, and of the
    readings, apart. Cached runs are loaded; the missing ones are TRAINED, together in one plan
    (``config`` defaults to ``settings()``). Nothing else in this module trains."""
    from .runs import study_results  # the trainer, imported only by the one function that trains
    from .study import CONTROLS, READINGS

    everything = study_results([*STUDY, *CONTROLS, *READINGS], config=config)
    return split_readings(everything)


def split_readings(everything: Iterable[Result]) -> tuple[list[Result], list[Result]]:
    """The study's models and controls, and the readings, apart."""
    from .study import READINGS

    everything = list(everything)
    readings = [r for r in everything if r.experiment.name in READINGS]
    return [r for r in everything if r.experiment.name not in READINGS], readings


def load_folder(folder: str | Path) -> tuple[list[Result], list[Result]]:
    """The runs of the study's models, controls and readings cached in one folder of a run
    store (``results/full``, say), read without training anything: what notebook 08 reads.

    A folder can hold runs made with more than one CPU arithmetic (``FMNIST_KERNELS``); then
    the arithmetic in force here is read, and without runs of it the error names those found.
    """
    from . import kernels
    from .results import load_cached
    from .study import CONTROLS, READINGS

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of cached runs")
    names = {*STUDY, *CONTROLS, *READINGS}
    by_kernels: dict[str, dict[tuple[str, int], Result]] = {}
    for entry in sorted(folder.glob("*.json")):
        result = load_cached(entry)
        if result is not None and result.experiment.name in names:
            arithmetic = result.versions.get("cpu_kernels", result.device)
            by_kernels.setdefault(arithmetic, {}).setdefault(
                (result.experiment.name, result.seed), result)
    if not by_kernels:
        inside = [m for m in ("full", "quick") if (folder / m).is_dir()]
        hint = f"; pass {folder / inside[0]}" if inside else ""
        raise ValueError(f"{folder} holds no complete cached run of the study{hint}")
    if len(by_kernels) == 1:
        found = next(iter(by_kernels.values()))
    elif kernels.in_force() in by_kernels:
        found = by_kernels[kernels.in_force()]
    else:
        raise ValueError(f"{folder} holds runs of {len(by_kernels)} CPU arithmetics "
                         f"({'; '.join(sorted(by_kernels))}) and none of this process's "
                         f"({kernels.in_force()}): set FMNIST_KERNELS to the one to read")
    check_same_mode(list(found.values()))
    return split_readings(found.values())


def compare_folders(a: str | Path, b: str | Path) -> list[tuple[str, str, str]]:
    """Every verdict and lesson that differs between two caches: (finding, a's, b's)."""
    ca, cb = conclusions(*load_folder(a)), conclusions(*load_folder(b))
    return [(k, ca.get(k, "(not computed)"), cb.get(k, "(not computed)"))
            for k in [*ca, *(k for k in cb if k not in ca)] if ca.get(k) != cb.get(k)]


def status_in(folder: str | Path) -> dict[str, str]:
    """Each finding's replication in one cache: "yes", "fragile" or "needs more seeds"."""
    return {r["finding"]: r["replicated"] for r in replication(*load_folder(folder))}


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    """``python -m fmnist_helpers.findings --compare DIR_A DIR_B``; exit status 1 when a
    finding differs that is not marked fragile in both caches (the report stated it as firm,
    or could not check it), 0 otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m fmnist_helpers.findings",
        description="Compare the findings of two result caches (two machines' results/full, "
                    "say): every verdict and lesson that differs between them, and whether "
                    "each cache marked it fragile. Exit status 1 when a finding that is not "
                    "fragile in both differs.")
    parser.add_argument("--compare", nargs=2, metavar=("DIR_A", "DIR_B"), required=True)
    args = parser.parse_args(argv)
    a, b = args.compare
    held = []
    for name, folder in (("A", a), ("B", b)):
        results, readings = load_folder(folder)
        held.append(sorted({r.seed for r in results}))
        out(f"{name}: {folder}: {len(results) + len(readings)} runs, {seeds_text(held[-1])}")
    if held[0] != held[1]:
        out("The caches hold other seeds: a claim supported on more seeds and not on fewer is "
            "the seeds' count speaking, not a contradiction.")
    differ = compare_folders(a, b)
    if not differ:
        out("Every verdict and lesson is the same in both caches.")
        return 0
    status = status_in(a), status_in(b)
    regrouped = [d for d in differ if (d[0].startswith("rank: ") and rank_agrees(d[1], d[2]))
                 or (d[0] == "lesson: ranking" and rank_agrees(_braced(d[1]), _braced(d[2])))]
    differ = [d for d in differ if d not in regrouped]
    firm = [f for f, _, _ in differ if any(s.get(f) != "fragile" for s in status)]
    if differ:
        out(f"{len(differ)} findings differ; "
            + (f"{len(firm)} of them not marked fragile in both caches:" if firm else
               "each is marked fragile in both caches:"))
    for finding, in_a, in_b in differ:
        marks = (f"[A: {status[0].get(finding, '-')}, B: {status[1].get(finding, '-')}]")
        out(f"- {finding} {marks}\n    A: {in_a}\n    B: {in_b}")
    if regrouped:
        out(f"{len(regrouped)} rankings group their items otherwise, no order reversed (one "
            "cache tells apart what the other leaves in a group):")
    for finding, in_a, in_b in regrouped:
        out(f"- {finding}\n    A: {in_a}\n    B: {in_b}")
    return 1 if firm else 0


if __name__ == "__main__":
    sys.exit(main())
