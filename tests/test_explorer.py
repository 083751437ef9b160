"""The explorer: its grid, the cache lookup, the page's embedded data, and the page in Chromium.

Everything runs on the real data in quick mode: the quick grid (8 settings x 2 seeds, 2 epochs on
the stratified subset) is trained once for the module, in a private results folder.
"""

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from fmnist_helpers import explorer
from fmnist_helpers.engine import History
from fmnist_helpers.runs import cached_results, run_experiment
from fmnist_helpers.seeds import collapsed
from fmnist_helpers.settings import settings
from fmnist_helpers.study import READINGS, STUDY

TIMEOUT_MS = 30_000
CURVES = ("train_loss", "test_loss", "train_acc", "test_acc")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The quick grid trained into a private cache, and the explorer page written from it."""
    cache = tmp_path_factory.mktemp("explorer-results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_RESULTS_DIR", str(cache))
        mp.setenv("FMNIST_PROGRESS", "0")
        results = explorer.grid_results(config=settings(quick=True))
    page = explorer.write_explorer(tmp_path_factory.mktemp("explorer") / "explorer.html",
                                   results)
    return SimpleNamespace(cache=cache, results=results, page=page)


@pytest.fixture
def grid_cache(grid, monkeypatch):
    """Point the results cache at the module's trained grid."""
    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(grid.cache))
    return grid


def figure_in(page: Path) -> tuple[list, dict]:
    """The figure's data and layout, parsed back out of the page's ``Plotly.newPlot`` call."""
    text = page.read_text(encoding="utf-8")
    call = text.index(f'"{explorer.DIV_ID}",', text.index(f'<div id="{explorer.DIV_ID}"'))
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(text, text.index("[", call))
    layout, _ = decoder.raw_decode(text, text.index("{", end))
    return data, layout


def runs_at(depth: int, width: int, dropout: float) -> list:
    """The cached runs of one grid setting, loaded through the run store (seeds 0 and 1)."""
    experiment = explorer.grid_experiment(depth, width, dropout)
    return cached_results([experiment], (0, 1), config=settings(quick=True))


def mean_curve(runs: list, column: str) -> list[float]:
    return [sum(r.history.rows[i][column] for r in runs) / len(runs)
            for i in range(len(runs[0].history))]


def test_grid_points_are_the_study_models_where_they_coincide():
    assert explorer.grid_experiment(3, 10, 0.0) is STUDY["shallow"]
    assert explorer.grid_experiment(3, 50, 0.0) is STUDY["wide"]
    assert explorer.grid_experiment(3, 10, 0.2) is STUDY["dropout"]
    assert explorer.grid_experiment(8, 10, 0.0) is STUDY["deeper"]
    assert explorer.grid_experiment(3, 50, 0.2) is READINGS["dropout_w50"]
    own = explorer.grid_experiment(2, 50, 0.5)
    assert own.name == "grid_d2_w50_p0.5" and (own.n_linear, own.hidden, own.dropout) == (
        2, 50, 0.5)
    assert (own.lr, own.epochs, own.l1, own.l2, own.early_stopping) == (0.1, 10, 0, 0, None)
    full = explorer.grid_experiments(settings(quick=False))
    quick = explorer.grid_experiments(settings(quick=True))
    assert len(full) == len(explorer.GRID.points()) == 4 * 2 * 3 and len(quick) == 8
    assert len({e.name for e in full}) == len(full)
    assert explorer.GRID.seeds == (0,) and explorer.QUICK_GRID.seeds == (0, 1)


def test_lookup_reads_the_cache_and_never_trains(grid_cache):
    found = explorer.lookup(3, 10, 0.0, config=settings(quick=True))
    assert [r.seed for r in found] == [0, 1]
    assert all(r.experiment.name == "shallow" and r.quick for r in found)
    assert "quick subset" in found[0].source  # the real data, not a stand-in
    assert found[0].history.rows == runs_at(3, 10, 0.0)[0].history.rows
    on_grid = explorer.lookup(8, 50, 0.2, config=settings(quick=True))
    assert on_grid[1].experiment.name == "grid_d8_w50_p0.2"
    assert explorer.lookup(5, 10, 0.0, config=settings(quick=True)) is None  # off the grid
    assert explorer.lookup(2, 10, 0.0, config=settings(quick=True)) is None  # on the full grid only


