"""What the reproduction found, computed from the runs: a verdict per row of the study's table,
then the few things the reproduction learned, and which of them replicated. The results
notebook and ``report/index.html`` open with these.

*Could the study's single run be one more of ours?* For each row of the study's table, the
t-based 95% prediction interval for one new run is computed from our seeds (those that did not
collapse): mean ± t(0.975, n-1) · sd · √(1 + 1/n) (:func:`fmnist_helpers.seeds.
prediction_interval`). The study's test accuracy inside it is one verdict; for the
early-stopping rows its number of epochs inside the same kind of interval for our epochs is a
second one. A row is *reproduced* when every verdict holds. When the literal configuration
misses, the readings of that row (:data:`~fmnist_helpers.study.READINGS`) are tried by the same
rule, and the *set* of readings consistent with the row is reported, none singled out.
The rows whose parameters were chosen by a sweep towards the study's own numbers (the penalty
strengths and learning rate of the L1 and L2 rows) are named as tuned.

*Replication.* The seeds are split into two independent sets (the first half and the second,
:func:`fmnist_helpers.seeds.seed_sets`); every verdict and lesson is computed on each set and on
all seeds, and is a finding only when the three agree; otherwise it is shown as *fragile*, with
what each set says. With one seed per set (quick mode) replication needs more seeds.

``python -m fmnist_helpers.findings --compare DIR_A DIR_B`` lists every verdict and lesson that
differs between two result caches (two machines' ``results/full``, say).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from .results import Result
from .seeds import (
    PREDICTION_METHOD,
    Seeds,
    compare,
    epochs,
    group,
    mean_sd,
    p_value,
    pct,
    prediction_interval,
    ranking_agreement,
    seed_sets,
    seeds_text,
    separated,
    test_acc,
)
from .settings import Settings
from .study import PAPER, REG_LR, STUDY, PaperResult, base_of, changes
from .tables import Table, check_same_mode, epochs_text

NEEDS = 2  # seeds per set that replication needs (a prediction interval needs two)


# ---------------------------------------------------------------------------------------------
# One row of the study against our seeds
# ---------------------------------------------------------------------------------------------

def interval_of(s: Seeds, measure=test_acc) -> tuple[float, float]:
    """The 95% prediction interval for one more run of ``s`` (seeds that did not collapse),
    cut to what the measure can be: an accuracy in [0, 1], at least one epoch."""
    low, high = prediction_interval(s.values(measure, kept=True))
    if math.isnan(low):
        return low, high
    if measure is epochs:
        return max(low, 1.0), high
    return max(low, 0.0), min(high, 1.0)


def where(value: float, s: Seeds, measure=test_acc) -> str:
    """"consistent", "above" or "below" our prediction interval; "one seed" without one."""
    low, high = interval_of(s, measure)
    if math.isnan(low):
        return "one seed"
    if value > high:
        return "above"
    return "below" if value < low else "consistent"


def consistent(s: Seeds, paper: PaperResult) -> bool | None:
    """True when the study's row could be one more run of ``s``: its test accuracy (and, with
    early stopping, its epochs) inside our prediction intervals; None with a single seed."""
    checks = [where(paper.test_acc, s)]
    if s.experiment.early_stopping:
        checks.append(where(paper.epochs, s, epochs))
    if "one seed" in checks:
        return None
    return all(c == "consistent" for c in checks)


def tuned(name: str) -> bool:
    """True for a row whose parameters were chosen by a sweep towards the study's own numbers
    (:mod:`fmnist_helpers.study`: the penalised models' learning rate and strengths)."""
    e = STUDY[name]
    return e.lr == REG_LR and bool(e.l1 or e.l2 or e.l2_first)


def tuned_rows() -> list[str]:
    return [n for n in PAPER if tuned(n)]


def readings_of(name: str, readings: dict[str, Seeds]) -> list[Seeds]:
    return [s for reading, s in readings.items() if base_of(reading) == name]


def verdict(name: str, literal: Seeds, readings: dict[str, Seeds]) -> tuple[str, list[Seeds]]:
    """The verdict on one row of the study, and every reading consistent with it."""
    paper = PAPER[name]
    fit = consistent(literal, paper)
    if fit is None:
        return "not judged: one seed", []
    if fit:
        return "reproduced", []
    fitting = [s for s in readings_of(name, readings) if consistent(s, paper)]
    if fitting:
        return "reproduced under another reading", fitting
    if literal.experiment.early_stopping and where(paper.test_acc, literal) == "consistent":
        return "accuracy reproduced, epochs not", []
    return "not reproduced", []


def verdicts(results: Iterable[Result], readings: Iterable[Result] = ()) -> pd.DataFrame:
    """One row per row of the study's table, in its order: the verdicts and the numbers."""
    ours, others = group(results), group(readings)
    rows = []
    for name, paper in sorted(PAPER.items(), key=lambda item: -item[1].test_acc):
        if name not in ours:
            continue
        s = ours[name]
        word, fitting = verdict(name, s, others)
        rows.append({
            "name": name, "verdict": word, "readings": [r.name for r in fitting],
            "how": [changes(r.experiment, STUDY[name]) for r in fitting],
            "accuracy": where(paper.test_acc, s),
            "epochs": where(paper.epochs, s, epochs) if s.experiment.early_stopping else "",
            "study test": paper.test_acc, "study epochs": paper.epochs,
            "literal": s, "tuned": tuned(name),
        })
    return pd.DataFrame(rows)


def _range(low: float, high: float, scale: float = 100, digits: int = 1) -> str:
    if math.isnan(low):
        return "-"
    return f"{scale * low:.{digits}f} to {scale * high:.{digits}f}"


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
                                               f"({_range(*interval_of(s))})"),
            "accuracy": row["accuracy"],
            "study epochs": str(row["study epochs"]),
            "our epochs (95% PI)": (f"{epochs_text(s)} ({_range(*interval_of(s, epochs), 1, 0)})"
                                    if early else epochs_text(s)),
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
        text += (f"; {_names(half)} {'matches' if len(half) == 1 else 'match'} in accuracy "
                 "but not in epochs")
    missing = frame.name[frame.verdict.isin(["not reproduced", "not judged: one seed"])]
    if len(missing):
        text += f"; {_names(missing)} {'is' if len(missing) == 1 else 'are'} not"
    text += (". Reproduced: the study's run lies in the 95% prediction interval for one more of "
             "ours, in accuracy and, with early stopping, in epochs.")
    hit = [n for n in frame.name if tuned(n)]
    if hit:
        text += (f" The parameters of {_names(hit)} were tuned towards the study's rows (a "
                 f"sweep of learning rate and penalty strength, `study.py`), so "
                 f"{'its match is' if len(hit) == 1 else 'their matches are'} partly by "
                 "construction.")
    return text + " " + replication_note(results, readings)


