"""What the reproduction found, computed from the runs: a verdict per row of the study's table,
then the few things the reproduction learned. The results notebook and ``report/index.html``
open with these.

A row of the study is *reproduced* when its single test accuracy lies within our seeds' range
widened by :data:`TOLERANCE` on each side (the study's run is one more draw, which may fall a
little outside five of ours), and, for the early-stopping rows, its number of epochs within our
range widened by :data:`EPOCH_TOLERANCE`. Collapsed seeds are left out of the range (see
:mod:`fmnist_helpers.seeds`). When the literal configuration misses, the readings of that row
(:data:`~fmnist_helpers.study.READINGS`) are tried by the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .results import Result
from .seeds import (
    Seeds,
    epochs,
    group,
    mean_sd,
    p_value,
    pct,
    pct_sd,
    ranking_agreement,
    test_acc,
    train_acc_running,
)
from .study import PAPER, STUDY, PaperResult, base_of, changes
from .tables import Table, epochs_text

TOLERANCE = 0.005  # half a percentage point
EPOCH_TOLERANCE = 1


def fits(s: Seeds, paper: PaperResult) -> bool:
    """True when the study's row lies within our seeds' range (widened by the tolerances)."""
    acc = s.summary(test_acc)
    ok = acc.low - TOLERANCE <= paper.test_acc <= acc.high + TOLERANCE
    if s.experiment.early_stopping:
        e = s.summary(epochs)
        ok = ok and e.low - EPOCH_TOLERANCE <= paper.epochs <= e.high + EPOCH_TOLERANCE
    return ok


def distance(s: Seeds, paper: PaperResult) -> float:
    """How far our medians lie from the study's row: train gap + test gap + epoch gap / 100."""
    train, test = s.summary(train_acc_running).median, s.summary(test_acc).median
    return (abs(train - paper.train_acc) + abs(test - paper.test_acc)
            + abs(s.summary(epochs).median - paper.epochs) / 100)


def readings_of(name: str, readings: dict[str, Seeds]) -> list[Seeds]:
    return [s for reading, s in readings.items() if base_of(reading) == name]


def verdict(name: str, literal: Seeds, readings: dict[str, Seeds]) -> tuple[str, Seeds | None]:
    """The verdict on one row of the study, and the reading that explains it (if one does)."""
    paper = PAPER[name]
    if fits(literal, paper):
        return "reproduced", None
    tried = readings_of(name, readings)
    fitting = sorted((s for s in tried if fits(s, paper)), key=lambda s: distance(s, paper))
    if fitting:
        return "reproduced under another reading", fitting[0]
    return ("unexplained: no reading tried fits" if tried else "not reproduced"), None


def verdicts(results: Iterable[Result], readings: Iterable[Result] = ()) -> pd.DataFrame:
    """One row per row of the study's table, in its order: the verdict and the numbers."""
    ours, others = group(results), group(readings)
    rows = []
    for name, paper in sorted(PAPER.items(), key=lambda item: -item[1].test_acc):
        if name not in ours:
            continue
        word, reading = verdict(name, ours[name], others)
        shown = reading or ours[name]
        rows.append({
            "name": name, "verdict": word, "reading": reading.name if reading else "",
            "how": changes(reading.experiment, STUDY[name]) if reading else "",
            "study test": paper.test_acc, "study epochs": paper.epochs,
            "literal": ours[name], "shown": shown,
        })
    return pd.DataFrame(rows)


def verdict_table(results: Iterable[Result], readings: Iterable[Result] = ()) -> Table:
    """The findings table: the study's row, our numbers for it and the verdict."""
    frame = verdicts(results, readings)
    rows = []
    for row in frame.to_dict("records"):
        rows.append({
            "study row": row["name"],
            "study test %": f"{100 * row['study test']:.1f}",
            "ours test %": mean_sd(row["literal"].summary(test_acc)),
            "study epochs": str(row["study epochs"]),
            "our epochs": epochs_text(row["literal"]),
            "verdict": f"reproduced with {row['how']}" if row["reading"] else row["verdict"],
            "under that reading": (f"{mean_sd(row['shown'].summary(test_acc))}, "
                                   f"{epochs_text(row['shown'])} epochs"
                                   if row["reading"] else "-"),
        })
    return Table(pd.DataFrame(rows),
                 f"Reproduced: the study's number lies within the range of our seeds, widened by "
                 f"{100 * TOLERANCE:.1f} points (and {EPOCH_TOLERANCE} epoch for the "
                 "early-stopping rows). Ours: mean ± sd in percent, epochs as median (range).")


def headline(results: Iterable[Result], readings: Iterable[Result] = ()) -> str:
    """One sentence: how many of the study's rows were reproduced, and how."""
    frame = verdicts(results, readings)
    n = len(frame)
    literal = int((frame.verdict == "reproduced").sum())
    other = int((frame.reading != "").sum())
    missing = n - literal - other
    parts = [f"**{literal} of {n}** rows of the study's table are reproduced as we first read "
             "the study"]
    if other:
        parts.append(f"**{other}** more under another reading of what it leaves open")
    text = ", ".join(parts)
    if missing:
        names = ", ".join(f"`{x}`" for x in frame.name[(frame.reading == "")
                                                        & (frame.verdict != "reproduced")])
        text += f"; {'the last' if missing == 1 else f'the other {missing}'} ({names}) " \
                f"{'is' if missing == 1 else 'are'} not"
    return text + "."


