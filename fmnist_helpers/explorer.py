"""The explorer: depth, width and dropout over a grid of real runs, as one self-contained page.

The grid (:data:`GRID`) is trained by the project's engine through :func:`planner.train_runs`,
with the study's recipe (SGD, lr 0.1, batches of 32, 10 epochs) and two seeds per point. A grid
point that is one of the study's models (depth 3 width 10 is "shallow", width 50 "wide", ...)
*is* that experiment, so it shares the study's cached runs. :func:`write_explorer` writes one
HTML file with plotly and its JavaScript inlined: it opens from disk with no network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .planner import train_runs
from .results import Result, cached_results
from .settings import settings
from .study import CONTROLS, PAPER, READINGS, STUDY, Experiment
from .style import TEST_STYLE, TRAIN_STYLE


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


# Full settings: 36 points x 2 seeds, 10 epochs each; 5 points are experiments the sections
# train anyway (4 study models, a reading), so 62 runs are the grid's own (their cost on the
# 2-core machine: README, "The explorer"). Width 100 would about double it (one epoch of a
# stack of 6 at depth 8: 14 s against 8 s at width 50). Quick mode: 8 points on the quick
# subset.
GRID = Grid(depths=(2, 3, 4, 8), widths=(10, 25, 50), dropouts=(0.0, 0.2, 0.5))
QUICK_GRID = Grid(depths=(3, 8), widths=(10, 50), dropouts=(0.0, 0.2))


def grid_for(quick: bool | None = None) -> Grid:
    """The grid of full settings, or the small one of quick mode (default: ``FMNIST_QUICK``)."""
    return QUICK_GRID if settings(quick).quick else GRID


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


def grid_experiments(quick: bool | None = None) -> list[Experiment]:
    """The experiments of the grid in force (quick or full), one per point."""
    return [grid_experiment(*point) for point in grid_for(quick).points()]


def grid_runs(quick: bool | None = None) -> list[tuple[Experiment, int]]:
    """Every (experiment, seed) run of the grid in force."""
    grid = grid_for(quick)
    return [(e, s) for e in grid_experiments(quick) for s in grid.seeds]


def grid_results(quick: bool | None = None) -> list[Result]:
    """Every run of the grid: cached ones loaded, the missing ones trained (one plan)."""
    return train_runs(grid_runs(quick), settings(quick))


def cached_grid_results(quick: bool | None = None) -> list[Result]:
    """The grid's runs found in the cache; nothing is trained, missing runs are left out."""
    grid = grid_for(quick)
    return cached_results(grid_experiments(quick), grid.seeds, quick)


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
           quick: bool | None = None) -> list[Result] | None:
    """The cached runs (the grid's seeds) at one setting, or None; never trains.

    A setting has runs when it is a point of the grid in force or one of the study's models
    (its other knobs at the study's recipe). None when it is neither, or when none of its runs
    is in the cache yet. For the playground: an on-grid setting shows at once.
    """
    _check_point(depth, width, dropout, batch_norm)
    dropout = float(dropout)
    experiment = grid_experiment(depth, width, dropout, batch_norm)
    if (depth, width, dropout, batch_norm) not in grid_for(quick) \
            and experiment.name.startswith("grid_"):
        return None
    found = cached_results([experiment], grid_for(quick).seeds, quick)
    return found or None


# ---------------------------------------------------------------------------------------------
# The figure: curves of the chosen point above, heat maps of the whole grid below
# ---------------------------------------------------------------------------------------------

DIMS = ("depth", "width", "dropout", "batch_norm")
LABELS = {"depth": "depth (linear layers)", "width": "width (units per hidden layer)",
          "dropout": "dropout", "batch_norm": "batch norm"}
