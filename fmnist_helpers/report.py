"""Execute every notebook and write the HTML report.

    python -m fmnist_helpers.report [--quick] [--out DIR] [--update-notebooks] [--only 00 08]

First every run that the notebooks read (all experiments, readings and controls, every seed, and
the explorer's grid) is trained in one plan by :func:`fmnist_helpers.planner.train_runs`, one
progress bar over all of them; runs already in the cache are loaded. Then each notebook in
``notebooks/`` (``NN_name.ipynb``, in order but the playground first, two at a time on a
machine with two cores: ``--jobs``) runs in a fresh kernel on this Python interpreter. Right
after it finishes, its executed copy goes to ``OUT/notebooks/`` and a self-contained HTML page
(images embedded, widgets drawn from their saved state, nothing fetched from the network) to
``OUT/``, so a later failure loses nothing. Then ``OUT/index.html`` gets the summary table from
the results cache and links to every page. ``--quick`` runs the kernels with ``FMNIST_QUICK=1``
and writes to ``report-quick/``; ``--update-notebooks`` writes the executed outputs, stripped of
volatile metadata, back into ``notebooks/`` (the committed outputs).

The work is done by :mod:`fmnist_helpers.execution` (a notebook in a fresh kernel, volatile
metadata stripped) and :mod:`fmnist_helpers.pages` (the HTML pages and the index); their public
names are importable from here too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .execution import (
    CELL_TIMEOUT,
    ROOT,
    NotebookFailed,
    ThisPythonKernelManager,
    ThisPythonKernelSpecs,
    environment,
    execute,
    relative,
    strip_volatile,
)
from .pages import WidgetFallbackPreprocessor, export_html, findings_html, index_page, section_item
from .render import write_text_atomic
from .settings import Settings, settings

__all__ = ["main", "run_report", "write_index", "train_everything", "export_html",
           "strip_volatile", "execute", "WidgetFallbackPreprocessor", "NotebookFailed",
           "ThisPythonKernelManager", "ThisPythonKernelSpecs", "environment", "CELL_TIMEOUT"]

NOTEBOOKS_DIR = ROOT / "notebooks"


@dataclass
class NotebookRun:
    """How one notebook went: ``status`` is "ok", "failed", "interrupted", "not run", or
    "earlier" (not executed this time; its page is from an earlier run)."""

    path: Path
    title: str
    status: str = "not run"
    seconds: float = 0.0
    error: str = ""

    @property
    def page(self) -> str:
        return self.path.stem + ".html"


def find_notebooks(directory: Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    """The report's notebooks (``NN_*.ipynb``) in reading order; ``only`` keeps name prefixes."""
    found = sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(p.name.startswith(prefix) for prefix in only)]
        if not found:
            raise SystemExit(f"--only {' '.join(only)}: no notebook in {directory} starts so.")
    if not found:
        raise SystemExit(f"{directory}: no notebook named NN_*.ipynb to execute.")
    return found


