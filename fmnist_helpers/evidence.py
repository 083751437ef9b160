"""Evidence a chapter draws from beyond its own runs, and hand-written sentences kept true.

* :func:`claim`: a sentence written by hand whose truth depends on the runs. It is shown while
  its check holds; when a rerun contradicts it, the notebook stops (full settings) or shows the
  sentence struck through and marked (quick mode, whose short runs bear out little), so a
  hand-written sentence never turns false silently.
* :func:`width_evidence`: the study's row set beside our 10-unit model and its 50-unit reading,
  the reading that explains the study's high running train accuracy.
* :func:`explorer_depth`, :func:`explorer_width`, :func:`explorer_dropout`: what the explorer's
  grid (:mod:`fmnist_helpers.explorer`) shows for a chapter's question, each setting linked to
  the explorer's page at that setting (:data:`EXPLORER_LINK`).

Every number here comes from the runs; the study's numbers are named as the study's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import kernels
from .results import Result
from .seeds import Seeds, pct, seeds_text, test_acc, train_acc_running
from .settings import FULL_SEEDS, settings
from .study import PAPER

if TYPE_CHECKING:
    from .explorer import Point

# The explorer page keeps its setting in the URL fragment; every link to a setting has this form.
EXPLORER_PAGE = "explorer.html"
EXPLORER_LINK = EXPLORER_PAGE + "#depth={depth}&width={width}&dropout={dropout:g}"


class ContradictedClaim(AssertionError):
    """A hand-written sentence that the runs no longer bear out."""


def claim(text: str, holds: bool, why: str = "", strict: bool | None = None) -> str:
    """``text`` when its check ``holds``; otherwise stop or mark it.

    ``holds`` is the check itself (``cost[10] > cost[50]``), computed from the runs beside the
    sentence. When it fails, ``strict`` raises :class:`ContradictedClaim`; otherwise the
    sentence comes back struck through with a visible mark. ``why`` names what was checked,
    for the message. ``strict`` defaults to full settings with the default seeds in portable
    mode, the mode the committed outputs are made in (a contradicted sentence must never be
    committed), while another CPU's native digits, other seeds, or quick mode's short runs,
    mark the sentence and go on.
    """
    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(f"holds must be True or False (the check itself, e.g. cost_10 > "
                        f"cost_50), got {holds!r}")
    if not text.strip():
        raise ValueError("claim needs the sentence to show, got an empty text")
    if holds:
        return text
    checked = f" (checked: {why})" if why else ""
    if strict is None:  # the committed outputs' mode: full settings, default seeds, portable
        config = settings()
        strict = (not config.quick and config.seeds == tuple(range(FULL_SEEDS))
                  and kernels.requested() == "portable")
    if strict:
        raise ContradictedClaim(f"the runs no longer bear out this sentence{checked}: {text!r}. "
                                "Rewrite the sentence, or its check, in the notebook.")
    return f"~~{text}~~ **[not borne out by these runs{checked}]**"


# ---------------------------------------------------------------------------------------------
# The study's row, our 10-unit model and its 50-unit reading
# ---------------------------------------------------------------------------------------------

def running_train(s: Seeds) -> float:
    """Mean running train accuracy in the last epoch (the study's measure), kept seeds."""
    return s.summary(train_acc_running).mean


def nearer_fifty(ten: Seeds, fifty: Seeds) -> bool:
    """True when the study's running train accuracy for this row lies nearer our 50-unit
    reading's mean than our 10-unit model's."""
    paper = PAPER[ten.name].train_acc
    return abs(paper - running_train(fifty)) < abs(paper - running_train(ten))


def width_evidence(ten: Seeds, fifty: Seeds) -> str:
    """The study's train and test accuracy for one row beside our model as the study's words
    read (10 units per hidden layer) and its 50-unit reading, both over their seeds."""
    from .discuss import label, pct_mean_sd, points

    if fifty.experiment.hidden != 50 or ten.experiment.hidden != 10:
        raise ValueError(f"pass the 10-unit model and its 50-unit reading, got widths "
                         f"{ten.experiment.hidden} and {fifty.experiment.hidden}")
    if ten.name not in PAPER:
        raise ValueError(f"{ten.name!r} has no row in the study's table; pass one of "
                         f"{', '.join(PAPER)}")
    paper = PAPER[ten.name]
    ours = (f"Ours, as the study's words read (10 units per hidden layer), run at "
            f"{pct_mean_sd(ten.summary(train_acc_running))} running train accuracy in the last "
            f"epoch and score {pct_mean_sd(ten.summary(test_acc))} on the test set; the same "
            f"network with 50 units runs at {pct_mean_sd(fifty.summary(train_acc_running))} and "
            f"scores {pct_mean_sd(fifty.summary(test_acc))} (mean ± sd over the seeds"
            + "".join(f"; {len(s.collapsed)} collapsed {s.experiment.hidden}-unit seed"
                      f"{'s' if len(s.collapsed) > 1 else ''} left out"
                      for s in (ten, fifty) if s.collapsed) + ").")
    theirs = (f"For {label(ten)} the study reports {pct(paper.train_acc)} running train "
              f"accuracy and {pct(paper.test_acc)} test accuracy (the study's numbers, one run).")
    if ten.runs[0].quick:
        return f"{theirs} {ours} Quick-mode runs cannot be set against the study's numbers."
    gap10, gap50 = paper.train_acc - running_train(ten), paper.train_acc - running_train(fifty)

    def off(gap: float) -> str:
        if round(100 * gap, 1) == 0:
            return "level with"
        return f"{points(gap)} {'above' if gap > 0 else 'below'}"

    return (f"{theirs} {ours} The study's running train accuracy is {off(gap10)} our 10-unit "
            f"runs and {off(gap50)} our 50-unit runs.")


# ---------------------------------------------------------------------------------------------
# The explorer's grid
# ---------------------------------------------------------------------------------------------

def explorer_link(depth: int, width: int, dropout: float) -> str:
    """The explorer page at one setting: ``explorer.html#depth=8&width=10&dropout=0``."""
    return EXPLORER_LINK.format(depth=depth, width=width, dropout=dropout)


def _points(grid: Sequence[Result]) -> dict[tuple, Point]:
    from .explorer import points_of

    return points_of(grid)


def _at(points: dict[tuple, Point], depth: int, width: int, dropout: float) -> Point:
    point = points.get((depth, width, float(dropout), False))
    if point is None:
        have = sorted({(d, w, p) for d, w, p, _ in points})
        raise ValueError(f"the grid has no runs at depth {depth}, width {width}, dropout "
                         f"{dropout:g}; it has {have}: pass explorer.grid_results()")
    return point


def _mean(point: Point) -> float:
    value = point.mean("test_acc")
    return math.nan if value is None else value


def _setting(point: Point, text: str) -> str:
    """``text`` linked to the explorer at the point's setting, its collapsed seeds named."""
    link = f"[{text}]({explorer_link(point.depth, point.width, point.dropout)})"
    gone = len(point.collapsed)
    if gone == len(point.runs):
        return f"{link} (every seed at chance)"
    if gone:
        return f"{link} ({gone} of {len(point.runs)} seeds collapsed, left out)"
    return link


def _grid_of(grid: Sequence[Result]) -> tuple[dict[tuple, Point], list[int], list[int], list]:
    points = _points(grid)
    depths = sorted({k[0] for k in points})
    widths = sorted({k[1] for k in points})
    dropouts = sorted({k[2] for k in points})
    return points, depths, widths, dropouts


def depth_cost(grid: Sequence[Result], deep: int = 8, shallow: int = 3) -> dict[int, float]:
    """Per width: mean test accuracy at depth ``shallow`` minus at depth ``deep`` (no dropout),
    over the seeds that did not collapse."""
    points, _, widths, _ = _grid_of(grid)
    return {w: _mean(_at(points, shallow, w, 0)) - _mean(_at(points, deep, w, 0))
            for w in widths}


def dropout_cost(grid: Sequence[Result], rate: float = 0.2, depth: int = 3) -> dict[int, float]:
    """Per width: mean test accuracy without dropout minus with dropout ``rate``."""
    points, _, widths, _ = _grid_of(grid)
    return {w: _mean(_at(points, depth, w, 0)) - _mean(_at(points, depth, w, rate))
            for w in widths}


def width_gain(grid: Sequence[Result], narrow: int = 10, wide: int = 50) -> dict[int, float]:
    """Per depth: mean test accuracy at width ``wide`` minus at width ``narrow`` (no dropout)."""
    points, depths, _, _ = _grid_of(grid)
    return {d: _mean(_at(points, d, wide, 0)) - _mean(_at(points, d, narrow, 0))
            for d in depths}


def _pairs(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "; ".join(items[:-1]) + "; and " + items[-1]


def _recipe(grid: Sequence[Result]) -> str:
    seeds = sorted({r.seed for r in grid})
    return (f"the study's recipe, {seeds_text(seeds)} at each setting"
            + ("; quick mode" if grid[0].quick else ""))


def explorer_depth(grid: Sequence[Result], deep: int = 8, shallow: int = 3) -> str:
    """What the explorer's grid shows for depth: ``deep`` against ``shallow`` layers at each
    width, without dropout, each setting linked."""
    from .discuss import points as pts

    points, _, widths, _ = _grid_of(grid)
    cost = depth_cost(grid, deep, shallow)
    items = []
    for w in widths:
        d, s = _at(points, deep, w, 0), _at(points, shallow, w, 0)
        change = cost[w]
        word = "lower" if change > 0 else "higher"
        items.append(f"at width {w}, {_setting(d, f'{deep} layers')} reach {pct(_mean(d))} "
                     f"against {pct(_mean(s))} for {_setting(s, f'{shallow} layers')}, "
                     f"{pts(change)} {word}")
    return (f"The explorer's grid ({_recipe(grid)}) asks the same question at every width: "
            + _pairs(items) + ".")


def explorer_width(grid: Sequence[Result], narrow: int = 10, wide: int = 50) -> str:
    """What the explorer's grid shows for width: ``wide`` against ``narrow`` units at each
    depth, without dropout, each setting linked."""
    from .discuss import points as pts

    points, depths, _, _ = _grid_of(grid)
    gain = width_gain(grid, narrow, wide)
    items = []
    for d in depths:
        a, b = _at(points, d, wide, 0), _at(points, d, narrow, 0)
        word = "more" if gain[d] > 0 else "less"
        items.append(f"at depth {d}, {_setting(a, f'{wide} units')} reach {pct(_mean(a))} "
                     f"against {pct(_mean(b))} for {_setting(b, f'{narrow} units')}, "
                     f"{pts(gain[d])} {word}")
    return (f"The explorer's grid ({_recipe(grid)}) widens networks of every depth: "
            + _pairs(items) + ".")


def explorer_dropout(grid: Sequence[Result], rate: float = 0.2, depth: int = 3) -> str:
    """What the explorer's grid shows for dropout ``rate`` at depth ``depth``: its cost in test
    accuracy at each width, each setting linked."""
    from .discuss import points as pts

    points, _, widths, _ = _grid_of(grid)
    cost = dropout_cost(grid, rate, depth)
    items = []
    for w in widths:
        with_, without = _at(points, depth, w, rate), _at(points, depth, w, 0)
        word = "costs" if cost[w] > 0 else "gains"
        items.append(f"at width {w} dropout {word} {pts(cost[w])} "
                     f"({_setting(with_, pct(_mean(with_)))} against "
                     f"{_setting(without, pct(_mean(without)))} without)")
    return (f"On the explorer's grid ({_recipe(grid)}), dropout {rate:g} at depth {depth}: "
            + _pairs(items) + ".")