COLORS = {"train": TRAIN_STYLE["color"], "test": TEST_STYLE["color"]}  # the report's style
BANDS = {"train": "rgba(1,115,178,0.2)", "test": "rgba(222,143,5,0.2)"}
GRID_FIELDS = ("n_linear", "hidden", "dropout", "batch_norm", "epochs")
DIV_ID = "fmnist-explorer"

# Plotly alone cannot combine three controls: a slider step's action is fixed when the figure
# is made, so the depth slider cannot know where the width slider stands. The steps therefore
# do nothing themselves ("skip"); this listener reads every slider and shows the one point.
# Clicking a cell of a heat map moves the sliders there.
SCRIPT = """
(function () {
  var gd = document.getElementById('{plot_id}');
  var m = gd.layout.meta.explorer;
  function chosen() {
    var sliders = gd.layout.sliders || [];
    return m.dims.map(function (dim) {
      var s = sliders.filter(function (t) { return t.name === dim; })[0];
      return s ? s.steps[s.active || 0].value : m.values[dim][0];
    }).join('|');
  }
  function show() {
    var key = chosen(), idx = [], vis = [];
    gd.data.forEach(function (t, i) {
      if (t.meta && t.meta.point !== undefined) {
        var want = t.meta.point === key;
        if ((t.visible !== false) !== want) { idx.push(i); vis.push(want); }
      }
    });
    var done = idx.length ? Plotly.restyle(gd, {visible: vis}, idx) : Promise.resolve();
    return done.then(function () {
      return Plotly.relayout(gd, {'title.text': m.points[key].title,
                                  'yaxis.range': m.points[key].loss_range});
    });
  }
  gd.on('plotly_sliderchange', show);
  gd.on('plotly_click', function (ev) {
    var pt = ev.points && ev.points[0];
    if (!pt || !pt.data.meta || pt.data.meta.heatmap === undefined) return;
    var want = {depth: String(pt.y), width: String(pt.x), dropout: pt.data.meta.heatmap};
    var update = {};
    (gd.layout.sliders || []).forEach(function (s, i) {
      s.steps.forEach(function (step, j) {
        if (step.value === want[s.name]) update['sliders[' + i + '].active'] = j;
      });
    });
    Plotly.relayout(gd, update).then(show);
  });
})();
"""


