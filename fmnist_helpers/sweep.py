"""Sweeps: your own grid over any of the study's knobs, trained and explored in one page.

A sweep is a few lines of TOML (or a :class:`Sweep` made in Python)::

    name = "lr"
    seeds = 10                    # seeds 0-9; or a list: [0, 3, 7]
    base = "shallow"              # optional: the experiment the sweep varies (default shallow)

    [axes]                        # knob -> the values it takes; every combination is trained
    lr = [0.01, 0.03, 0.1, 0.3]
    depth = [3, 4]

    [fixed]                       # optional: knobs set once, for every setting
    epochs = 10

The knobs are the fields of :class:`~fmnist_helpers.study.Experiment` (read from the class, so
a knob added there can be swept at once), ``depth`` and ``width`` as aliases; a value is checked
by the same rules as the study's experiments (:mod:`fmnist_helpers.constraints`).
``python -m fmnist_helpers.sweep sweep.toml`` trains what the cache lacks through the planner
(on this machine, or on a Dask cluster with ``--scheduler tcp://host:8786`` or
``FMNIST_SCHEDULER``) and writes ``report/sweeps/NAME.html`` (:mod:`fmnist_helpers.sweep_page`).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

from .constraints import ALIASES, check_seed
from .results import Result
from .settings import Settings, scheduler_address, settings
from .study import CONTROLS, DEPTH_LR, READINGS, STUDY, Experiment, get_experiment

PROSE = ("name", "title", "notes")  # Experiment's fields that are not knobs
SHORT = {"n_linear": "d", "hidden": "w", "dropout": "p", "batch_norm": "bn",  # in names
         "activation": "", "optimizer": "", "batch_size": "bs", "train_size": "n"}
LABELS = {"n_linear": "depth (linear layers)", "hidden": "width (units per hidden layer)",
          "lr": "learning rate", "batch_norm": "batch norm"}
REPORT_DIR = Path(__file__).resolve().parent.parent / "report"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
BUILTIN = "grid"  # the command's name for the explorer's grid (grid.grid_sweep)


class SweepError(ValueError):
    """A sweep that cannot be trained as written; the message names the key and the fix."""


def knobs() -> list[str]:
    """The knobs a sweep may vary: every field of Experiment but its name and prose."""
    return [f.name for f in dataclasses.fields(Experiment) if f.name not in PROSE]


def knob_of(key: str, where: str = "") -> str:
    """A sweep file's key as the Experiment's field (``depth`` -> ``n_linear``); ``where``
    (``"[axes]"``) starts the error's message."""
    name = ALIASES.get(key, key)
    if name not in knobs():
        aliases = [a for a, k in ALIASES.items() if k in knobs()]
        raise SweepError(f"{where + ' ' if where else ''}unknown knob {key!r}; the knobs are "
                         f"{', '.join(knobs())} "
                         f"(or {', '.join(aliases)})")
    return name


def label(knob: str) -> str:
    """A knob in words, for the page."""
    return LABELS.get(knob, knob.replace("_", " "))


def _typed(knob: str, value):
    """A TOML value as the field holds it: 0 -> 0.0 for a float knob (so that the cache key
    is the study's), 3.0 -> 3 for a whole one, "none" -> None where None is allowed."""
    default = next(f.default for f in dataclasses.fields(Experiment) if f.name == knob)
    if isinstance(value, str) and value.lower() == "none" and default is None:
        return None
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float) \
            and value.is_integer():
        return int(value)
    return value


def _checked(base: Experiment, knob: str, value, where: str) -> object:
    """``value`` for ``knob``, typed and checked by the rules of the study's experiments."""
    value = _typed(knob, value)
    try:
        base.replace(**{knob: value})
    except (TypeError, ValueError) as e:
        message = re.sub(r"^experiment '[^']*': ", "", str(e))
        raise SweepError(f"{where}: {message}") from None
    return value


def _word(knob: str, value) -> str:
    """One knob's value in an experiment's name: d3, lr0.03, bn (batch norm on)."""
    short = SHORT.get(knob, knob)
    if isinstance(value, bool):
        return short if value else ""
    if value is None:
        return f"{short}none"
    return f"{short}{value:g}" if isinstance(value, float) else f"{short}{value}"


