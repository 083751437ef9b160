"""The explorer page: depth, width and dropout over the grid's real runs, as one self-contained
HTML file (plotly and its JavaScript inlined: it opens from disk with no network).

:func:`explorer_figure` draws the grid's runs (passed in: nothing here trains or reads the
cache); :func:`explorer_html` is the figure with its controls' script, :func:`write_explorer`
the page, :func:`show_explorer` the same inline in a notebook, :func:`index_section` the report
index's paragraph. The page keeps its sliders' setting in the URL fragment, in the settings
string's keys (:mod:`fmnist_helpers.share`): ``explorer.html#depth=8&width=10&dropout=0``
opens at that setting, and moving a slider rewrites the fragment (``history.replaceState``).
The grid, its loaders and :func:`lookup` are :mod:`fmnist_helpers.grid`'s, and importable from
here too (the notebooks call ``explorer.grid_results()``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .grid import (
    DIMS,
    GRID,
    GRID_FIELDS,
    QUICK_GRID,
    Grid,
    Point,
    cached_grid_results,
    grid_collapses,
    grid_experiment,
    grid_experiments,
    grid_for,
    grid_results,
    grid_runs,
    grid_table,
    lookup,
    points_of,
    value_key,
)
from .render import write_text_atomic
from .results import Result
from .share import EXPLORER_KEYS, KEYS
from .study import PAPER, STUDY
from .style import TEST_STYLE, TRAIN_STYLE

__all__ = [
    "explorer_figure", "explorer_html", "write_explorer", "show_explorer", "index_section",
    "DIV_ID", "PAGE", "SCRIPT",
    # the grid's, from fmnist_helpers.grid
    "DIMS", "GRID", "GRID_FIELDS", "QUICK_GRID", "Grid", "Point", "cached_grid_results",
    "grid_collapses", "grid_experiment", "grid_experiments", "grid_for", "grid_results",
    "grid_runs", "grid_table", "lookup", "points_of",
]

LABELS = {"depth": "depth (linear layers)", "width": "width (units per hidden layer)",
          "dropout": "dropout", "batch_norm": "batch norm"}
COLORS = {"train": TRAIN_STYLE["color"], "test": TEST_STYLE["color"]}  # the report's style
BANDS = {"train": "rgba(1,115,178,0.2)", "test": "rgba(222,143,5,0.2)"}
DIV_ID = "fmnist-explorer"

# Plotly alone cannot combine three controls: a slider step's action is fixed when the figure
# is made, so the depth slider cannot know where the width slider stands. The steps therefore
# do nothing themselves ("skip"); this listener reads every slider and shows the one point.
# Clicking a cell of a heat map moves the sliders there. On the page (not in a notebook, whose
# URL is Jupyter's) the setting lives in the URL fragment: read on load and when it changes,
# rewritten after every move; a key the page has no slider for is ignored with a warning.
SCRIPT = """
(function () {
  var gd = document.getElementById('{plot_id}');
  var m = gd.layout.meta.explorer;
  var useFragment = {fragment};
  function sliderOf(dim) {
    return (gd.layout.sliders || []).filter(function (t) { return t.name === dim; })[0];
  }
  function chosen() {
    return m.dims.map(function (dim) {
      var s = sliderOf(dim);
      return s ? s.steps[s.active || 0].value : m.values[dim][0];
    }).join('|');
  }
  function fragment() {
    return m.dims.filter(sliderOf).map(function (dim) {
      var s = sliderOf(dim);
      return m.keys[dim] + '=' + s.steps[s.active || 0].value;
    }).join('&');
  }
  function writeFragment() {
    if (!useFragment) return;
    var hash = '#' + fragment();
    if (window.location.hash === hash) return;
    try { window.history.replaceState(null, '', hash); }
    catch (e) { console.warn('explorer: cannot write the setting into the link: ' + e); }
  }
  function readFragment() {
    var text = decodeURIComponent(window.location.hash.replace(/^#/, ''));
    var update = {}, sliders = gd.layout.sliders || [];
    text.split('&').filter(Boolean).forEach(function (part) {
      var key = part.split('=')[0], value = part.slice(key.length + 1);
      var dim = m.dims.filter(function (d) { return m.keys[d] === key; })[0];
      if (!dim) {
        console.warn('explorer: "' + key + '" in the link is ' + (m.known.indexOf(key) >= 0
          ? 'a playground setting; this page holds only the study recipe runs' : 'not a setting')
          + ': ignored');
        return;
      }
      var want = dim === 'dropout' ? String(parseFloat(value))
        : dim === 'batch_norm' ? value : String(parseInt(value, 10));
      var s = sliderOf(dim), i = sliders.indexOf(s);
      var j = s ? s.steps.map(function (t) { return t.value; }).indexOf(want) : -1;
      if (j < 0) {
        if (!(m.values[dim].length === 1 && m.values[dim][0] === want))
          console.warn('explorer: ' + key + '=' + value + ' is not on the grid (' + key
                       + ': ' + m.values[dim].join(', ') + '): ignored');
        return;
      }
      update['sliders[' + i + '].active'] = j;
    });
    return Object.keys(update).length ? Plotly.relayout(gd, update).then(show) : null;
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
    }).then(writeFragment);
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
  if (useFragment) {
    readFragment();
    window.addEventListener('hashchange', readFragment);
  }
})();
"""



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
    over = " (mean of the seeds)" if _several_seeds(points) else ""  # one seed: its own curve
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
                    name=f"{split}{over}", legendgroup=split,
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


def _several_seeds(points: dict[tuple, Point]) -> bool:
    """Whether any setting has more than one seed (a mean to speak of)."""
    return any(len(point.runs) > 1 for point in points.values())


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
            meta={"heatmap": value_key("dropout", p)}, name=f"dropout {p:g}",
            hovertemplate="depth %{y}, width %{x}: test accuracy %{z:.3f}"
                          + (" (mean of the seeds that did not collapse)"
                             if _several_seeds(points) else "")
                          + "<br>%{customdata}<br>click to show its curves<extra></extra>"),
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
        steps = [{"label": value_key(dim, v), "value": value_key(dim, v), "method": "skip",
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
        meta={"explorer": {"dims": list(DIMS), "keys": EXPLORER_KEYS, "known": list(KEYS),
                           "values": {d: [value_key(d, v) for v in values[d]] for d in DIMS},
                           "points": table, "quick": quick}})


def _all_settings(values: dict[str, list]) -> list[tuple]:
    return [(d, w, p, b) for d in values["depth"] for w in values["width"]
            for p in values["dropout"] for b in values["batch_norm"]]



# ---------------------------------------------------------------------------------------------
# The page, the notebook, the report's index
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
learning rate 0.1, batches of 32, {epochs} epochs), {seeds} each: {runs} runs. Move the
sliders (or click a cell of a heat map) to show one setting (the page's address follows, so a
link opens the same setting): its loss and accuracy after each
epoch, train in blue and test in orange (with several seeds, the line their mean and the
shaded band the range between them), and its final numbers in the heading; the loss axis is
scaled to the setting shown. A seed that collapsed to chance is reported apart, as in the
report: it is named in the heading and left out of the means (heat maps, heading and table),
unless every seed of the setting collapsed. Train loss is
averaged while the epoch trains; train accuracy is measured after it. The heat maps give the
final test accuracy of every setting, the study's own models named on them.</p>
{figure}
<p class="muted">Drawn with plotly; everything is in this one file and works offline.</p>
</body></html>
"""


def explorer_html(results: Sequence[Result], div_id: str = DIV_ID,
                  fragment: bool = False) -> str:
    """The explorer as an HTML fragment: plotly.js inlined, the figure, its script;
    ``fragment``: keep the setting in the page's URL fragment (the page's, not a notebook's)."""
    import plotly.io as pio

    script = SCRIPT.replace("{fragment}", "true" if fragment else "false")
    return pio.to_html(explorer_figure(results), include_plotlyjs=True, full_html=False,
                       post_script=script, div_id=div_id, default_height="980px",
                       config={"displaylogo": False, "responsive": True})


def explorer_page(results: Sequence[Result], back_link: str | None = None) -> str:
    """The explorer as ONE self-contained HTML page (no network needed).

    ``back_link``: a page to link back to at the top (the report's ``index.html``).
    """
    import html

    points = points_of(results)
    runs = [r for p in points.values() for r in p.runs]
    nav = (f'<nav><a href="{html.escape(back_link)}">&larr; all sections of the report</a>'
           "</nav>\n" if back_link else "")
    quick = runs[0].quick
    return PAGE.format(
        nav=nav, figure=explorer_html(results, fragment=True),
        data="a quick-mode subset of the real Fashion-MNIST (numbers not comparable to the "
             "study's)" if quick else "the full Fashion-MNIST (60,000 training images)",
        epochs=max(r.epochs_trained for r in runs),
        seeds=_seeds(runs), runs=len(runs))


def write_explorer(path, results: Sequence[Result], back_link: str | None = None):
    """Write :func:`explorer_page` to ``path`` (atomically); return the path."""
    return write_text_atomic(path, explorer_page(results, back_link))


def show_explorer(results: Sequence[Result]):
    """The explorer inline in a notebook (JupyterLab, the exported HTML): plotly.js is inlined,
    so it works offline. ``results``: the grid's runs (``grid_results()`` loads them, training
    the missing ones)."""
    import uuid

    from IPython.display import HTML

    return HTML(explorer_html(results, div_id=f"{DIV_ID}-{uuid.uuid4().hex[:8]}"))


def _seeds(runs: list[Result]) -> str:
    """"1 seed", "2 seeds": the seeds a grid's settings were trained with."""
    n = len({r.seed for r in runs})
    return f"{n} seed" + "s" * (n != 1)


def index_section(results: Sequence[Result], page: str = "explorer.html") -> str:
    """The report index's paragraph on the explorer: a link to ``page`` with what it spans, or,
    without runs, what fills it. Writes nothing (the report writes the page beside it)."""
    if not results:
        return ('<p class="muted">The explorer needs the grid\'s runs: none is in the results '
                "cache yet (run the report without --no-train, or notebook 10).</p>")
    points = points_of(results)
    return (f'<p><a href="{page}">The explorer</a>: sliders for depth, width and '
            f"dropout over {len(points)} settings of the study's recipe, "
            f"{len(results)} runs ({_seeds(results)} each); their loss and accuracy "
            "curves, final numbers, and heat maps of test accuracy. One file, works "
            "offline.</p>")
