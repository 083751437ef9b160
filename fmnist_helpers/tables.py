"""Tables that read: short labels, percentages with one decimal, mean ± sd, nothing cut short.

Every table of the report is a :class:`Table`: a pandas DataFrame of finished strings, shown in
full (no cell is ever truncated, in the notebook, in its text form or in the exported HTML),
with a one-line caption. :func:`comparison_table` is the study's table with ours beside it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

import pandas as pd

from .results import Result
from .seeds import Seeds, epochs, group, mean_sd, test_acc, train_acc_running
from .study import PAPER, Experiment

MAX_COLUMNS = 8


class Table:
    """A finished table: strings in every cell, a caption, shown whole in every renderer."""

    def __init__(self, frame: pd.DataFrame, caption: str = "", index: bool = False):
        if frame.shape[1] > MAX_COLUMNS:
            raise ValueError(f"a table of {frame.shape[1]} columns does not read; split it "
                             f"(at most {MAX_COLUMNS}): {list(frame.columns)}")
        self.frame, self.caption, self.index = frame, caption, index

    def _repr_html_(self) -> str:
        body = self.frame.to_html(index=self.index, border=0, escape=True,
                                  classes="fmnist-table", na_rep="-")
        caption = (f"<p style='font-size:90%;margin-top:0.3em'><i>{html.escape(self.caption)}"
                   "</i></p>" if self.caption else "")
        return f"<div style='overflow-x:auto'>{body}{caption}</div>"

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", None, "display.width", 10_000,
                               "display.max_columns", None, "display.max_rows", None):
            text = self.frame.to_string(index=self.index, na_rep="-")
        return text + (f"\n{self.caption}" if self.caption else "")

    def to_html(self) -> str:
        return self._repr_html_()


def check_same_mode(results: Sequence[Result]) -> bool:
    """True for quick-mode results; an error when quick and full runs are mixed."""
    modes = {r.quick for r in results}
    if len(modes) > 1:
        quick = sorted(f"{r.experiment.name} (seed {r.seed})" for r in results if r.quick)
        raise ValueError(
            "the results mix quick-mode and full runs, which are not comparable; quick ones: "
            f"{', '.join(quick)}. Load them all with the same FMNIST_QUICK setting."
        )
    return modes == {True}


def epochs_text(s: Seeds) -> str:
    """Epochs trained: "10" when every seed ran the same, else "median (min-max)"."""
    e = s.values(epochs)
    if e.min() == e.max():
        return f"{e[0]:.0f}"
    return f"{float(pd.Series(e).median()):g} ({e.min():.0f}-{e.max():.0f})"


def paper_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def comparison_rows(results: Iterable[Result]) -> list[tuple[Seeds, dict]]:
    """Each experiment's row of the comparison table, best mean test accuracy first."""
    results = list(results)
    if not results:
        raise ValueError("no results to tabulate: pass at least one Result")
    check_same_mode(results)
    rows = []
    for name, s in group(results).items():
        paper = PAPER.get(name)
        rows.append((s, {
            "model": name,
            "train % (running)": mean_sd(s.summary(train_acc_running)),
            "test %": mean_sd(s.summary(test_acc)),
            "epochs": epochs_text(s),
            "parameters": f"{s.runs[0].n_params:,}",
            "study train %": paper_pct(paper and paper.train_acc),
            "study test %": paper_pct(paper and paper.test_acc),
            "study epochs": "-" if paper is None else str(paper.epochs),
        }))
    rows.sort(key=lambda row: -row[0].summary(test_acc).mean)
    if any(recipe_text(s.runs[0].experiment) != "study's" for s, _ in rows):
        for s, row in rows:  # the recipe, only where some model leaves the study's
            row["recipe"] = recipe_text(s.runs[0].experiment)
    return rows


def recipe_text(experiment: Experiment) -> str:
    """The activation, optimizer, batch size and training-set size where not the study's:
    "tanh, adam, batches of 64, 1,000 images", or "study's"."""
    parts = [experiment.activation if experiment.activation != "relu" else "",
             experiment.optimizer if experiment.optimizer != "sgd" else "",
             f"batches of {experiment.batch_size}" if experiment.batch_size != 32 else "",
             f"{experiment.train_size:,} images" if experiment.train_size is not None else ""]
    return ", ".join(p for p in parts if p) or "study's"


def comparison_table(results: Iterable[Result]) -> Table:
    """The study's table with ours beside it: one row per model, best test accuracy first.

    Ours are mean ± sd over the seeds (in percent), the study's its single run. Collapsed seeds
    are left out of the mean and counted in the cell.
    """
    results = list(results)
    rows = comparison_rows(results)
    n = sorted({len(s) for s, _ in rows})
    seeds = f"{n[0]} seeds" if len(n) == 1 else f"{n[0]}-{n[-1]} seeds"
    quick = " Quick mode: not comparable with the study." if check_same_mode(results) else ""
    return Table(pd.DataFrame([row for _, row in rows]),
                 f"Ours: mean ± sd over {seeds} per model, sorted by test accuracy; the "
                 f"study's: its single run. Train % (running) is the study's measure, the mean "
                 f"of per-batch accuracies during the last epoch.{quick}")
