"""A sweep's explorer page: one self-contained HTML file, plotly inlined, works offline.

For a :class:`~fmnist_helpers.sweep.Sweep` and its runs, :func:`write_sweep_page` writes a page
with a slider per axis (the chosen setting's loss and accuracy curves over the seeds, and its
final numbers), a heat map of final test accuracy over any two axes the reader picks (the other
axes held at the sliders; a click on a cell moves the sliders there), and a parallel-coordinates
view of every setting coloured by test accuracy. The numbers are computed here, in Python, and
embedded as JSON; the page's script only chooses what to show. As in the report, a seed that
collapsed to chance (:func:`fmnist_helpers.seeds.collapsed`) is named and left out of the means.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

from .grid import seed_band
from .render import write_text_atomic
from .results import Result
from .seeds import collapsed
from .share import FIELD_KEYS
from .study import STUDY
from .style import TEST_STYLE, TRAIN_STYLE
from .sweep import Sweep, label

CURVES = ("train_loss", "test_loss", "train_acc", "test_acc")


def _shown(value) -> str:
    """A knob's value as the sliders, the heat map and the names spell it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _curves(runs: list[Result]) -> dict:
    """Per column: the epochs, the mean over the seeds, their lowest and their highest."""
    out = {}
    for column in CURVES:
        epochs, mean, low, high = seed_band(runs, column)
        out[column] = {"epochs": epochs, "mean": mean, "low": low, "high": high}
    return out


def _point(index: list[int], setting: dict, runs: list[Result]) -> dict:
    """One setting's numbers for the page: means over the seeds that did not collapse."""
    gone = [r for r in runs if collapsed(r)]
    kept = [r for r in runs if r not in gone] or runs
    finals = [r for r in kept if len(r.history) and math.isfinite(r.final["test_acc"])]
    name = runs[0].experiment.name
    return {
        "idx": index, "name": name, "study": name in STUDY,
        "setting": ", ".join(f"{label(k)} {_shown(v)}" for k, v in setting.items()),
        "test_acc": _mean([r.final["test_acc"] for r in finals]),
        "train_acc": _mean([r.final["train_acc"] for r in finals]),
        "test_range": [min((r.final["test_acc"] for r in finals), default=None),
                       max((r.final["test_acc"] for r in finals), default=None)],
        "seeds": [r.seed for r in runs], "collapsed": [r.seed for r in gone],
        "n_params": runs[0].n_params, "epochs": max(r.epochs_trained for r in runs),
        "curves": _curves(runs)}


def page_data(sweep: Sweep, results: Sequence[Result]) -> dict:
    """What the page embeds: the axes, and per setting its numbers and curves.

    ``results`` are the sweep's runs in :meth:`Sweep.runs`' order (as
    :func:`~fmnist_helpers.sweep.run_sweep` returns them).
    """
    results = list(results)
    runs = sweep.runs()
    if len(results) != len(runs):
        raise ValueError(f"sweep {sweep.name!r} has {len(runs)} runs, got {len(results)} "
                         "results: pass run_sweep(sweep)'s results, in their order")
    for (experiment, seed), r in zip(runs, results, strict=True):
        if r.seed != seed or r.experiment.numbers_key() != experiment.numbers_key() and \
                r.experiment.name != experiment.name:
            raise ValueError(f"result {r.experiment.name!r} seed {r.seed} is not the sweep's "
                             f"run {experiment.name!r} seed {seed}: pass run_sweep(sweep)'s "
                             "results, in their order")
    if len({r.quick for r in results}) > 1:
        raise ValueError("the results mix quick-mode and full runs; load them all with the "
                         "same FMNIST_QUICK setting")
    axes = [{"knob": k, "key": FIELD_KEYS.get(k, k), "label": label(k),
             "values": [_shown(v) for v in values]} for k, values in sweep.axes.items()]
    n = len(sweep.seeds)
    points = []
    for i, setting in enumerate(sweep.settings()):
        index = [list(sweep.axes[k]).index(v) for k, v in setting.items()]
        points.append(_point(index, setting, results[i * n:(i + 1) * n]))
    recipe = sweep.recipe()
    start = next((p["idx"] for p in points if all(
        getattr(recipe, k) == sweep.axes[k][j] for k, j in zip(sweep.axes, p["idx"],
                                                                 strict=True))),
                 points[0]["idx"])
    return {"name": sweep.name, "quick": results[0].quick, "axes": axes, "points": points,
            "start": start, "seeds": list(sweep.seeds),
            "colors": {"train": TRAIN_STYLE["color"], "test": TEST_STYLE["color"]}}