def _names(names: Iterable[str]) -> str:
    names = [f"`{n}`" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _w(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# ---------------------------------------------------------------------------------------------
# Lessons: each as (sentence, conclusion without digits), the second for replication
# ---------------------------------------------------------------------------------------------

Lesson = tuple[str, str]


def _lesson_width(ours: dict[str, Seeds], others: dict[str, Seeds]) -> Lesson | None:
    pairs = [(base_of(r), s) for r, s in others.items() if r.endswith("_w50")
             and base_of(r) in ours and base_of(r) in PAPER]
    if not pairs:
        return None
    fit50 = [b for b, s in pairs if consistent(s, PAPER[b])]
    fit10 = [b for b, _ in pairs if consistent(ours[b], PAPER[b])]
    text = (f"**Width of the variants.** Of the {len(pairs)} models the study builds 'the same "
            f"as the shallow one', the study's row is consistent with 50 hidden units for "
            f"{len(fit50)} ({_names(fit50) if fit50 else 'none'}) and with 10 for {len(fit10)} "
            f"({_names(fit10) if fit10 else 'none'}).")
    return text, f"50 units fit: {', '.join(fit50) or 'none'}; 10 units fit: " \
                 f"{', '.join(fit10) or 'none'}"


def _lesson_stopping(ours: dict[str, Seeds], others: dict[str, Seeds]) -> Lesson | None:
    lines, keys = [], []
    for name in ("early_stopping", "mixed"):
        if name not in ours:
            continue
        paper = PAPER[name]
        tried = [ours[name], *readings_of(name, others)]
        in_epochs = [s for s in tried if where(paper.epochs, s, epochs) == "consistent"]
        fitting = [s for s in tried if consistent(s, paper)]

        def how(s: Seeds, name=name) -> str:
            return "as first read" if s is ours[name] else changes(s.experiment, STUDY[name])

        lines.append(
            f"for `{name}` the study ran {paper.epochs} epochs; read literally the rule stops "
            f"after {epochs_text(ours[name])} (95% prediction interval "
            f"{_range(*interval_of(ours[name], epochs), 1, 0)}); of {len(tried)} readings, "
            f"{len(in_epochs)} include {paper.epochs} epochs in their prediction interval and "
            f"{len(fitting)} also the study's accuracy"
            + (f" ({'; '.join(how(s) for s in fitting)})" if fitting else ""))
        keys.append(f"{name}: {', '.join(s.name for s in fitting) or 'none'}")
    if not lines:
        return None
    return ("**Early stopping.** Median epochs (range) over the seeds: " + "; ".join(lines)
            + ". Every reading consistent with the row is a possible explanation; none is "
              "singled out."), "; ".join(keys)


def _lesson_collapse(ours: dict[str, Seeds], others: dict[str, Seeds]) -> Lesson:
    hit = {name: s for name, s in {**ours, **others}.items() if s.collapsed}
    if not hit:
        return ("**No collapse.** Every seed of every model and reading trained past chance "
                "level in this run.", "none")
    parts = []
    for name, s in hit.items():
        seeds = ", ".join(f"seed {r.seed} ({pct(r.final['test_acc'])})" for r in s.collapsed)
        parts.append(f"`{name}`: {len(s.collapsed)} of {len(s)} ({seeds})")
    return (f"**Collapses.** {_w(len(hit), 'model')} had seeds that ended at chance level or "
            f"diverged: {'; '.join(parts)}. They are reported apart from the other seeds, and "
            "the tests rank all seeds, so one collapse cannot turn a conclusion around.",
            ", ".join(sorted(hit)))


def top_group(models: Sequence[Seeds], best: bool = True) -> list[Seeds]:
    """The first (or last) model by mean test accuracy and every model within the seeds' noise
    of it (not :func:`~fmnist_helpers.seeds.separated` from it), by mean."""
    ranked = sorted(models, key=lambda s: -s.summary(test_acc).mean)
    if not best:
        ranked = ranked[::-1]
    lead = ranked[0]
    return [lead] + [s for s in ranked[1:] if not separated(compare(lead, s))]


def _lesson_ranking(ours: dict[str, Seeds]) -> Lesson | None:
    names = [n for n in PAPER if n in ours]
    if len(names) < 2:
        return None
    theirs = sorted(names, key=lambda n: -PAPER[n].test_acc)
    mine = sorted(names, key=lambda n: -ours[n].summary(test_acc).mean)
    tau, p = ranking_agreement(mine, theirs)
    models = [ours[n] for n in names]
    top, bottom = [s.name for s in top_group(models)], [s.name for s in top_group(models, False)]

    def group_text(g: list[str], word: str) -> str:
        if len(g) == 1:
            return f"our {word} is `{g[0]}`, clear of every other model"
        return (f"our {word} cannot be named: the seeds do not separate `{g[0]}` (the "
                f"{'highest' if word == 'best' else 'lowest'} mean) from {_names(g[1:])}")

    return (f"**Ranking.** Kendall's tau between the study's order of its {len(names)} models "
            f"and ours (by mean test accuracy) is {tau:.2f} ({p_value(p)}; 1 is the same "
            f"order, 0 none). The study's best is `{theirs[0]}` and its worst `{theirs[-1]}`; "
            f"{group_text(top, 'best')}; {group_text(bottom, 'worst')} (an order is named only "
            "where the bootstrap interval of the difference excludes 0 and p < 0.05).",
            f"best: {', '.join(sorted(top))}; worst: {', '.join(sorted(bottom))}")


def _lessons(results: list[Result], readings: list[Result]) -> dict[str, Lesson]:
    ours, others = group(results), group(readings)
    items = {"width of the variants": _lesson_width(ours, others),
             "early stopping": _lesson_stopping(ours, others),
             "collapses": _lesson_collapse(ours, others),
             "ranking": _lesson_ranking(ours)}
    return {k: v for k, v in items.items() if v is not None}


def lesson_width(results: Iterable[Result], readings: Iterable[Result]) -> str | None:
    """Whether the study's "same as the shallow one" variants fit with 50 hidden units."""
    item = _lesson_width(group(results), group(readings))
    return item and item[0]


def lesson_stopping(results: Iterable[Result], readings: Iterable[Result]) -> str | None:
    """Which readings of the early-stopping rule are consistent with the study's row."""
    item = _lesson_stopping(group(results), group(readings))
    return item and item[0]


def lesson_collapse(results: Iterable[Result], readings: Iterable[Result] = ()) -> str:
    """Which models had seeds that collapsed to chance, named."""
    return _lesson_collapse(group(results), group(readings))[0]


def lesson_ranking(results: Iterable[Result]) -> str | None:
    """Kendall's tau between the study's ranking and ours, and our best and worst groups."""
    item = _lesson_ranking(group(results))
    return item and item[0]


def lessons(results: Iterable[Result], readings: Iterable[Result] = ()) -> str:
    """The things the reproduction learned, as Markdown bullets, each with whether it
    replicated in both seed sets."""
    results, readings = list(results), list(readings)
    status = {f["finding"]: f for f in replication(results, readings)}
    items = []
    for key, (text, _) in _lessons(results, readings).items():
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
    for key, (_, conclusion) in _lessons(results, readings).items():
        out[f"lesson: {key}"] = conclusion
    return out


def _split(runs: list[Result], seeds: Iterable[int]) -> list[Result]:
    keep = set(seeds)
    return [r for r in runs if r.seed in keep]


def replication(results: Iterable[Result], readings: Iterable[Result] = ()) -> list[dict]:
    """Each finding on all seeds and on the two seed sets: replicated "yes", "fragile", or
    "needs more seeds" when a set has fewer than :data:`NEEDS` seeds."""
    results, readings = list(results), list(readings)
    if not results:
        return []
    first, second = seed_sets(r.seed for r in results)
    whole = conclusions(results, readings)
    enough = min(len(first), len(second)) >= NEEDS
    if enough:
        a = conclusions(_split(results, first), _split(readings, first))
        b = conclusions(_split(results, second), _split(readings, second))
    rows = []
    for finding, said in whole.items():
        row = {"finding": finding, "all": said, "first label": seeds_text(first),
               "second label": seeds_text(second)}
        if enough:
            row["first"], row["second"] = a.get(finding, "-"), b.get(finding, "-")
            row["replicated"] = "yes" if said == row["first"] == row["second"] else "fragile"
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
    return (f"**{held} of {len(rows)}** verdicts and lessons replicated: {first} and {second}, "
            "judged apart, each say what all the seeds say; the others are *fragile* and are "
            "marked so.")


def replication_table(results: Iterable[Result], readings: Iterable[Result] = ()) -> Table:
    """Which findings replicated: each verdict and lesson on all seeds and on each seed set."""
    rows = replication(results, readings)
    if not rows:
        return Table(pd.DataFrame())
    first, second = rows[0]["first label"], rows[0]["second label"]
    frame = pd.DataFrame([{"finding": r["finding"], "all seeds": r["all"], first: r["first"],
                           second: r["second"], "replicated": r["replicated"]} for r in rows])
    return Table(frame, f"Each finding computed on all seeds, on {first} alone and on {second} "
                        "alone, by the same rules (claims: Holm-corrected within each set). "
                        "Replicated: the three agree; fragile: they do not, so the finding is "
                        "not stated as firm.")


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
    """Every complete run cached in one folder of a run store (``results/full``, say), read
    without training anything; one entry per experiment and seed (the first by file name)."""
    from .results import load_cached

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of cached runs")
    found: dict[tuple[str, int], Result] = {}
    for entry in sorted(folder.glob("*.json")):
        result = load_cached(entry)
        if result is not None:
            found.setdefault((result.experiment.name, result.seed), result)
    if not found:
        inside = [m for m in ("full", "quick") if (folder / m).is_dir()]
        hint = f"; pass {folder / inside[0]}" if inside else ""
        raise ValueError(f"{folder} holds no complete cached run{hint}")
    check_same_mode(list(found.values()))
    return split_readings(found.values())


def compare_folders(a: str | Path, b: str | Path) -> list[tuple[str, str, str]]:
    """Every verdict and lesson that differs between two caches: (finding, a's, b's)."""
    ca, cb = conclusions(*load_folder(a)), conclusions(*load_folder(b))
    return [(k, ca.get(k, "(not computed)"), cb.get(k, "(not computed)"))
            for k in [*ca, *(k for k in cb if k not in ca)] if ca.get(k) != cb.get(k)]


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fmnist_helpers.findings",
        description="Compare the findings of two result caches (two machines' results/full, "
                    "say): every verdict and lesson that differs between them.")
    parser.add_argument("--compare", nargs=2, metavar=("DIR_A", "DIR_B"), required=True)
    args = parser.parse_args(argv)
    a, b = args.compare
    for name, folder in (("A", a), ("B", b)):
        results, readings = load_folder(folder)
        seeds = sorted({r.seed for r in results})
        out(f"{name}: {folder}: {len(results) + len(readings)} runs, {seeds_text(seeds)}")
    differ = compare_folders(a, b)
    if not differ:
        out("Every verdict and lesson is the same in both caches.")
        return 0
    out(f"{len(differ)} verdicts and lessons differ:")
    for finding, in_a, in_b in differ:
        out(f"- {finding}\n    A: {in_a}\n    B: {in_b}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