def _w(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def lesson_width(results: Iterable[Result], readings: Iterable[Result]) -> str | None:
    """Whether the study's "same as the shallow one" variants had 50 hidden units."""
    ours, others = group(results), group(readings)
    pairs = [(base_of(r), s) for r, s in others.items() if r.endswith("_w50")
             and base_of(r) in ours and base_of(r) in PAPER]
    if not pairs:
        return None
    closer = [b for b, s in pairs if distance(s, PAPER[b]) < distance(ours[b], PAPER[b])]
    fit50 = [b for b, s in pairs if fits(s, PAPER[b])]
    fit10 = [b for b, _ in pairs if fits(ours[b], PAPER[b])]
    names = ", ".join(f"`{b}`" for b in closer) or "none"
    return (f"**Width of the variants.** Of the {len(pairs)} models the study builds 'the same "
            f"as the shallow one', built with 50 hidden units instead of 10, {len(closer)} land "
            f"closer to the study's row ({names}); {len(fit50)} fit it with 50 units against "
            f"{len(fit10)} with 10.")


def lesson_stopping(results: Iterable[Result], readings: Iterable[Result]) -> str | None:
    """Which reading of the early-stopping rule comes closest to the study's epochs."""
    ours, others = group(results), group(readings)
    lines = []
    for name in ("early_stopping", "mixed"):
        if name not in ours:
            continue
        paper = PAPER[name].epochs
        tried = [ours[name], *readings_of(name, others)]
        best = min(tried, key=lambda s: abs(s.summary(epochs).median - paper))
        inside = [s for s in tried
                  if s.summary(epochs).low - EPOCH_TOLERANCE <= paper
                  <= s.summary(epochs).high + EPOCH_TOLERANCE]
        how = "as we first read it" if best is ours[name] else \
            f"with {changes(best.experiment, STUDY[name])}"
        lines.append(
            f"for `{name}` the study ran {paper} epochs; read literally the rule stops after "
            f"{epochs_text(ours[name])}; the closest of {len(tried)} readings is the rule "
            f"{how}, with {epochs_text(best)} epochs and {pct_sd(best.summary(test_acc))} "
            f"test accuracy; {len(inside)} of {len(tried)} readings "
            f"{'includes' if len(inside) == 1 else 'include'} {paper} epochs in their range")
    if not lines:
        return None
    return "**Early stopping.** Median epochs (range) over the seeds: " + "; ".join(lines) + "."


def lesson_collapse(results: Iterable[Result], readings: Iterable[Result] = ()) -> str:
    """Which models had seeds that collapsed to chance, named."""
    groups = group([*results, *readings])
    hit = {name: s for name, s in groups.items() if s.collapsed}
    if not hit:
        return ("**No collapse.** Every seed of every model and reading trained past chance "
                "level in this run.")
    parts = []
    for name, s in hit.items():
        seeds = ", ".join(f"seed {r.seed} ({pct(r.final['test_acc'])})" for r in s.collapsed)
        parts.append(f"`{name}`: {len(s.collapsed)} of {len(s)} ({seeds})")
    return (f"**Collapses.** {_w(len(hit), 'model')} had seeds that ended at chance level or "
            f"diverged: {'; '.join(parts)}. They are reported apart from the other seeds, and "
            "the tests rank all seeds, so one collapse cannot turn a conclusion around.")


def lesson_ranking(results: Iterable[Result]) -> str | None:
    """Kendall's tau between the study's ranking and ours, with its p-value."""
    ours = group(results)
    names = [n for n in PAPER if n in ours]
    if len(names) < 2:
        return None
    theirs = sorted(names, key=lambda n: -PAPER[n].test_acc)
    mine = sorted(names, key=lambda n: -ours[n].summary(test_acc).median)
    tau, p = ranking_agreement(mine, theirs)
    return (f"**Ranking.** Kendall's tau between the study's order of its {len(names)} models "
            f"and ours (by median test accuracy) is {tau:.2f} ({p_value(p)}; 1 is the same "
            f"order, 0 none). The study's best is `{theirs[0]}`, ours `{mine[0]}`; its worst "
            f"`{theirs[-1]}`, ours `{mine[-1]}`.")


def lessons(results: Iterable[Result], readings: Iterable[Result] = ()) -> str:
    """The things the reproduction learned, as Markdown bullets."""
    results, readings = list(results), list(readings)
    items = [lesson_width(results, readings), lesson_stopping(results, readings),
             lesson_collapse(results, readings), lesson_ranking(results)]
    return "\n".join(f"* {item}" for item in items if item)


def load(quick: bool | None = None) -> tuple[list[Result], list[Result]]:
    """Every seed of the study's models and controls, and of the readings, trained together."""
    from .runs import study_results
    from .study import CONTROLS, READINGS

    everything = study_results([*STUDY, *CONTROLS, *READINGS], quick=quick)
    readings = [r for r in everything if r.experiment.name in READINGS]
    return [r for r in everything if r.experiment.name not in READINGS], readings
