"""The explorer's grid: depth x width x dropout, trained the study's way, and its runs by setting.

The grid (:data:`GRID`) is trained by the project's engine through :func:`planner.train_runs`,
with the study's recipe (SGD, lr 0.1, batches of 32, 10 epochs) and one seed per point. A grid
point that is one of the study's models (depth 3 width 10 is "shallow", width 50 "wide", ...)
*is* that experiment, so it shares the study's cached runs.

Loading: :func:`grid_results`, the notebooks' loader, loads the cached runs and trains the
missing ones; :func:`cached_grid_results` and :func:`lookup` read the cache and never train.
:class:`Point` groups one setting's seeds with their numbers, which the grid's tables
(:func:`grid_table`, :func:`grid_collapses`) and the explorer page
(:mod:`fmnist_helpers.explorer`) read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .results import Result, cached_results
from .settings import Settings, settings
from .study import CONTROLS, READINGS, STUDY, Experiment

if TYPE_CHECKING:
    from .sweep import Sweep


def seed_band(runs: Sequence[Result], column: str
              ) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per epoch (from 1): the epochs, the mean of ``column`` over the runs, their lowest and
    their highest; an epoch a run did not reach, or a value that is not finite, is left out."""
    epochs, mean, low, high = [], [], [], []
    for i in range(max((len(r.history) for r in runs), default=0)):
        values = [r.history.rows[i][column] for r in runs if i < len(r.history)]
        values = [v for v in values if math.isfinite(v)]
        if values:
            epochs.append(i + 1)
            mean.append(sum(values) / len(values))
            low.append(min(values))
            high.append(max(values))
    return epochs, mean, low, high


@dataclass(frozen=True)
class Grid:
    """The settings the explorer spans; every other knob is the study's recipe."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    dropouts: tuple[float, ...]
    batch_norms: tuple[bool, ...] = (False,)
    seeds: tuple[int, ...] = (0, 1)

    def points(self) -> list[tuple[int, int, float, bool]]:
        """Every (depth, width, dropout, batch_norm), depth slowest."""
        return [(d, w, p, b) for d in self.depths for w in self.widths for p in self.dropouts
                for b in self.batch_norms]

    def __contains__(self, point: tuple) -> bool:
        depth, width, dropout, batch_norm = point
        return (depth in self.depths and width in self.widths and dropout in self.dropouts
                and batch_norm in self.batch_norms)


# Full settings: 24 points x 1 seed, 10 epochs each; 5 points are experiments the sections
# train anyway (4 study models, a reading), so 19 runs are the grid's own: one seed and two
# widths keep the report within its 10 minutes on the 2-core machine (docs/speed.md). The
# explorer is for looking around; the sections' claims rest on the study's 5 seeds, and a sweep
# of your own (:mod:`fmnist_helpers.sweep`) adds seeds or widths. Quick mode: 8 points x 2 seeds
# on the quick subset.
GRID = Grid(depths=(2, 3, 4, 8), widths=(10, 50), dropouts=(0.0, 0.2, 0.5), seeds=(0,))
QUICK_GRID = Grid(depths=(3, 8), widths=(10, 50), dropouts=(0.0, 0.2))


def grid_for(config: Settings | None = None) -> Grid:
    """The grid of full settings, or the small one of quick mode (default: ``settings()``)."""
    return QUICK_GRID if (config or settings()).quick else GRID


def grid_sweep(config: Settings | None = None) -> Sweep:
    """The grid in force as a sweep (:mod:`fmnist_helpers.sweep`): the same experiments, names
    and seeds; ``python -m fmnist_helpers.sweep grid`` writes its sweep page."""
    from .sweep import Sweep

    grid = grid_for(config)
    axes = {"n_linear": grid.depths, "hidden": grid.widths, "dropout": grid.dropouts}
    if len(grid.batch_norms) > 1:
        axes["batch_norm"] = grid.batch_norms
    return Sweep("grid", axes, grid.seeds, {"batch_norm": grid.batch_norms[0]}
                 if len(grid.batch_norms) == 1 else {})


def _known() -> list[Experiment]:
    return [*STUDY.values(), *READINGS.values(), *CONTROLS.values()]


def grid_experiment(depth: int, width: int, dropout: float, batch_norm: bool = False
                    ) -> Experiment:
    """The study's recipe at one setting of depth, width, dropout and batch norm.

    Named ``grid_d{depth}_w{width}_p{dropout}`` (``_bn`` with batch norm), unless one of the
    study's experiments (or a reading, or a control) has exactly these numbers: then it is that
    experiment, so the two share their cached runs.
    """
    name = f"grid_d{depth}_w{width}_p{dropout:g}" + ("_bn" if batch_norm else "")
    title = (f"Depth {depth}, width {width}, dropout {dropout:g}"
             + (", batch norm" if batch_norm else ""))
    experiment = Experiment(name, title, n_linear=depth, hidden=width, dropout=dropout,
                            batch_norm=batch_norm,
                            notes="Explorer grid point: the study's recipe (SGD, lr 0.1, "
                                  "batches of 32, 10 epochs).")
    for known in _known():
        if known.numbers_key() == experiment.numbers_key():
            return known
    return experiment


def grid_experiments(config: Settings | None = None) -> list[Experiment]:
    """The experiments of the grid in force (quick or full), one per point: its sweep's."""
    return grid_sweep(config).experiments()


