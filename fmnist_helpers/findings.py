"""What the reproduction found, computed from the runs: a verdict per row of the study's table,
then the few things the reproduction learned, and which of them replicated. The results
notebook and ``report/index.html`` open with these.

The verdicts are :mod:`fmnist_helpers.verdicts`' (could the study's run be one more of ours?),
the lessons :mod:`fmnist_helpers.lessons`'; this module puts them into the report's words and
tables (:func:`headline`, :func:`verdict_table`, :func:`lessons`), checks that each replicates,
loads the runs (:func:`load_or_train`, the results notebook's loader, the one function here
that trains) and compares two caches. Its public names include the verdicts' and lessons'.

*Replication* (:mod:`fmnist_helpers.replication`, whose names this module also offers): every
verdict, claim, lesson and ranking is computed on two independent seed sets and on all seeds,
and is a finding only when they agree by its kind's rule; otherwise it is shown as *fragile*,
with what each set says. With one seed per set (quick mode) replication needs more seeds.

``python -m fmnist_helpers.findings --compare DIR_A DIR_B`` lists every finding that differs
between two result caches (two machines' ``results/full``, say), each with its replication in
both.
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
from .replication import (
    NEEDS,
    _braced,
    conclusions,
    rank_agrees,
    rank_conclusions,
    rank_replicated,
    replication,
    replication_note,
    replication_table,
)
from .results import Result
from .seeds import (
    PREDICTION_METHOD,
    epochs,
    mean_sd,
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
    "compare_folders", "status_in", "main", "NEEDS", "rank_agrees", "rank_conclusions",
    "rank_replicated",
    # the verdicts' and the lessons'
    "consistent", "interval_of", "readings_of", "tuned", "tuned_rows", "verdict", "verdicts",
    "where", "Lesson", "lesson_collapse", "lesson_items", "lesson_ranking", "lesson_stopping",
    "lesson_width", "top_group",
]



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