def _value(dim: str, value) -> str:
    """A setting as the sliders and the point keys spell it."""
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
        return "|".join(_value(d, v) for d, v in zip(DIMS, self.setting, strict=True))

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
        epochs, mean, low, high = [], [], [], []
        for i in range(max(len(r.history) for r in self.runs)):  # epochs count from 1
            values = [r.history.rows[i][column] for r in self.runs if i < len(r.history)]
            values = [v for v in values if math.isfinite(v)]
            if values:
                epochs.append(i + 1)
                mean.append(sum(values) / len(values))
                low.append(min(values))
                high.append(max(values))
        return epochs, mean, low, high

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
        seeds = ", ".join(str(r.seed) for r in self.runs)
        spread = f"seeds {min(tests):.3f} to {max(tests):.3f}" if len(tests) > 1 else \
            "one seed"
        return (f"{head}<br>test accuracy <b>{test:.3f}</b> ({spread}) · train accuracy "
                f"{train:.3f} · {self.runs[0].n_params:,} parameters · seeds {seeds}, "
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


def _axis_values(points: dict[tuple, Point]) -> dict[str, list]:
    return {dim: sorted({s[i] for s in points}) for i, dim in enumerate(DIMS)}


def explorer_figure(results: Sequence[Result]):
    """The explorer as a plotly figure: one slider per knob, curves and numbers of the chosen
    point (mean of the seeds, shaded between the lowest and highest seed), and below a heat map
    of the final test accuracy over depth x width for each dropout rate, the study's models
    marked. The point shown first is the study's shallow network when it is on the grid.

    The controls need :data:`SCRIPT` beside the figure: use :func:`write_explorer` or
    :func:`show_explorer`, which add it.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    points = points_of(results)
    values = _axis_values(points)
    start = (3, 10, 0.0, False) if (3, 10, 0.0, False) in points else next(iter(points))
    drops = values["dropout"]
    n = len(drops)
    fig = make_subplots(
        rows=2, cols=2 * n, row_heights=[0.55, 0.45], vertical_spacing=0.14,
        horizontal_spacing=0.06,
        specs=[[{"colspan": n}] + [None] * (n - 1) + [{"colspan": n}] + [None] * (n - 1),
               [{"colspan": 2}, None] * n],
        subplot_titles=["Loss (cross-entropy)", "Accuracy",
                        *[f"Final test accuracy, dropout {p:g}" for p in drops]])
    for setting, point in points.items():
        shown = setting == start
        for col, metric in ((1, "loss"), (n + 1, "acc")):
            for split in ("train", "test"):
                column = f"{split}_{metric}"
                epochs, mean, low, high = point.curve(column)
                fig.add_trace(go.Scatter(
                    x=epochs + epochs[::-1], y=high + low[::-1], fill="toself", mode="lines",
                    fillcolor=BANDS[split], line={"width": 0, "color": BANDS[split]},
                    hoverinfo="skip",
                    showlegend=False, legendgroup=split, name=f"{split}: seed range",
                    meta={"point": point.key, "role": f"{column}_band"}, visible=shown),
                    row=1, col=col)
                fig.add_trace(go.Scatter(
                    x=epochs, y=mean, mode="lines+markers", line={"color": COLORS[split]},
                    name=f"{split} (mean of the seeds)", legendgroup=split,
                    showlegend=col == 1, meta={"point": point.key, "role": column},
                    hovertemplate=f"{split} {metric}, epoch %{{x}}: %{{y:.4f}}<extra></extra>",
                    visible=shown), row=1, col=col)
        if not point.batch_norm:
            fig.add_trace(go.Scatter(
                x=[str(point.width)], y=[str(point.depth)], mode="markers",
                marker={"symbol": "square-open", "size": 60, "color": "#ff4081",
                        "line": {"width": 4}},
                hoverinfo="skip", showlegend=False, name="chosen",
                meta={"point": point.key, "role": "chosen"}, visible=shown),
                row=2, col=2 * drops.index(point.dropout) + 1)
    _add_heatmaps(fig, points, values)
    _lay_out(fig, points, values, start)
    return fig


def _add_heatmaps(fig, points: dict[tuple, Point], values: dict[str, list]) -> None:
    """A heat map of final test accuracy (depth x width) per dropout rate, without batch norm;
    a cell that is one of the study's models carries its name (and the study's number on
    hover)."""
    import plotly.graph_objects as go

    for k, p in enumerate(values["dropout"]):
        z, text, notes = [], [], []
        for d in values["depth"]:
            z.append([]), text.append([]), notes.append([])
            for w in values["width"]:
                point = points.get((d, w, p, False))
                acc = point.mean("test_acc") if point else None
                name = point.runs[0].experiment.name if point else ""
                z[-1].append(acc)
                gone = len(point.collapsed) if point and len(point.kept) < len(point.runs) else 0
                text[-1].append(("" if acc is None else f"{acc:.3f}")
                                + (f"<br>({gone} collapsed)" if gone else "")
                                + (f"<br><b>{name}</b>" if name in STUDY else ""))
                notes[-1].append(_study_note(name) if name in STUDY else "")
        fig.add_trace(go.Heatmap(
            x=[str(w) for w in values["width"]], y=[str(d) for d in values["depth"]], z=z,
            text=text, customdata=notes, texttemplate="%{text}", coloraxis="coloraxis",
            meta={"heatmap": _value("dropout", p)}, name=f"dropout {p:g}",
            hovertemplate="depth %{y}, width %{x}: test accuracy %{z:.3f} (mean of the seeds "
                          "that did not collapse)"
                          "<br>%{customdata}<br>click to show its curves<extra></extra>"),
            row=2, col=2 * k + 1)


def _study_note(name: str) -> str:
    paper = PAPER.get(name)
    said = f"; the study reported {paper.test_acc:.3f} (one run)" if paper else ""
    return f"the study's <i>{name}</i> model{said}"


def _lay_out(fig, points: dict[tuple, Point], values: dict[str, list], start: tuple) -> None:
    """Axes, colour scale, sliders, title, and the table of every point for the script."""
    quick = next(iter(points.values())).runs[0].quick
    accs = [p.curve(f"{s}_acc") for p in points.values() for s in ("train", "test")]
    low = min((min(c[2]) for c in accs if c[2]), default=0.0)
    n = len(values["dropout"])
    fig.update_yaxes(range=points[start].loss_range(), row=1, col=1)
    fig.update_yaxes(range=[math.floor(low * 20) / 20, 1.0], row=1, col=n + 1)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(points) and max(
        r.epochs_trained for p in points.values() for r in p.runs) <= 12 else None, row=1)
    fig.update_xaxes(type="category", categoryorder="array",
                     categoryarray=[str(w) for w in values["width"]], title_text="width",
                     row=2)
    fig.update_yaxes(type="category", categoryorder="array",
                     categoryarray=[str(d) for d in values["depth"]], title_text="depth",
                     row=2)
    finals = [p.mean("test_acc") for p in points.values() if p.mean("test_acc") is not None]
    sliders = []
    dims = [d for d in DIMS if len(values[d]) > 1]
    for k, dim in enumerate(dims):
        steps = [{"label": _value(dim, v), "value": _value(dim, v), "method": "skip",
                  "args": []} for v in values[dim]]
        sliders.append({
            "name": dim, "active": values[dim].index(start[DIMS.index(dim)]),
            "steps": steps, "x": k / len(dims), "len": 1 / len(dims) - 0.03, "y": 1.0,
            "yanchor": "bottom", "pad": {"t": 0, "b": 30},
            "currentvalue": {"prefix": LABELS[dim] + ": ", "font": {"size": 14}}})
    table = {}
    mode = " · <i>quick mode: a small subset, 2 epochs</i>" if quick else ""
    for setting in _all_settings(values):
        point = points.get(setting)
        table[Point(*setting, []).key] = {
            "title": (point.title() if point else
                      f"<b>Depth {setting[0]}, width {setting[1]}, dropout {setting[2]:g}</b>"
                      "<br>no runs at this setting") + mode,
            "test_acc": point.mean("test_acc") if point else None,
            "train_acc": point.mean("train_acc") if point else None,
            "n_params": point.runs[0].n_params if point else None,
            "loss_range": point.loss_range() if point else [0.0, 2.5],
            "collapsed": [r.seed for r in point.collapsed] if point else [],
            "seeds": [r.seed for r in point.runs] if point else []}
    fig.update_layout(
        height=980, margin={"t": 200, "l": 60, "r": 30, "b": 60}, sliders=sliders,
        title={"text": table[points[start].key]["title"], "x": 0.01, "xanchor": "left",
               "y": 0.985, "yanchor": "top", "font": {"size": 15}},
        coloraxis={"colorscale": "Viridis", "cmin": min(finals, default=0),
                   "cmax": max(finals, default=1),
                   "colorbar": {"title": {"text": "test acc"}, "len": 0.4, "y": 0.2}},
        legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": 0.49},
        meta={"explorer": {"dims": list(DIMS),
                           "values": {d: [_value(d, v) for v in values[d]] for d in DIMS},
                           "points": table, "quick": quick}})


def _all_settings(values: dict[str, list]) -> list[tuple]:
    return [(d, w, p, b) for d in values["depth"] for w in values["width"]
            for p in values["dropout"] for b in values["batch_norm"]]


# ---------------------------------------------------------------------------------------------
# The page, the notebook, the table
# ---------------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Explorer: depth, width and dropout (MLPs on Fashion-MNIST)</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 1300px; margin: 1em auto;
padding: 0 1em; line-height: 1.45; color: #1d1d1f; background: #fff; }}
a {{ color: #0b62c4; }} .muted {{ color: #666; }}</style></head>
<body>
{nav}<h1>Explorer: depth, width and dropout</h1>
<p>Every setting of the grid was trained on {data} with the study's recipe (plain SGD,
learning rate 0.1, batches of 32, {epochs} epochs), {seeds} seeds each: {runs} runs. Move the
sliders (or click a cell of a heat map) to show one setting: its loss and accuracy after each
epoch, train in blue and test in orange, the line the mean of the seeds and the shaded band
the range between them, and its final numbers in the heading; the loss axis is scaled to the
setting shown. A seed that collapsed to chance is reported apart, as in the report: it is named
in the heading and left out of the means (heat maps, heading and table). Train loss is
averaged while the epoch trains; train accuracy is measured after it. The heat maps give the
final test accuracy of every setting, the study's own models named on them.</p>
{figure}
<p class="muted">Drawn with plotly; everything is in this one file and works offline.</p>
</body></html>
"""


