"""What the reproduction learned, beyond the row-by-row verdicts: the width of the study's
variants, its early stopping, the seeds that collapsed, and how the models rank.

Each lesson is a :data:`Lesson`: the sentence the report prints, and the same conclusion
without digits, which :func:`fmnist_helpers.findings.replication` compares across two seed sets.
The public ``lesson_*`` functions give one lesson's sentence; :func:`lesson_items` all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .results import Result
from .seeds import (
    Seeds,
    compare,
    epochs,
    group,
    p_value,
    pct,
    ranking_agreement,
    separated,
    test_acc,
)
from .study import PAPER, STUDY, base_of, changes
from .tables import epochs_text
from .verdicts import (
    consistent,
    count_text,
    interval_of,
    interval_text,
    names_text,
    readings_of,
    where,
)

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
            f"{len(fit50)} ({names_text(fit50) if fit50 else 'none'}) and with 10 for {len(fit10)} "
            f"({names_text(fit10) if fit10 else 'none'}).")
    return text, f"50 units fit: {', '.join(fit50) or 'none'}; 10 units fit: " \
                 f"{', '.join(fit10) or 'none'}"


def _readings_allow(tried: int, in_epochs: int, fitting: int, study_epochs: int) -> str:
    """"Of the 8 readings tried, 6 allow the study's 16 epochs (...), and 2 of them its accuracy
    as well": counts said as words read them ("None of the 4 readings", "all 3 readings")."""
    if in_epochs == 0:
        return (f"None of the {tried} readings tried allows the study's {study_epochs} epochs"
                if tried > 1 else f"The one reading tried does not allow {study_epochs} epochs")
    allow = ("the one reading tried allows" if tried == 1 else
             f"all {tried} readings tried allow" if in_epochs == tried else
             f"of the {tried} readings tried, {in_epochs} allow" if in_epochs > 1 else
             f"of the {tried} readings tried, one allows")
    also = (("that one its accuracy as well" if fitting else "that one not its accuracy")
            if in_epochs == 1 else "none of them its accuracy as well" if fitting == 0 else
            f"{'all' if fitting == in_epochs else fitting} of them its accuracy as well")
    text = (f"{allow} the study's {study_epochs} epochs (inside the prediction interval for "
            f"their epochs), and {also}")
    return text[:1].upper() + text[1:]


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
            f"{interval_text(*interval_of(ours[name], epochs), 1, 0)}). "
            + _readings_allow(len(tried), len(in_epochs), len(fitting), paper.epochs)
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
    return (f"**Collapses.** {count_text(len(hit), 'model')} had seeds that ended at chance "
            f"level or diverged: {'; '.join(parts)}. They are reported apart from the other "
            "seeds, and the tests rank all seeds, so one collapse cannot turn a conclusion "
            "around.",
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
                f"{'highest' if word == 'best' else 'lowest'} mean) from {names_text(g[1:])}")

    return (f"**Ranking.** Kendall's tau between the study's order of its {len(names)} models "
            f"and ours (by mean test accuracy) is {tau:.2f} ({p_value(p)}; 1 is the same "
            f"order, 0 none). The study's best is `{theirs[0]}` and its worst `{theirs[-1]}`; "
            f"{group_text(top, 'best')}; {group_text(bottom, 'worst')} (an order is named only "
            "where the bootstrap interval of the difference excludes 0 and p < 0.05).",
            f"best: {', '.join(sorted(top))}; worst: {', '.join(sorted(bottom))}")


def lesson_items(results: list[Result], readings: list[Result]) -> dict[str, Lesson]:
    """Every lesson that the runs allow, by name: (sentence, conclusion without digits)."""
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