def notebook_title(nb) -> str:
    """The first Markdown heading of a notebook, without its hashes."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def notebook_runs(notebooks: list[Path]) -> list[NotebookRun]:
    """One not-yet-run :class:`NotebookRun` per notebook, titled from its first heading."""
    return [NotebookRun(p, notebook_title(nbformat.read(p, as_version=4))) for p in notebooks]


def _save(nb, run: NotebookRun, out: Path) -> None:
    clean = strip_volatile(nb, run.path.stem)
    write_text_atomic(out / "notebooks" / run.path.name, nbformat.writes(clean))
    export_html(clean, out / run.page, run.title)


# ---------------------------------------------------------------------------------------------
# The index: loaded from the results cache (nothing is trained), drawn by pages.index_page
# ---------------------------------------------------------------------------------------------

def _with_earlier_pages(out: Path, runs: list[NotebookRun]) -> list[NotebookRun]:
    """``runs`` and, in reading order among them, the other notebooks of their folder whose
    page an earlier run left in ``out`` (``--only`` executes a few; the index keeps the rest)."""
    if not runs:
        return runs
    mine = {run.path for run in runs}
    others = [p for p in find_notebooks(runs[0].path.parent)
              if p not in mine and (out / (p.stem + ".html")).exists()]
    earlier = [NotebookRun(p, notebook_title(nbformat.read(p, as_version=4)), "earlier")
               for p in others]
    return sorted([*runs, *earlier], key=lambda run: run.path.name)


def write_index(out: Path, runs: list[NotebookRun], config: Settings) -> Path:
    """``OUT/index.html`` (and ``OUT/explorer.html`` when the grid's runs are cached): the mode,
    the findings, links to every section, the explorer, the summary table. Reads the results
    cache only."""
    from .explorer import cached_grid_results, index_section, write_explorer
    from .results import cached_results
    from .study import CONTROLS, READINGS, STUDY

    found, table = findings_html(cached_results([*STUDY, *CONTROLS], config=config),
                                 cached_results(list(READINGS), config=config))
    grid = cached_grid_results(config)
    if grid:
        write_explorer(out / "explorer.html", grid, back_link="index.html")
    runs = _with_earlier_pages(out, runs)
    items = [section_item(run.title or run.path.stem, run.page, run.path.name, run.status,
                          run.seconds, run.error, (out / run.page).exists()) for run in runs]
    missing = [run.path.name for run in runs if run.status not in ("ok", "earlier")]
    return write_text_atomic(out / "index.html", index_page(config, items, missing, found,
                                                            table, index_section(grid)))


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def train_everything(config: Settings) -> None:
    """Train (or load) every run the notebooks read before any notebook runs: the study's
    models, readings and controls, the depth section's learning rate x depth map, the
    small-data setting (:data:`~fmnist_helpers.study.SMALL_DATA`), and the explorer's grid, in
    one plan (:func:`planner.plan`).

    One plan, so the worker that finishes first goes on with the grid while the other ends the
    study, and the grid's points that share a shape with the study's models join their stacks.
    """
    from .diagnostics import map_runs
    from .explorer import grid_runs
    from .planner import train_runs
    from .study import CONTROLS, READINGS, STUDY, small_data_runs

    study = [(name, seed) for name in [*STUDY, *READINGS, *CONTROLS] for seed in config.seeds]
    start = time.perf_counter()
    depth_map, small_data = map_runs(config), small_data_runs(config)
    results = train_runs(study + depth_map + small_data + grid_runs(config), config)
    grid = len(results) - len(study) - len(depth_map) - len(small_data)
    print(f"{len(results)} runs ready (the study's {len(study)}, the depth map's "
          f"{len(depth_map)}, the small-data setting's {len(small_data)}, the explorer's grid "
          f"{grid}) in {time.perf_counter() - start:.0f} s", flush=True)


# the longest notebooks, roughly longest first (their times: docs/speed.md), so that none of
# them starts last and runs alone at the end
STARTS_FIRST = ("01_depth", "02_width", "08_results", "09_playground")


def run_report(
    out: Path, config: Settings, notebooks: list[Path], update: bool = False,
    timeout: int = CELL_TIMEOUT, jobs: int = 1,
) -> list[NotebookRun]:
    """Execute ``notebooks``, ``jobs`` at a time, saving each as it ends; after a failure,
    start no more (those running finish).

    They start in the order given, except the ones in :data:`STARTS_FIRST`, which start first
    in that order: a long notebook started last would run alone at the end.
    """
    out.mkdir(parents=True, exist_ok=True)
    runs = notebook_runs(notebooks)
    first = {stem: i for i, stem in enumerate(STARTS_FIRST)}
    waiting = sorted(runs, key=lambda r: first.get(r.path.stem, len(first)))  # stable sort
    running = {}
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))  # threads wait on kernels: no GIL cost
    try:
        while waiting or running:
            while waiting and len(running) < max(1, jobs) and not any(
                    r.status == "failed" for r in runs):
                run = waiting.pop(0)
                print(f"[{runs.index(run) + 1}/{len(runs)}] {relative(run.path)} ...", flush=True)
                running[pool.submit(_run_one, run, out, config.quick, update, timeout)] = run
            if not running:
                break
            try:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                for run in running.values():
                    run.status, run.error = "interrupted", "interrupted while it executed"
                raise
            for future in done:
                run = running.pop(future)
                try:
                    future.result()
                except KeyboardInterrupt:
                    for r in [run, *running.values()]:
                        r.status, r.error = "interrupted", "interrupted while it executed"
                    raise
    finally:  # on Ctrl-C too: the index links what is done and names what is missing
        pool.shutdown(wait=False, cancel_futures=True)
        write_index(out, runs, config)
    return runs


def _run_one(run: NotebookRun, out: Path, quick: bool, update: bool, timeout: int) -> None:
    """Execute one notebook, save its page (also when it fails), record how it went."""
    start = time.perf_counter()
    try:
        nb = execute(run.path, quick, timeout)
    except NotebookFailed as e:
        run.status, run.error = "failed", str(e)
        run.seconds = time.perf_counter() - start
        _save(e.nb, run, out)
        print(e.detail, file=sys.stderr)
        print(f"FAILED {e}", file=sys.stderr, flush=True)
        return
    run.seconds = time.perf_counter() - start
    _save(nb, run, out)
    if update:
        write_text_atomic(run.path, nbformat.writes(strip_volatile(nb, run.path.stem)))
    run.status = "ok"
    note = ", outputs written back" if update else ""
    print(f"      {run.path.name} ok in {run.seconds:.1f} s -> {relative(out / run.page)}{note}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (1 when a notebook failed)."""
    parser = argparse.ArgumentParser(
        prog="python -m fmnist_helpers.report", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="quick mode (FMNIST_QUICK=1 for the kernels); implied by "
                             "FMNIST_QUICK=1 in the environment")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: report/, or report-quick/ with --quick)")
    parser.add_argument("--update-notebooks", action="store_true",
                        help="write the executed outputs back into the notebooks")
    parser.add_argument("--only", nargs="+", metavar="PREFIX",
                        help="execute only the notebooks whose names start so (e.g. 00 08)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS_DIR,
                        help="folder of the notebooks (default: notebooks/)")
    parser.add_argument("--no-train", action="store_true",
                        help="skip the training step: each notebook trains what it misses")
    parser.add_argument("--jobs", type=int, default=None,
                        help="notebooks executed at once (default: 2 on a machine with 2 cores "
                             "or more, else 1); each runs in its own kernel")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT,
                        help=f"seconds one cell may run (default {CELL_TIMEOUT})")
    args = parser.parse_args(argv)
    quick = args.quick or settings().quick
    jobs = args.jobs if args.jobs is not None else min(2, os.cpu_count() or 1)
    if jobs < 1:
        parser.error(f"--jobs must be 1 or more, got {jobs}")
    if quick and args.update_notebooks and args.notebooks.resolve() == NOTEBOOKS_DIR:
        parser.error("--update-notebooks writes the committed outputs, which come from the "
                     "full settings: run it without --quick (and with FMNIST_QUICK unset).")
    os.environ["FMNIST_QUICK"] = "1" if quick else "0"  # this process reads the same cache
    config = settings(quick=quick)
    out = args.out or ROOT / ("report-quick" if quick else "report")
    notebooks = find_notebooks(args.notebooks, args.only)
    mode = "quick mode (FMNIST_QUICK=1)" if quick else "full settings"
    print(f"Executing {len(notebooks)} notebooks at {mode} into {relative(out)}/")
    start = time.perf_counter()
    try:
        if not args.no_train:
            try:
                train_everything(config)
            except KeyboardInterrupt:
                write_index(out, notebook_runs(notebooks), config)
                raise
        runs = run_report(out, config, notebooks, args.update_notebooks, args.timeout, jobs)
    except KeyboardInterrupt:
        print(f"\nreport: interrupted. Finished pages are in {relative(out)}/ and the index "
              "says which are missing; finished runs are cached, so running the same command "
              "again resumes.", file=sys.stderr)
        return 130
    failed = [r for r in runs if r.status == "failed"]
    done = sum(r.status == "ok" for r in runs)
    print(f"{done} of {len(runs)} notebooks executed in {time.perf_counter() - start:.0f} s; "
          f"open {relative(out / 'index.html')}")
    if failed:
        print(f"report: stopped at {failed[0].error}\nThe notebooks executed before it are "
              f"saved in {relative(out)}/.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