def test_lookup_on_an_empty_cache_returns_none(tmp_path):
    assert explorer.lookup(3, 10, 0.0, config=settings(quick=True)) is None
    assert not list(tmp_path.rglob("*.json"))  # nothing was trained
    for bad, message in (((1, 10, 0.0), "depth"), ((3, 0, 0.0), "width"),
                         ((3, 10, 1.5), "dropout"), ((3.5, 10, 0.0), "depth")):
        with pytest.raises(ValueError, match=message):
            explorer.lookup(*bad, config=settings(quick=True))


def test_page_embeds_the_cached_runs(grid_cache):
    data, layout = figure_in(grid_cache.page)
    curves = [t for t in data if t.get("meta", {}).get("role") in CURVES]
    assert len(curves) == 8 * len(CURVES)
    for trace in curves:
        depth, width, dropout, batch_norm = trace["meta"]["point"].split("|")
        assert batch_norm == "off"
        runs = runs_at(int(depth), int(width), float(dropout))
        assert [r.seed for r in runs] == [0, 1]
        column = trace["meta"]["role"]
        assert trace["x"] == [1, 2]
        assert trace["y"] == pytest.approx(mean_curve(runs, column), rel=1e-12, abs=0)
        band = next(t for t in data if t.get("meta", {}).get("role") == f"{column}_band"
                    and t["meta"]["point"] == trace["meta"]["point"])
        per_epoch = list(zip(*[r.history[column] for r in runs], strict=True))
        assert band["y"] == pytest.approx([max(v) for v in per_epoch]
                                          + [min(v) for v in per_epoch][::-1])
    points = layout["meta"]["explorer"]["points"]
    assert len(points) == 8
    for key, point in points.items():
        depth, width, dropout, _ = key.split("|")
        runs = runs_at(int(depth), int(width), float(dropout))
        kept = [r for r in runs if not collapsed(r)] or runs  # collapsed seeds apart
        assert point["collapsed"] == [r.seed for r in runs if collapsed(r)]
        assert point["test_acc"] == pytest.approx(
            sum(r.final["test_acc"] for r in kept) / len(kept))
        assert point["train_acc"] == pytest.approx(
            sum(r.final["train_acc"] for r in kept) / len(kept))
        top = max(v for r in runs for c in ("train_loss", "test_loss") for v in r.history[c])
        assert point["loss_range"] == pytest.approx([0, 1.05 * max(top, 0.5)])
        assert point["n_params"] == runs[0].n_params
        assert point["seeds"] == [0, 1]
        assert f"test accuracy <b>{point['test_acc']:.3f}</b>" in point["title"]
    heat = next(t for t in data if t["type"] == "heatmap" and t["meta"]["heatmap"] == "0.2")
    row, col = heat["y"].index("8"), heat["x"].index("50")
    assert heat["z"][row][col] == pytest.approx(points["8|50|0.2|off"]["test_acc"])
    assert "shallow" in json.dumps(next(t for t in data if t["type"] == "heatmap"
                                        and t["meta"]["heatmap"] == "0")["text"])


def test_a_collapsed_seed_is_reported_apart(grid_cache):
    """The report's rule: a seed at chance is named and left out of the mean."""
    runs = runs_at(3, 10, 0.0)
    dead = dataclasses.replace(runs[0], history=History(
        [dict(row, test_acc=0.1, test_loss=7.0) for row in runs[0].history.rows]))
    point = explorer.points_of([dead, runs[1]])[(3, 10, 0.0, False)]
    assert point.mean("test_acc") == runs[1].final["test_acc"]
    assert "seed 0 (0.100) collapsed to chance, left out of the mean" in point.title()
    assert point.loss_range()[1] == pytest.approx(1.05 * 7.0)
    assert explorer.grid_collapses([dead, runs[1]]) == [
        "depth 3, width 10, dropout 0: seed 0 (0.100)"]
    assert "test in orange" in explorer.PAGE and "test in red" not in explorer.PAGE


def test_page_is_one_self_contained_file(grid):
    text = grid.page.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=\"https?:", text)
    assert "plotly.js v" in text  # the library itself, inlined
    assert "plotly_sliderchange" in text  # the controls' listener
    assert len(text) > 3_000_000