def sweep_table(sweep: Sweep, results: Sequence[Result]):
    """Final test accuracy per setting (mean of the seeds that did not collapse) as a pandas
    table: the first axis down and the second across when there are two, else one row per
    setting with its collapsed seeds."""
    import pandas as pd

    data = page_data(sweep, results)
    names = [a["label"] for a in data["axes"]]
    rows = [{**{n: list(sweep.axes[k])[i] for n, k, i in zip(names, sweep.axes, p["idx"],
                                                              strict=True)},
             "test acc": p["test_acc"], "collapsed seeds": p["collapsed"]}
            for p in data["points"]]
    frame = pd.DataFrame(rows)
    if len(names) == 2:
        return frame.pivot(index=names[0], columns=names[1], values="test acc")
    return frame.set_index(names)


SCRIPT = r"""
(function () {
  var M = JSON.parse(document.getElementById('sweep-data').textContent);
  var byKey = {}, state = M.start.slice();
  M.points.forEach(function (p) { byKey[p.idx.join('|')] = p; });
  var fmt = function (v) { return v === null ? 'n/a' : v.toFixed(3); };
  var bands = {train: 'rgba(1,115,178,0.2)', test: 'rgba(222,143,5,0.2)'};

  var box = document.getElementById('sliders');
  M.axes.forEach(function (axis, a) {
    var row = document.createElement('div'); row.className = 'slider';
    var text = document.createElement('label'); text.htmlFor = 'slider-' + axis.knob;
    var input = document.createElement('input');
    input.type = 'range'; input.min = 0; input.max = axis.values.length - 1; input.step = 1;
    input.value = state[a]; input.id = 'slider-' + axis.knob;
    input.addEventListener('input', function () { state[a] = +input.value; update(); });
    var ticks = document.createElement('span'); ticks.className = 'muted';
    ticks.textContent = axis.values.join(' · ');
    row.appendChild(text); row.appendChild(input); row.appendChild(ticks); box.appendChild(row);
  });
  ['heat-x', 'heat-y'].forEach(function (id, k) {
    var sel = document.getElementById(id);
    M.axes.forEach(function (axis, a) { sel.add(new Option(axis.label, a)); });
    sel.value = Math.min(k === 0 ? 0 : 1, M.axes.length - 1);
    sel.addEventListener('change', drawHeat);
  });
  function setAxis(a, i) {
    state[a] = i; document.getElementById('slider-' + M.axes[a].knob).value = i;
  }
  function current() { return byKey[state.join('|')]; }
  // the setting in the URL fragment, in the settings string's keys (fmnist_helpers/share.py)
  function writeFragment() {
    var hash = '#' + M.axes.map(function (axis, a) {
      return axis.key + '=' + axis.values[state[a]]; }).join('&');
    if (window.location.hash === hash) return;
    try { window.history.replaceState(null, '', hash); }
    catch (e) { console.warn('sweep page: cannot write the setting into the link: ' + e); }
  }
  function readFragment() {
    var keys = M.axes.map(function (axis) { return axis.key; });
    window.location.hash.replace(/^#/, '').split('&').filter(Boolean).forEach(function (part) {
      var key = part.split('=')[0], value = decodeURIComponent(part.slice(key.length + 1));
      var a = keys.indexOf(key), values = a < 0 ? [] : M.axes[a].values;
      var i = values.indexOf(value);
      if (i < 0 && value !== '') i = values.map(Number).indexOf(Number(value));
      if (i < 0) {
        console.warn('sweep page: ' + part + (a < 0 ? ' is not an axis of this sweep'
                                              : ' is not on this sweep') + ': ignored');
        return;
      }
      setAxis(a, i);
    });
  }

  function drawCurves() {
    var p = current(), traces = [];
    M.axes.forEach(function (axis, a) {
      document.querySelector('label[for="slider-' + axis.knob + '"]').textContent =
        axis.label + ': ' + axis.values[state[a]];
    });
    var head = '<b>' + p.setting + '</b>' + (p.study ? ' (the study\'s <i>' + p.name +
      '</i> model)' : '') + '<br>';
    if (p.test_acc === null) { head += 'no seed finished an epoch (diverged)'; }
    else {
      head += 'test accuracy <b>' + fmt(p.test_acc) + '</b> (' + (p.seeds.length -
        p.collapsed.length > 1 ? 'seeds ' + fmt(p.test_range[0]) + ' to ' +
        fmt(p.test_range[1]) : 'one seed') + ') · train accuracy ' + fmt(p.train_acc) +
        ' · ' + p.n_params.toLocaleString('en') + ' parameters · ' + p.seeds.length +
        ' seeds, ' + p.epochs + ' epochs';
      if (p.collapsed.length) head += ' · seed' + (p.collapsed.length > 1 ? 's ' : ' ') +
        p.collapsed.join(', ') + ' collapsed to chance, left out of the mean';
    }
    document.getElementById('heading').innerHTML = head + (M.quick ?
      ' · <i>quick mode: a small subset, few epochs</i>' : '');
    var top = 0.5;
    [['loss', 'x', 'y'], ['acc', 'x2', 'y2']].forEach(function (m) {
      ['train', 'test'].forEach(function (split) {
        var c = p.curves[split + '_' + m[0]];
        if (m[0] === 'loss') top = Math.max(top, Math.max.apply(null, c.high.concat([0])));
        traces.push({x: c.epochs.concat(c.epochs.slice().reverse()),
                     y: c.high.concat(c.low.slice().reverse()), fill: 'toself', mode: 'lines',
                     line: {width: 0}, fillcolor: bands[split], hoverinfo: 'skip',
                     showlegend: false, xaxis: m[1], yaxis: m[2]});
        traces.push({x: c.epochs, y: c.mean, mode: 'lines+markers', name: split +
                     ' (mean of the seeds)', line: {color: M.colors[split]},
                     showlegend: m[0] === 'loss', xaxis: m[1], yaxis: m[2],
                     meta: {role: split + '_' + m[0]}});
      });
    });
    Plotly.react('curves', traces, {
      height: 380, margin: {t: 30, l: 50, r: 20, b: 40}, grid: {rows: 1, columns: 2},
      xaxis: {title: {text: 'epoch'}, domain: [0, 0.46], dtick: p.epochs <= 12 ? 1 : null},
      xaxis2: {title: {text: 'epoch'}, domain: [0.54, 1], dtick: p.epochs <= 12 ? 1 : null},
      yaxis: {title: {text: 'loss (cross-entropy)'}, range: [0, 1.05 * top]},
      yaxis2: {title: {text: 'accuracy'}, anchor: 'x2', range: [0, 1]},
      legend: {orientation: 'h', y: 1.12}}, {displaylogo: false, responsive: true});
  }

  function drawHeat() {
    var xa = +document.getElementById('heat-x').value;
    var ya = +document.getElementById('heat-y').value;
    var note = document.getElementById('heat-note');
    if (xa === ya) {
      note.textContent = 'Pick two different axes.';
      Plotly.purge('heatmap'); return;
    }
    var held = M.axes.map(function (axis, a) {
      return a === xa || a === ya ? null : axis.label + ' ' + axis.values[state[a]];
    }).filter(Boolean);
    note.textContent = held.length ? 'Held at the sliders: ' + held.join(', ') + '.' : '';
    var X = M.axes[xa].values, Y = M.axes[ya].values, z = [], text = [];
    Y.forEach(function (_, j) {
      z.push([]); text.push([]);
      X.forEach(function (_, i) {
        var idx = state.slice(); idx[xa] = i; idx[ya] = j;
        var p = byKey[idx.join('|')];
        z[j].push(p.test_acc);
        text[j].push(fmt(p.test_acc) + (p.collapsed.length ? '<br>(' + p.collapsed.length +
          ' collapsed)' : '') + (p.study ? '<br><b>' + p.name + '</b>' : ''));
      });
    });
    var finals = M.points.map(function (p) { return p.test_acc; })
      .filter(function (v) { return v !== null; });
    Plotly.react('heatmap', [
      {type: 'heatmap', x: X, y: Y, z: z, text: text, texttemplate: '%{text}',
       colorscale: 'Viridis', zmin: Math.min.apply(null, finals),
       zmax: Math.max.apply(null, finals), colorbar: {title: {text: 'test acc'}},
       hovertemplate: M.axes[ya].label + ' %{y}, ' + M.axes[xa].label +
         ' %{x}: test accuracy %{z:.3f}<br>click to show its curves<extra></extra>'},
      {type: 'scatter', x: [X[state[xa]]], y: [Y[state[ya]]], mode: 'markers',
       hoverinfo: 'skip', showlegend: false, marker: {symbol: 'square-open', size: 40,
       color: '#ff4081', line: {width: 4}}}],
      {height: 420, margin: {t: 20, l: 80, r: 20, b: 60},
       xaxis: {type: 'category', title: {text: M.axes[xa].label}},
       yaxis: {type: 'category', title: {text: M.axes[ya].label}}},
      {displaylogo: false, responsive: true});
  }

  function drawParcoords() {
    var shown = M.points.filter(function (p) { return p.test_acc !== null; });
    var dims = M.axes.map(function (axis, a) {
      return {label: axis.label, values: shown.map(function (p) { return p.idx[a]; }),
              tickvals: axis.values.map(function (_, i) { return i; }), ticktext: axis.values,
              range: [0, Math.max(axis.values.length - 1, 1)]};
    });
    var accs = shown.map(function (p) { return p.test_acc; });
    dims.push({label: 'test accuracy', values: accs});
    Plotly.newPlot('parcoords', [{type: 'parcoords', dimensions: dims,
      line: {color: accs, colorscale: 'Viridis', showscale: true,
             colorbar: {title: {text: 'test acc'}}}}],
      {height: 420, margin: {t: 60, l: 80, r: 160, b: 30}},
      {displaylogo: false, responsive: true});
  }

  function clicked(ev) {
    var pt = ev.points && ev.points[0];
    if (!pt || pt.data.type !== 'heatmap') return;
    var xa = +document.getElementById('heat-x').value;
    var ya = +document.getElementById('heat-y').value;
    setAxis(xa, M.axes[xa].values.indexOf(String(pt.x)));
    setAxis(ya, M.axes[ya].values.indexOf(String(pt.y)));
    update();
  }
  function update() { drawCurves(); drawHeat(); writeFragment(); }
  if (M.axes.length < 2) document.getElementById('heat-section').style.display = 'none';
  readFragment();
  window.addEventListener('hashchange', function () { readFragment(); update(); });
  update(); drawParcoords();
  if (M.axes.length > 1) document.getElementById('heatmap').on('plotly_click', clicked);
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sweep {name} (MLPs on Fashion-MNIST)</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 1em auto;
padding: 0 1em; line-height: 1.45; color: #1d1d1f; background: #fff; }}
.muted {{ color: #666; font-size: 0.9em; }} .slider {{ display: grid; grid-template-columns:
18em 16em auto; gap: 1em; align-items: center; margin: 0.2em 0; }}
#heading {{ margin: 0.8em 0 0; }}</style></head>
<body>
<h1>Sweep <i>{name}</i></h1>
<p>{about}</p>
<h2>One setting</h2>
<div id="sliders"></div>
<p id="heading"></p>
<div id="curves"></div>
<p class="muted">The line is the mean of the seeds, the band the range between them; train in
blue, test in orange. Train loss is averaged while the epoch trains; train accuracy is measured
after it. A seed that collapsed to chance is named and left out of the means.</p>
<div id="heat-section"><h2>Test accuracy over two axes</h2>
<p>Across: <select id="heat-x"></select> Down: <select id="heat-y"></select>
<span id="heat-note" class="muted"></span></p>
<div id="heatmap"></div></div>
<h2>Every setting</h2>
<p class="muted">One line per setting, coloured by its final test accuracy (mean of the seeds
that did not collapse); drag along an axis to pick a range.</p>
<div id="parcoords"></div>
<p class="muted">Drawn with plotly; everything is in this one file and works offline.</p>
<script type="text/javascript">{plotly}</script>
<script type="application/json" id="sweep-data">{data}</script>
<script type="text/javascript">{script}</script>
</body></html>
"""


