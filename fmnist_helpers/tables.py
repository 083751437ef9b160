"""The comparison table: every experiment's last epoch, beside the study's reported numbers.

:func:`comparison_table` takes a list of :class:`~fmnist_helpers.runs.Result` (one or
several seeds per experiment), averages the seeds of each experiment and sorts the rows by test
accuracy, as the study's table is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from .analysis import group_by_experiment, mean_interval
from .runs import Result
from .study import PAPER, PaperResult

# Our columns, then the study's, then the differences. "running" is the study's way of
# measuring train accuracy (mean of per-batch accuracies while the epoch trains).
OURS = {
    "model": "model",
    "seeds": "seeds",
    "train_acc_running": "train acc (running)",
    "train_acc": "train acc (end of epoch)",
    "test_acc": "test acc",
    "epochs": "epochs trained",
    "n_params": "parameters",
}
PAPER_COLUMNS = ("paper train acc", "paper test acc", "paper epochs")
DIFF_COLUMNS = ("train diff (running - paper)", "test diff (ours - paper)")
ACCURACY_COLUMNS = (
    OURS["train_acc_running"], OURS["train_acc"], OURS["test_acc"], "test acc sd",
    *PAPER_COLUMNS[:2],
)


def run_row(result: Result) -> dict:
    """One run's last-epoch numbers, keyed by the short column names of :data:`OURS`."""
    final = result.final
    return {
        "experiment": result.experiment.name, "model": result.experiment.title,
        "seed": result.seed, "quick": result.quick,
        "train_acc_running": final["train_acc_running"], "train_acc": final["train_acc"],
        "test_acc": final["test_acc"], "epochs": result.epochs_trained,
        "n_params": result.n_params,
    }


def _check_same_mode(results: Sequence[Result]) -> bool:
    modes = {r.quick for r in results}
    if len(modes) > 1:
        quick = sorted(f"{r.experiment.name} (seed {r.seed})" for r in results if r.quick)
        raise ValueError(
            "the results mix quick-mode and full runs, which are not comparable; quick ones: "
            f"{', '.join(quick)}. Load them all with the same FMNIST_QUICK setting."
        )
    return modes == {True}


def comparison_table(
    results: Iterable[Result], paper: dict[str, PaperResult] | None = None
) -> pd.DataFrame:
    """Every experiment in one row (mean over its seeds), best test accuracy first.

    Columns: the model's title, the number of seeds, train accuracy (the study's running
    measure and the exact one after the epoch), test accuracy, epochs trained, parameters and
    training time; with several seeds, the standard deviation of test accuracy; then the
    study's reported numbers (``paper ...``, empty for models it does not report) and the
    differences ours - paper. ``table.attrs["quick"]`` tells whether these are quick-mode runs.
    """
    results = list(results)
    if not results:
        raise ValueError("no results to tabulate: pass at least one Result")
    quick = _check_same_mode(results)
    paper = PAPER if paper is None else paper
    rows = []
    for name, runs in group_by_experiment(results).items():
        per_run = [run_row(r) for r in runs]
        row = {"experiment": name, OURS["model"]: runs[0].experiment.title,
               OURS["seeds"]: len(runs)}
        for key in ("train_acc_running", "train_acc", "test_acc", "epochs", "n_params"):
            row[OURS[key]] = sum(r[key] for r in per_run) / len(per_run)
        tests = [r["test_acc"] for r in per_run]
        row["test acc sd"] = mean_interval(tests)[1]
        ref = paper.get(name)
        row[PAPER_COLUMNS[0]] = ref.train_acc if ref else math.nan
        row[PAPER_COLUMNS[1]] = ref.test_acc if ref else math.nan
        row[PAPER_COLUMNS[2]] = ref.epochs if ref else math.nan
        row[DIFF_COLUMNS[0]] = row[OURS["train_acc_running"]] - row[PAPER_COLUMNS[0]]
        row[DIFF_COLUMNS[1]] = row[OURS["test_acc"]] - row[PAPER_COLUMNS[1]]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("experiment")
    table = table.sort_values(OURS["test_acc"], ascending=False, kind="stable")
    if table["test acc sd"].isna().all():
        table = table.drop(columns="test acc sd")
    if (table[OURS["seeds"]] == 1).all():
        table[OURS["epochs"]] = table[OURS["epochs"]].astype(int)
    table[OURS["n_params"]] = table[OURS["n_params"]].round().astype(int)
    table.attrs["quick"] = quick
    return table


def format_table(table: pd.DataFrame):
    """A pandas Styler for display: one row per model (the study's names as row labels),
    4-decimal accuracies, signed differences, "-" where the study has no number."""
    formats = {c: "{:.4f}" for c in ACCURACY_COLUMNS if c in table}
    formats |= {c: "{:+.4f}" for c in DIFF_COLUMNS if c in table}
    formats[OURS["n_params"]] = "{:,}"
    formats[PAPER_COLUMNS[2]] = "{:.0f}"
    if table[OURS["epochs"]].dtype.kind == "f":
        formats[OURS["epochs"]] = "{:.1f}"
    shown = table.reset_index(drop=True).set_index(OURS["model"])
    shown.index.name = None
    return (shown.style.format(formats, na_rep="-")
            .set_uuid("comparison")  # a fixed id: a rerun leaves the saved output unchanged
            .set_table_styles([{"selector": "th.row_heading", "props": "white-space: nowrap"}]))