def test_explorer_rejects_what_is_not_a_grid_run():
    with pytest.raises(ValueError, match="no results"):
        explorer.explorer_figure([])
    # a real run, but not the grid's recipe
    penalised = run_experiment("l1", 0, config=settings(quick=True))
    with pytest.raises(ValueError, match="'l1'.*l1, lr"):
        explorer.explorer_figure([penalised])


def test_table_notebook_view_and_report_section(grid_cache, tmp_path):
    table = explorer.grid_table(grid_cache.results)
    assert list(table.columns) == [10, 50] and len(table) == 4
    shallow = [r for r in runs_at(3, 10, 0.0) if not collapsed(r)] or runs_at(3, 10, 0.0)
    assert table.loc[(0.0, 3), 10] == pytest.approx(
        sum(r.final["test_acc"] for r in shallow) / len(shallow))
    inline = explorer.show_explorer(grid_cache.results)._repr_html_()
    assert "plotly.js v" in inline and "plotly_sliderchange" in inline
    assert "<html" not in inline  # a fragment for a notebook output
    link = explorer.index_section(explorer.cached_grid_results(config=settings(quick=True)))
    assert 'href="explorer.html"' in link and "16 runs" in link and "8 settings" in link
    assert not list(tmp_path.iterdir())  # the paragraph writes nothing


def test_index_section_without_runs_says_what_fills_it():
    assert explorer.cached_grid_results(config=settings(quick=True)) == []  # an empty private cache
    assert "none is in the results cache" in explorer.index_section([])


