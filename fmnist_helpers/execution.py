"""Executing one notebook in a fresh kernel on this very interpreter, and cleaning what it
leaves.

:func:`execute` runs a notebook with nbclient in a kernel of this Python (the venv's, whatever
other ``python3`` kernels are installed), ``FMNIST_QUICK`` set for it, and names the notebook
and the cell when one fails (:class:`NotebookFailed`, the partly executed notebook attached).
:func:`strip_volatile` drops what changes on every run (timestamps, addresses, widget ids), so
that the committed outputs change only when the numbers do. The command that runs every
notebook and writes the report is :mod:`fmnist_helpers.report`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode
from traitlets import default

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ROOT = Path(__file__).resolve().parent.parent
ADDRESS = re.compile(r" at 0x[0-9a-f]+>")
CELL_TIMEOUT = 4 * 3600  # seconds; a cell may train a missing experiment at full settings


class NotebookFailed(RuntimeError):
    """A notebook stopped with an error; the message names the notebook and the cell."""



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