@dataclass(frozen=True)
class Sweep:
    """A grid of settings over some knobs, each trained with ``seeds``; other knobs are the
    ``base`` experiment's, after ``fixed``. Settings run over the axes, the first slowest."""

    name: str
    axes: dict[str, tuple]
    seeds: tuple[int, ...]
    fixed: dict[str, object] = field(default_factory=dict)
    base: str = "shallow"

    def __post_init__(self) -> None:
        """Check the name, the knobs, each value and the seeds; SweepError names the key."""
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise SweepError(f"name must be letters, digits, _ or - (a letter first), got "
                             f"{self.name!r}: it names the page and the runs")
        try:
            base = get_experiment(self.base)
        except KeyError as e:
            raise SweepError(f"base: {e.args[0]}") from None
        fixed = {}
        for key, value in self.fixed.items():
            knob = knob_of(key, "[fixed]")
            fixed[knob] = _checked(base, knob, value, f"[fixed] {key}")
        base = base.replace(**fixed)
        if not self.axes:
            raise SweepError("[axes] is empty: give at least one knob and its values, e.g. "
                             "lr = [0.03, 0.1]")
        axes = {}
        for key, values in self.axes.items():
            knob = knob_of(key, "[axes]")
            if knob in fixed or knob in axes:
                raise SweepError(f"[axes] {key}: {knob} is given twice; keep it in one place")
            if not isinstance(values, (list, tuple)) or not values:
                raise SweepError(f"[axes] {key}: give a list of values, e.g. {key} = "
                                 f"[{getattr(base, knob)!r}], got {values!r}")
            typed = tuple(_checked(base, knob, v, f"[axes] {key}") for v in values)
            if len(set(typed)) < len(typed):
                raise SweepError(f"[axes] {key}: a value is listed twice in {list(values)}")
            axes[knob] = typed
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "seeds", _seeds(self.seeds))

    def recipe(self) -> Experiment:
        """The experiment every setting starts from: ``base`` with ``fixed`` applied."""
        return get_experiment(self.base).replace(**self.fixed)

    def settings(self) -> list[dict[str, object]]:
        """Every combination of the axes' values, the first axis slowest."""
        return [dict(zip(self.axes, combo, strict=True))
                for combo in itertools.product(*self.axes.values())]

    def experiment(self, setting: dict[str, object]) -> Experiment:
        """The experiment at one setting, named from it (``lr_d3_lr0.03``); one of the
        study's own experiments when it has exactly these numbers, so they share runs."""
        words = [w for w in (_word(k, v) for k, v in setting.items()) if w]
        name = "_".join([self.name, *words])
        title = ", ".join(_titled(k, v) for k, v in setting.items())
        recipe = self.recipe()
        experiment = recipe.replace(name=name, title=title[:1].upper() + title[1:],
                                    notes=f"Sweep {self.name}: the {self.base} experiment"
                                          f"{' (' + _said(self.fixed) + ')' if self.fixed else ''}"
                                          f" at {title}.", **setting)
        for known in (*STUDY.values(), *READINGS.values(), *CONTROLS.values(),
                      *DEPTH_LR.values()):
            if known.numbers_key() == experiment.numbers_key():
                return known
        return experiment

    def experiments(self) -> list[Experiment]:
        """One experiment per setting, in :meth:`settings`' order."""
        return [self.experiment(s) for s in self.settings()]

    def runs(self) -> list[tuple[Experiment, int]]:
        """Every (experiment, seed) of the sweep, settings slowest."""
        return [(e, s) for e in self.experiments() for s in self.seeds]


def _titled(knob: str, value) -> str:
    """A knob's value in an experiment's title: "depth 3", "dropout 0.2", "batch norm"."""
    words = {"n_linear": "depth", "hidden": "width"}.get(knob, label(knob))
    if isinstance(value, bool):
        return words if value else f"no {words}"
    return f"{words} {value:g}" if isinstance(value, float) else f"{words} {value}"


def _said(values: dict) -> str:
    return ", ".join(f"{label(k)} {v}" for k, v in values.items())


def _seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SweepError(f"seeds must be a count >= 1 (seeds 0 to count - 1) or a list "
                             f"of seeds, got {seeds}")
        return tuple(range(seeds))
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise SweepError(f"seeds must be a count (10: seeds 0-9) or a list ([0, 3]), got "
                         f"{seeds!r}")
    try:
        out = tuple(check_seed(s) for s in seeds)
    except ValueError as e:
        raise SweepError(f"seeds: {e}") from None
    if len(set(out)) < len(out):
        raise SweepError(f"seeds: a seed is listed twice in {list(seeds)}")
    return out


