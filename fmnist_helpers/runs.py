"""The notebooks' entry point to runs: :func:`run_experiment` and :func:`study_results`.

A *run* is one experiment of :mod:`fmnist_helpers.study` with one seed. Its result comes from
the cache when it is there, else it is trained. The work is done by three modules, whose names
are all importable from here too:

* :mod:`fmnist_helpers.results`: the run record (:class:`Result`, its :class:`Artifacts`) and
  the cache (:func:`cache_path`, :func:`load_cached`, :func:`cached_results`); no training;
* :mod:`fmnist_helpers.bridge`: from an experiment and a seed to the engine's member
  (:func:`member_for`, :func:`shape_of`, :func:`validation_rows`, :func:`train_one`);
* :mod:`fmnist_helpers.planner`: the planner that trains what is missing (:class:`Trajectory`,
  :func:`plan`, :func:`cost`, :func:`train_runs`, the worker processes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .bridge import VALIDATION_FRACTION, member_for, shape_of, train_one, validation_rows
from .constraints import MAX_SEED, check_seed
from .planner import MAX_STACK, MAX_UNITS, STOP_GUESS, Trajectory, cost, plan, train_runs
from .results import (
    ARTIFACTS_VERSION,
    CACHE_VERSION,
    RESULTS_DIR,
    Artifacts,
    Result,
    artifacts_path,
    cache_path,
    cached_results,
    clean_leftovers,
    get_data,
    load_cached,
    resolve,
    results_dir,
    versions,
    write_atomic,
)
from .settings import Settings, settings
from .study import STUDY, Experiment

__all__ = [
    "run_experiment", "study_results",
    "ARTIFACTS_VERSION", "CACHE_VERSION", "RESULTS_DIR", "Artifacts", "Result", "artifacts_path",
    "cache_path", "cached_results", "clean_leftovers", "get_data", "load_cached", "resolve",
    "results_dir", "versions", "write_atomic",
    "VALIDATION_FRACTION", "member_for", "shape_of", "train_one", "validation_rows",
    "MAX_SEED", "check_seed",
    "MAX_STACK", "MAX_UNITS", "STOP_GUESS", "Trajectory", "cost", "plan", "train_runs",
]


def run_experiment(
    name: str | Experiment,
    seed: int = 0,
    epochs: int | None = None,
    *,
    config: Settings | None = None,
    cache: bool = True,
) -> Result:
    """Train one run of an experiment (or load it from the cache) and return its result.

    ``config`` (default: ``settings()``, from the environment): quick mode trains a couple of
    epochs on a stratified subset, and quick and full results are cached in separate folders
    and never mix; ``settings(quick=True, device="cpu")`` chooses explicitly.
    """
    return train_runs([(name, seed)], config or settings(), epochs=epochs, cache=cache)[0]


def study_results(names: Iterable[str | Experiment] | None = None,
                  seeds: Sequence[int] | None = None,
                  config: Settings | None = None) -> list[Result]:
    """Every seed of every experiment named (default: the study's), as few stacks as possible;
    cached runs are loaded, the missing ones trained. ``seeds`` default to ``config.seeds``,
    ``config`` to ``settings()``."""
    config = config or settings()
    seeds = config.seeds if seeds is None else seeds
    return train_runs([(n, s) for n in (names or STUDY) for s in seeds], config)
