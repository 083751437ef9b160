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
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import html
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import default

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class WidgetFallbackPreprocessor(Preprocessor):
    """Show every widget by its static copy: the page needs no widget manager and no network.

    The playground's outputs carry their own static copy (``text/html``: settings, curves,
    runs table); any other widget is shown by its ``text/plain`` form. The saved widget state
    is dropped from the exported copy of the notebook.
    """

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        nb.metadata.pop("widgets", None)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if data.pop(WIDGET_VIEW, None) is not None and not data:
                data["text/plain"] = "[a widget: run the notebook to use it]"
        return cell, resources

__all__ = ["WidgetFallbackPreprocessor", "main", "run_report", "export_html", "strip_volatile"]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
ADDRESS = re.compile(r" at 0x[0-9a-f]+>")
CELL_TIMEOUT = 4 * 3600  # seconds; a cell may train a missing experiment at full settings

# The lab template, minus the scripts it would fetch from a CDN (require.js, MathJax):
# the pages must open offline. The notebooks write no LaTeX, and widgets are static HTML.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block body_header -%}
{{ super() }}
<nav style="padding:8px 16px;font-family:sans-serif"><a href="index.html">&larr; all sections
of the report</a></nav>
{%- endblock body_header -%}
"""


class NotebookFailed(RuntimeError):
    """A notebook stopped with an error; the message names the notebook and the cell."""


@dataclass
class NotebookRun:
    """How one notebook went: ``status`` is "ok", "failed", "interrupted" or "not run"."""

    path: Path
    title: str
    status: str = "not run"
    seconds: float = 0.0
    error: str = ""

    @property
    def page(self) -> str:
        return self.path.stem + ".html"


class ThisPythonKernelSpecs(KernelSpecManager):
    """Resolve every kernel name to ipykernel on this very interpreter (the venv's python), so
    the notebooks import the same ``fmnist_helpers`` and torch as the report, whatever other
    ``python3`` kernels the user has installed."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            # the kernel's own log: errors only (not its note that local TCP is unencrypted)
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                  "--log-level=ERROR"],
            display_name="Python 3 (ipykernel)", language="python", resource_dir=str(ROOT),
        )


class ThisPythonKernelManager(AsyncKernelManager):
    """A kernel manager that starts :class:`ThisPythonKernelSpecs` kernels.

    Asynchronous, as nbclient expects: with a blocking one, waiting for a cell's output would
    block nbclient's check that the kernel is still alive, and a dead kernel would hang the
    report until the cell's timeout.
    """

    @default("kernel_spec_manager")
    def _specs(self) -> KernelSpecManager:
        return ThisPythonKernelSpecs(parent=self)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the ``with`` block (kernels started inside inherit them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def relative(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (for messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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


# ---------------------------------------------------------------------------------------------
# Volatile metadata
# ---------------------------------------------------------------------------------------------

def strip_volatile(nb: NotebookNode, key: str = "") -> NotebookNode:
    """A copy of ``nb`` without what changes on every run: execution timestamps, the kernel's
    Python version, memory addresses in plain-text reprs, random widget model ids (renumbered
    from ``key`` in order of appearance). Execution counts and outputs stay."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for name in ("execution", "ExecuteTime"):
            cell.metadata.pop(name, None)
        for output in cell.get("outputs", []):
            plain = output.get("data", {}).get("text/plain")
            if isinstance(plain, str):  # "<... Styler at 0x7f82788d8910>": an address
                output.data["text/plain"] = ADDRESS.sub(" at 0x...>", plain)
    nb.metadata.get("language_info", {}).pop("version", None)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state")
    if not state:
        return nb
    ids = {old: hashlib.sha256(f"{key}:{i}".encode()).hexdigest()[:32]
           for i, old in enumerate(state)}
    text = json.dumps(nb)
    for old, new in ids.items():
        text = text.replace(old, new)
    return nbformat.from_dict(json.loads(text))


# ---------------------------------------------------------------------------------------------
# Executing and exporting
# ---------------------------------------------------------------------------------------------

def execute(path: Path, quick: bool, timeout: int = CELL_TIMEOUT) -> NotebookNode:
    """Run one notebook in a fresh kernel; return it executed.

    On an error the partly executed notebook (outputs so far, the error included) is attached
    to the :class:`NotebookFailed` as ``.nb``.
    """
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    bar = tqdm(total=n_code, desc=f"  {path.name}", unit="cell", leave=False, file=sys.stderr,
               disable=None)  # a bar on a terminal, silence in a log
    current: dict = {"index": None}

    def on_start(cell, cell_index, **_):
        current["index"] = cell_index

    def on_done(cell, cell_index, **_):
        bar.update(1)

    client = NotebookClient(
        nb, kernel_name="python3", kernel_manager_class=ThisPythonKernelManager,
        timeout=timeout, store_widget_state=True, record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=on_start, on_cell_executed=on_done,
    )
    try:
        with environment(FMNIST_QUICK="1" if quick else "0"):
            client.execute()
    except Exception as e:
        client.set_widgets_metadata()
        index = current["index"]
        if isinstance(e, CellExecutionError):
            what = f"{e.ename}: {e.evalue}"
        else:
            what = f"{type(e).__name__}: {e}".strip()
        if index is None:
            where = "starting the kernel"
        else:
            count = nb.cells[index].get("execution_count")
            where = f"cell {index + 1}" + (f" (In [{count}])" if count else "")
        failure = NotebookFailed(f"{relative(path)}, {where}: {what}")
        failure.nb = nb
        failure.detail = str(e)
        raise failure from e
    finally:
        bar.close()
    return nb


def export_html(nb: NotebookNode, dest: Path, title: str = "") -> Path:
    """Write ``nb`` as one self-contained HTML page: images embedded, widgets by their copies."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="fmnist_page.html.j2",
                            extra_loaders=[DictLoader({"fmnist_page.html.j2": PAGE_TEMPLATE})],
                            embed_images=True)
    exporter.register_preprocessor(WidgetFallbackPreprocessor, enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or
                                                                        dest.stem}})
    # links between the notebooks ("Next: 02_width.ipynb") lead to the pages instead
    body = re.sub(r'href="(\d\d_[^"/]+)\.ipynb"', r'href="\1.html"', body)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _write(dest, body)
    return dest


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _save(nb, run: NotebookRun, out: Path) -> None:
    clean = strip_volatile(nb, run.path.stem)
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    _write(out / "notebooks" / run.path.name, nbformat.writes(clean))
    export_html(clean, out / run.page, run.title)