def explorer_html(results: Sequence[Result], div_id: str = DIV_ID) -> str:
    """The explorer as an HTML fragment: plotly.js inlined, the figure, its script."""
    import plotly.io as pio

    return pio.to_html(explorer_figure(results), include_plotlyjs=True, full_html=False,
                       post_script=SCRIPT, div_id=div_id, default_height="980px",
                       config={"displaylogo": False, "responsive": True})


def write_explorer(path, results: Sequence[Result], back_link: str | None = None):
    """Write the explorer as ONE self-contained HTML file (no network needed); return its path.

    ``back_link``: a page to link back to at the top (the report's ``index.html``).
    """
    import html
    from pathlib import Path

    points = points_of(results)
    runs = [r for p in points.values() for r in p.runs]
    nav = (f'<nav><a href="{html.escape(back_link)}">&larr; all sections of the report</a>'
           "</nav>\n" if back_link else "")
    quick = runs[0].quick
    page = PAGE.format(
        nav=nav, figure=explorer_html(results),
        data="a quick-mode subset of the real Fashion-MNIST (numbers not comparable to the "
             "study's)" if quick else "the full Fashion-MNIST (60,000 training images)",
        epochs=max(r.epochs_trained for r in runs),
        seeds=len({r.seed for r in runs}), runs=len(runs))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def show_explorer(results: Sequence[Result] | None = None, quick: bool | None = None):
    """The explorer inline in a notebook (JupyterLab, the exported HTML): plotly.js is inlined,
    so it works offline. ``results`` default to the grid's runs, trained when missing."""
    import uuid

    from IPython.display import HTML

    results = grid_results(quick) if results is None else results
    return HTML(explorer_html(results, div_id=f"{DIV_ID}-{uuid.uuid4().hex[:8]}"))


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


def report_section(out, quick: bool) -> str:
    """Write ``out/explorer.html`` from the cached grid runs (nothing is trained) and return
    the report index's paragraph that links to it."""
    from pathlib import Path

    results = cached_grid_results(quick)
    if not results:
        return ('<p class="muted">The explorer needs the grid\'s runs: none is in the results '
                "cache yet (run the report without --no-train, or notebook 10).</p>")
    write_explorer(Path(out) / "explorer.html", results, back_link="index.html")
    grid = grid_for(quick)
    return (f'<p><a href="explorer.html">The explorer</a>: sliders for depth, width and '
            f"dropout over {len(points_of(results))} settings of the study's recipe, "
            f"{len(results)} runs ({len(grid.seeds)} seeds each); their loss and accuracy "
            "curves, final numbers, and heat maps of test accuracy. One file, works "
            "offline.</p>")