def grid_runs(config: Settings | None = None) -> list[tuple[Experiment, int]]:
    """Every (experiment, seed) run of the grid in force."""
    config = config or settings()
    return [(e, s) for e in grid_experiments(config) for s in grid_for(config).seeds]


def grid_results(config: Settings | None = None) -> list[Result]:
    """Every run of the grid: cached ones loaded, the missing ones trained (one plan)."""
    from .planner import train_runs  # the trainer, imported only by the one function that trains

    config = config or settings()
    return train_runs(grid_runs(config), config)


def cached_grid_results(config: Settings | None = None) -> list[Result]:
    """The grid's runs found in the cache; nothing is trained, missing runs are left out."""
    config = config or settings()
    return cached_results(grid_experiments(config), grid_for(config).seeds, config)


def _check_point(depth: int, width: int, dropout: float, batch_norm: bool) -> None:
    for label, value in (("depth", depth), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{label} must be a whole number, got {value!r}")
    if depth < 2:
        raise ValueError(f"depth (linear layers, classifier included) must be >= 2, got {depth}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}")


def lookup(depth: int, width: int, dropout: float, batch_norm: bool = False,
           config: Settings | None = None) -> list[Result] | None:
    """The cached runs (the grid's seeds) at one setting, or None; never trains.

    A setting has runs when it is a point of the grid in force or one of the study's models
    (its other knobs at the study's recipe). None when it is neither, or when none of its runs
    is in the cache yet. For the playground: an on-grid setting shows at once.
    """
    _check_point(depth, width, dropout, batch_norm)
    config, dropout = config or settings(), float(dropout)
    experiment = grid_experiment(depth, width, dropout, batch_norm)
    if (depth, width, dropout, batch_norm) not in grid_for(config) \
            and experiment.name.startswith("grid_"):
        return None
    found = cached_results([experiment], grid_for(config).seeds, config)
    return found or None



DIMS = ("depth", "width", "dropout", "batch_norm")
GRID_FIELDS = ("n_linear", "hidden", "dropout", "batch_norm", "epochs")


def value_key(dim: str, value) -> str:
    """A setting as the explorer's sliders and point keys spell it: "0.2", "on", "8"."""
    if dim == "dropout":
        return f"{value:g}"
    if dim == "batch_norm":
        return "on" if value else "off"
    return str(value)


@dataclass
class Point:
    """The runs at one setting of the grid (one per seed), and their numbers."""

    depth: int
    width: int
    dropout: float
    batch_norm: bool
    runs: list[Result]

    @property
    def setting(self) -> tuple:
        return self.depth, self.width, self.dropout, self.batch_norm

    @property
    def key(self) -> str:
        return "|".join(value_key(d, v) for d, v in zip(DIMS, self.setting, strict=True))

    @property
    def collapsed(self) -> list[Result]:
        """The seeds that collapsed to chance or diverged (:func:`seeds.collapsed`)."""
        from .seeds import collapsed

        return [r for r in self.runs if collapsed(r)]

    @property
    def kept(self) -> list[Result]:
        """The seeds that did not collapse (all of them when every seed collapsed): the
        report's rule, collapsed seeds are reported apart, not averaged in."""
        return [r for r in self.runs if r not in self.collapsed] or self.runs

    def finals(self, column: str, kept: bool = False) -> list[float]:
        """The last epoch's ``column`` of each seed (each kept seed) that finished one."""
        return [r.history.last[column] for r in (self.kept if kept else self.runs)
                if len(r.history)]

    def mean(self, column: str) -> float | None:
        """The mean of ``column`` at the last epoch over the seeds that did not collapse."""
        values = self.finals(column, kept=True)
        return sum(values) / len(values) if values else None

    def collapse_note(self) -> str:
        """"" or " · seed 0 (0.100) collapsed to chance, left out of the mean"."""
        if not self.collapsed:
            return ""
        if len(self.collapsed) == len(self.runs):
            return " · every seed collapsed to chance"
        gone = ", ".join(f"{r.seed} (" + ("diverged" if r.history.diverged or not len(r.history)
                                          else f"{r.final['test_acc']:.3f}") + ")"
                         for r in self.collapsed)
        return f" · seed {gone} collapsed to chance, left out of the mean"

    def loss_range(self) -> list[float]:
        """The loss axis for this point: from 0 to its highest loss (train or test, any
        seed), so that a curve that did not diverge is not flattened by one that did."""
        tops = [max(self.curve(f"{s}_loss")[3], default=0.0) for s in ("train", "test")]
        return [0.0, 1.05 * max(max(tops), 0.5)]

    def curve(self, column: str) -> tuple[list[int], list[float], list[float], list[float]]:
        """Per epoch: the epochs, the mean over the seeds, their lowest and their highest."""
        return seed_band(self.runs, column)

    def title(self) -> str:
        """The heading shown for this point: its setting, the study's name, final numbers."""
        head = (f"<b>Depth {self.depth}, width {self.width}, dropout {self.dropout:g}"
                + (", batch norm" if self.batch_norm else "") + "</b>")
        name = self.runs[0].experiment.name
        if name in STUDY:
            head += f" (the study's <i>{name}</i> model)"
        tests, test, train = (self.finals("test_acc", kept=True), self.mean("test_acc"),
                              self.mean("train_acc"))
        if test is None:
            return head + "<br>no seed finished an epoch (diverged)"
        seeds = ("seeds " if len(self.runs) > 1 else "seed ") + ", ".join(
            str(r.seed) for r in self.runs)
        spread = f" (seeds {min(tests):.3f} to {max(tests):.3f})" if len(tests) > 1 else ""
        return (f"{head}<br>test accuracy <b>{test:.3f}</b>{spread} · train accuracy "
                f"{train:.3f} · {self.runs[0].n_params:,} parameters · {seeds}, "
                f"{self.runs[0].epochs_trained} epochs{self.collapse_note()}")


def _check_on_grid(result: Result) -> None:
    recipe = Experiment("recipe", "").numbers_key()
    key = result.experiment.numbers_key()
    differ = sorted(k for k in key if k not in GRID_FIELDS and key[k] != recipe[k])
    if differ:
        raise ValueError(f"run {result.experiment.name!r} (seed {result.seed}) is not a grid "
                         f"run: its {', '.join(differ)} differ from the study's recipe; pass "
                         "the grid's runs (grid_results())")


def points_of(results: Sequence[Result]) -> dict[tuple, Point]:
    """The results grouped by setting (depth, width, dropout, batch norm), seeds in order."""
    results = list(results)
    if not results:
        raise ValueError("no results to explore: pass the grid's runs (grid_results())")
    if len({r.quick for r in results}) > 1:
        raise ValueError("the results mix quick-mode and full runs; load them all with the "
                         "same FMNIST_QUICK setting")
    points: dict[tuple, Point] = {}
    for r in sorted(results, key=lambda r: r.seed):
        _check_on_grid(r)
        e = r.experiment
        setting = (e.n_linear, e.hidden, float(e.dropout), e.batch_norm)
        point = points.setdefault(setting, Point(*setting, []))
        if r.seed not in {run.seed for run in point.runs}:
            point.runs.append(r)
    return points



def grid_table(results: Sequence[Result]):
    """Final test accuracy (mean of the seeds that did not collapse) per setting: a row per
    dropout rate and depth, a column per width. :func:`grid_collapses` names the seeds left
    out."""
    import pandas as pd

    rows = [{"dropout": p.dropout, "depth": p.depth, "width": p.width,
             "batch norm": p.batch_norm, "test acc": p.mean("test_acc")}
            for p in points_of(results).values()]
    frame = pd.DataFrame(rows)
    if frame["batch norm"].nunique() == 1:
        frame = frame.drop(columns="batch norm")
    index = [c for c in ("dropout", "batch norm", "depth") if c in frame]
    return frame.pivot_table(index=index, columns="width", values="test acc")


def grid_collapses(results: Sequence[Result]) -> list[str]:
    """The grid's seeds that collapsed to chance, reported apart from the means: "depth 8,
    width 10, dropout 0: seed 0 (0.100)"."""
    return [f"depth {p.depth}, width {p.width}, dropout {p.dropout:g}"
            + (", batch norm" if p.batch_norm else "") + ": "
            + ", ".join(f"seed {r.seed} ({r.final['test_acc']:.3f})" if len(r.history)
                        else f"seed {r.seed} (diverged)" for r in p.collapsed)
            for p in points_of(results).values() if p.collapsed]