# ---------------------------------------------------------------------------------------------
# The index page
# ---------------------------------------------------------------------------------------------

INDEX_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em;
       line-height: 1.5; color: #1d1d1f; background: #fff; }
a { color: #0b62c4; }
table { border-collapse: collapse; font-size: 0.86em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child, td:nth-child(2) { text-align: left; }
.failed { color: #c62828; font-weight: bold; }
.muted { color: #666; }
img { max-width: 100%; background: #fff; }
@media (prefers-color-scheme: dark) {
  body { color: #e6e6e6; background: #1e1e1e; }
  a { color: #7ab7ff; }
  th { background: #2d2d2d; }
  th, td { border-color: #555; }
  .muted { color: #aaa; }
}
"""


def _figure_tag(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def summary_html(quick: bool) -> tuple[str, str]:
    """The findings (verdicts and lessons) and the comparison table with its chart, as HTML.

    Computed from the results cache only; nothing is trained here.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from . import findings, plots, tables
    from .results import cached_results
    from .study import CONTROLS, READINGS, STUDY

    results = cached_results([*STUDY, *CONTROLS], quick=quick)
    readings = cached_results(list(READINGS), quick=quick)
    if not results:
        empty = ('<p class="muted">No finished run in the results cache yet: execute the '
                 "results notebook (08) to fill it.</p>")
        return empty, ""
    found = (markdown2html_mistune(findings.headline(results, readings))
             + findings.verdict_table(results, readings).to_html()
             + "<h3>What the reproduction learned</h3>"
             + markdown2html_mistune(findings.lessons(results, readings)))
    fig = plots.plot_comparison(results)
    chart = _figure_tag(fig, "test accuracy of every seed per model, and the study's")
    plt.close(fig)
    return found, tables.comparison_table(results).to_html() + chart


def write_index(out: Path, runs: list[NotebookRun], quick: bool) -> Path:
    """``OUT/index.html``: the mode, links to every section, the summary table."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from .discuss import mode_line
    from .explorer import cached_grid_results, index_section, write_explorer

    found, table = summary_html(quick)
    grid = cached_grid_results(quick)  # the cache only: nothing is trained here
    if grid:
        write_explorer(out / "explorer.html", grid, back_link="index.html")
    items = []
    for run in runs:
        name = html.escape(run.title or run.path.stem)
        if run.status == "ok":
            items.append(f'<li><a href="{run.page}">{name}</a> '
                         f'<span class="muted">({run.seconds:.0f} s; '
                         f'<a href="notebooks/{run.path.name}">notebook</a>)</span></li>')
        elif run.status == "failed":
            link = f'<a href="{run.page}">{name}</a>' if (out / run.page).exists() else name
            items.append(f'<li>{link} <span class="failed">failed: '
                         f"{html.escape(run.error)}</span></li>")
        else:
            why = "interrupted" if run.status == "interrupted" else "not run"
            items.append(f'<li>{name} <span class="failed">missing ({why})</span></li>')
    missing = [r for r in runs if r.status != "ok"]
    note = ""
    if missing:
        names = ", ".join(html.escape(r.path.name) for r in missing)
        note = (f'<p class="failed">{len(missing)} of {len(runs)} pages are missing or '
                f"incomplete: {names}. Run the report again to finish them: every finished "
                "run loads from the cache.</p>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MLPs on Fashion-MNIST: the report</title><style>{INDEX_CSS}</style></head>
<body>
<h1>Multi-layer perceptrons on Fashion-MNIST</h1>
<p>A reproduction of a student study of small MLPs on Fashion-MNIST, one section per page.
Every number on these pages was computed from our runs; the study's numbers are labelled as
the study's.</p>
{markdown2html_mistune(mode_line(quick))}
<h2>Findings</h2>
{found}
<h2>Sections</h2>
{note}<ol start="0">{"".join(items)}</ol>
<h2>Explorer</h2>
{index_section(grid)}
<h2>All experiments</h2>
{table}
<p class="muted">Written by <code>python -m fmnist_helpers.report{" --quick" * quick}</code>
on {time.strftime("%Y-%m-%d %H:%M")}.</p>
</body></html>
"""
    dest = out / "index.html"
    _write(dest, page)
    return dest


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def train_everything(quick: bool) -> None:
    """Train (or load) every run the notebooks read before any notebook runs: the study's
    models, readings and controls, the depth section's learning rate x depth map, and the
    explorer's grid, in one plan (:func:`planner.plan`).

    One plan, so the worker that finishes first goes on with the grid while the other ends the
    study, and the grid's points that share a shape with the study's models join their stacks.
    """
    from .diagnostics import map_runs
    from .explorer import grid_runs
    from .planner import train_runs
    from .settings import settings
    from .study import CONTROLS, READINGS, STUDY

    config = settings(quick)
    study = [(name, seed) for name in [*STUDY, *READINGS, *CONTROLS] for seed in config.seeds]
    start = time.perf_counter()
    depth_map = map_runs(quick)
    results = train_runs(study + depth_map + grid_runs(quick), config)
    print(f"{len(results)} runs ready (the study's {len(study)}, the depth map's "
          f"{len(depth_map)}, the explorer's grid {len(results) - len(study) - len(depth_map)}) "
          f"in {time.perf_counter() - start:.0f} s", flush=True)


STARTS_FIRST = ("09_playground",)  # trains a network live (30 s of the notebooks' 160 s)


def run_report(
    out: Path, quick: bool, notebooks: list[Path], update: bool = False,
    timeout: int = CELL_TIMEOUT, jobs: int = 1,
) -> list[NotebookRun]:
    """Execute ``notebooks``, ``jobs`` at a time, saving each as it ends; after a failure,
    start no more (those running finish).

    They start in the order given, except the ones in :data:`STARTS_FIRST`: a notebook that
    trains live takes twice as long as any other and, started last, ran alone at the end.
    """
    out.mkdir(parents=True, exist_ok=True)
    runs = notebook_runs(notebooks)
    waiting = sorted(runs, key=lambda r: r.path.stem not in STARTS_FIRST)  # stable sort
    running = {}
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))  # threads wait on kernels: no GIL cost
    try:
        while waiting or running:
            while waiting and len(running) < max(1, jobs) and not any(
                    r.status == "failed" for r in runs):
                run = waiting.pop(0)
                print(f"[{runs.index(run) + 1}/{len(runs)}] {relative(run.path)} ...", flush=True)
                running[pool.submit(_run_one, run, out, quick, update, timeout)] = run
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
        write_index(out, runs, quick)
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
        _write(run.path, nbformat.writes(strip_volatile(nb, run.path.stem)))
    run.status = "ok"
    note = ", outputs written back" if update else ""
    print(f"      {run.path.name} ok in {run.seconds:.1f} s -> {relative(out / run.page)}{note}",
          flush=True)


def notebook_runs(notebooks: list[Path]) -> list[NotebookRun]:
    """One not-yet-run :class:`NotebookRun` per notebook, titled from its first heading."""
    return [NotebookRun(p, notebook_title(nbformat.read(p, as_version=4))) for p in notebooks]


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (1 when a notebook failed)."""
    from .settings import settings

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
    out = args.out or ROOT / ("report-quick" if quick else "report")
    notebooks = find_notebooks(args.notebooks, args.only)
    mode = "quick mode (FMNIST_QUICK=1)" if quick else "full settings"
    print(f"Executing {len(notebooks)} notebooks at {mode} into {relative(out)}/")
    start = time.perf_counter()
    try:
        if not args.no_train:
            try:
                train_everything(quick)
            except KeyboardInterrupt:
                write_index(out, notebook_runs(notebooks), quick)
                raise
        runs = run_report(out, quick, notebooks, args.update_notebooks, args.timeout, jobs)
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