def load_sweep(path: str | Path) -> Sweep:
    """The sweep a TOML file describes; a SweepError names the file, the key and the fix."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"{path}: no such file; write a sweep file (see "
                         "examples/sweep_lr.toml)") from None
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{path}: not valid TOML ({e})") from None
    allowed = {"name", "seeds", "axes", "fixed", "base"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SweepError(f"{path}: unknown key {unknown[0]!r}; a sweep file has "
                         f"{', '.join(sorted(allowed))} (knobs go under [axes] or [fixed])")
    for key in ("name", "seeds", "axes"):
        if key not in spec:
            raise SweepError(f"{path}: missing {key!r}; e.g. name = \"lr\", seeds = 10, and "
                             "[axes] lr = [0.03, 0.1]")
    for table in ("axes", "fixed"):
        if not isinstance(spec.get(table, {}), dict):
            raise SweepError(f"{path}: {table} must be a table, [{table}] with knob = ... "
                             "lines below it")
    try:
        return Sweep(spec["name"], dict(spec["axes"]), spec["seeds"], dict(spec.get("fixed", {})),
                     spec.get("base", "shallow"))
    except SweepError as e:
        raise SweepError(f"{path}: {e}") from None


def executor_for(scheduler: str | None = None):
    """A Dask cluster's executor when a scheduler is named (here or by ``FMNIST_SCHEDULER``),
    else this machine's processes."""
    from .planner import LocalPool  # the trainer: imported by the functions that train only

    scheduler = scheduler or scheduler_address()
    if scheduler:
        from .cluster import DaskCluster

        return DaskCluster(scheduler)
    return LocalPool()


def run_sweep(sweep: Sweep | str | Path, config: Settings | None = None,
              scheduler: str | None = None) -> list[Result]:
    """Every run of a sweep (a Sweep, or a TOML file's path), in :meth:`Sweep.runs`' order:
    cached ones loaded, the others trained (here, or on the Dask cluster at ``scheduler``)."""
    from .planner import train_runs

    sweep = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    executor = executor_for(scheduler)
    try:
        return train_runs(sweep.runs(), config or settings(), executor=executor)
    finally:
        if hasattr(executor, "close"):
            executor.close()


def page_path(sweep: Sweep, quick: bool, out: str | Path | None = None) -> Path:
    """Where a sweep's page goes: ``OUT/NAME.html``, by default ``report/sweeps/`` (quick
    mode: ``report-quick/sweeps/``)."""
    if out is None:
        out = (REPORT_DIR.with_name("report-quick") if quick else REPORT_DIR) / "sweeps"
    return Path(out) / f"{sweep.name}.html"


def main(argv: list[str] | None = None) -> int:
    """``python -m fmnist_helpers.sweep FILE``: train a sweep, write its page."""
    parser = argparse.ArgumentParser(
        prog="python -m fmnist_helpers.sweep",
        description="Train a sweep described in a TOML file and write its explorer page.")
    parser.add_argument("file", help="the sweep file (see examples/sweep_lr.toml), or grid: "
                        "the explorer's built-in grid")
    parser.add_argument("--scheduler", help="a Dask scheduler's address, tcp://host:8786 "
                        "(default: FMNIST_SCHEDULER, else this machine)")
    parser.add_argument("--quick", action="store_true", help="quick mode (as FMNIST_QUICK=1)")
    parser.add_argument("--out", help="the page's folder (default report/sweeps)")
    args = parser.parse_args(argv)
    from .sweep_page import write_sweep_page

    try:
        config = settings(True if args.quick else None)
        if args.file == BUILTIN and not Path(args.file).exists():
            from .grid import grid_sweep

            sweep = grid_sweep(config)
        else:
            sweep = load_sweep(args.file)
        start = time.perf_counter()
        results = run_sweep(sweep, config, args.scheduler)
        took = time.perf_counter() - start
        path = write_sweep_page(page_path(sweep, config.quick, args.out), sweep, results)
    except (SweepError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(results)} runs of sweep {sweep.name!r} ({len(sweep.settings())} settings x "
          f"{len(sweep.seeds)} seeds) ready in {took:.0f} s; page: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