def sweep_page_html(sweep: Sweep, results: Sequence[Result]) -> str:
    """The sweep's page as one HTML document: plotly.js, the numbers and the script inlined."""
    from plotly.offline import get_plotlyjs

    data = page_data(sweep, results)
    recipe = sweep.recipe()
    fixed = ", ".join(f"{label(k)} {_shown(v)}" for k, v in sweep.fixed.items())
    sizes = " x ".join(str(len(a["values"])) for a in data["axes"])
    names = ", ".join(a["label"] for a in data["axes"])
    where = ("a quick-mode subset of the real Fashion-MNIST (numbers not comparable to the "
             "study's)" if data["quick"] else "the full Fashion-MNIST")
    about = (f"{len(data['points'])} settings ({sizes} over {names}), {len(sweep.seeds)} "
             f"seeds each: {len(results)} runs on {where}. Every other knob is the "
             f"<i>{html.escape(recipe.name)}</i> experiment's"
             + (f", with {html.escape(fixed)}" if fixed else "") + ".")
    payload = json.dumps(data, allow_nan=False).replace("</", "<\\/")
    return PAGE.format(name=html.escape(sweep.name), about=about, plotly=get_plotlyjs(),
                       data=payload, script=SCRIPT)


def write_sweep_page(path: str | Path, sweep: Sweep, results: Sequence[Result]) -> Path:
    """Write the sweep's page to ``path`` (atomically) and return the path."""
    return write_text_atomic(path, sweep_page_html(sweep, results))