@pytest.mark.browser
def test_explorer_page_works_offline_in_chromium(grid_cache, tmp_path, chromium):
    from playwright.sync_api import expect

    blocked, errors = [], []

    def offline(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    def shown(page) -> dict:
        """The visible curves of the chosen point, by role, and the sliders' positions."""
        return page.evaluate("""() => {
            const gd = document.querySelector('.js-plotly-plot');
            const out = {sliders: gd.layout.sliders.map(s => [s.name, s.active]), curves: {}};
            gd.data.forEach(t => {
                if (t.meta && t.meta.point && t.visible !== false)
                    out.curves[t.meta.role] = {point: t.meta.point, y: t.y};
            });
            return out;
        }""")

    def expect_point(page, depth: int, width: int, dropout: float) -> None:
        runs = runs_at(depth, width, dropout)
        kept = [r for r in runs if not collapsed(r)] or runs  # collapsed seeds apart
        test_acc = sum(r.final["test_acc"] for r in kept) / len(kept)
        title = page.locator(".gtitle")
        expect(title).to_contain_text(f"Depth {depth}, width {width}, dropout {dropout:g}",
                                      timeout=TIMEOUT_MS)
        expect(title).to_contain_text(f"test accuracy {test_acc:.3f}")
        expect(title).to_contain_text(f"{runs[0].n_params:,} parameters")
        now = shown(page)
        key = f"{depth}|{width}|{dropout:g}|off"
        assert {c["point"] for c in now["curves"].values()} == {key}
        assert set(now["curves"]) >= {*CURVES, "chosen"}
        for column in CURVES:
            assert now["curves"][column]["y"] == pytest.approx(mean_curve(runs, column))
        top = max(v for r in runs for c in ("train_loss", "test_loss") for v in r.history[c])
        loss_axis = page.evaluate("() => document.querySelector('.js-plotly-plot')"
                                  ".layout.yaxis.range")
        assert loss_axis == pytest.approx([0, 1.05 * max(top, 0.5)])  # scaled to this point

    def click_step(page, slider: int, label: str) -> None:
        step = page.locator(".slider-group").nth(slider).locator(
            "text.slider-label").filter(has_text=re.compile(rf"^{re.escape(label)}$"))
        box = step.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    page = chromium.new_page(viewport={"width": 1300, "height": 1200})
    try:
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", offline)
        page.goto(grid_cache.page.as_uri())
        page.locator(".js-plotly-plot .main-svg").first.wait_for()
        expect_point(page, 3, 10, 0.0)  # the study's shallow network first
        assert shown(page)["sliders"] == [["depth", 0], ["width", 0], ["dropout", 0]]

        click_step(page, 0, "8")  # depth slider: 3 -> 8
        expect_point(page, 8, 10, 0.0)
        assert shown(page)["sliders"][0] == ["depth", 1]
        click_step(page, 2, "0.2")  # dropout slider: 0 -> 0.2
        expect_point(page, 8, 10, 0.2)

        # a click on a heat map cell (dropout 0, depth 3, width 50) moves the sliders there
        x, y = page.evaluate("""() => {
            const gd = document.querySelector('.js-plotly-plot');
            const i = gd.data.findIndex(t => t.type === 'heatmap' && t.meta.heatmap === '0');
            const t = gd._fullData[i], L = gd._fullLayout;
            const xa = L['xaxis' + t.xaxis.slice(1)], ya = L['yaxis' + t.yaxis.slice(1)];
            const box = gd.getBoundingClientRect();
            const at = (axis, category) => axis._offset
                + axis.l2p(axis._categories.indexOf(category));
            return [box.left + at(xa, '50'), box.top + at(ya, '3')];
        }""")
        page.mouse.click(x, y)
        expect_point(page, 3, 50, 0.0)
        assert shown(page)["sliders"] == [["depth", 0], ["width", 1], ["dropout", 0]]
    finally:
        page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    assert not blocked, f"the page asked the network for {blocked}"
    assert not errors, f"errors in the page: {errors}"


def test_the_page_reads_the_settings_string_keys():
    from fmnist_helpers import evidence, share

    assert share.EXPLORER_KEYS["depth"] == "depth" and set(share.EXPLORER_KEYS) == set(
        explorer.DIMS)
    assert all(key in share.KEYS for key in share.EXPLORER_KEYS.values())
    link = evidence.explorer_link(8, 10, 0.0)  # the chapters' links
    assert link == share.explorer_link(STUDY["deeper"])
    assert link == "explorer.html#depth=8&width=10&dropout=0"
    assert share.decode(link) == {"n_linear": 8, "hidden": 10, "dropout": 0.0}
    assert "{fragment}" in explorer.SCRIPT


@pytest.mark.browser
def test_a_link_with_a_fragment_opens_that_setting(grid_cache, chromium):
    """explorer.html#depth=8&width=50&dropout=0.2 shows that point (of the quick grid); a key
    with no slider is ignored with a warning; a slider moved rewrites the fragment."""
    from playwright.sync_api import expect

    warnings, errors = [], []
    page = chromium.new_page(viewport={"width": 1300, "height": 1200})
    try:
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            "file://") else route.abort())
        page.goto(grid_cache.page.as_uri() + "#depth=8&width=50&dropout=0.2&act=tanh")
        title = page.locator(".gtitle")
        expect(title).to_contain_text("Depth 8, width 50, dropout 0.2", timeout=TIMEOUT_MS)
        runs = runs_at(8, 50, 0.2)
        kept = [r for r in runs if not collapsed(r)] or runs
        expect(title).to_contain_text(
            f"test accuracy {sum(r.final['test_acc'] for r in kept) / len(kept):.3f}")
        sliders = page.evaluate("() => document.querySelector('.js-plotly-plot').layout"
                                ".sliders.map(s => [s.name, s.active])")
        assert sliders == [["depth", 1], ["width", 1], ["dropout", 1]]
        assert any('"act"' in w and "playground setting" in w for w in warnings), warnings

        # a slider moved: the fragment follows (the playground's key is dropped)
        step = page.locator(".slider-group").nth(0).locator("text.slider-label").filter(
            has_text=re.compile(r"^3$"))
        box = step.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(title).to_contain_text("Depth 3, width 50, dropout 0.2")
        page.wait_for_function("() => location.hash === '#depth=3&width=50&dropout=0.2'")

        # a link to a setting off the grid: a warning, the page stays where it is
        page.goto(grid_cache.page.as_uri() + "#depth=5&width=10")
        expect(title).to_contain_text("Depth 3, width 10, dropout 0", timeout=TIMEOUT_MS)
        assert any("depth=5 is not on the grid" in w for w in warnings), warnings
    finally:
        page.close()
    assert not errors, f"errors in the page: {errors}"
