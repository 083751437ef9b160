"""Sweeps: the TOML file and its checks, the experiments' names, the command, the page's numbers,
and the page in Chromium with the network blocked.

Runs are real quick-mode runs (stratified subset, 2 epochs), in a private results folder.
"""

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from fmnist_helpers import grid
from fmnist_helpers import sweep as sweeps
from fmnist_helpers.results import cached_results
from fmnist_helpers.seeds import collapsed
from fmnist_helpers.study import STUDY, Experiment
from fmnist_helpers.sweep import Sweep, SweepError, load_sweep
from fmnist_helpers.sweep_page import page_data, sweep_table

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sweep_lr.toml"
TIMEOUT_MS = 30_000
SMALL = """
name = "small"
seeds = 2
[axes]
lr = [0.02, 0.1]
depth = [3, 4]
"""


def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small sweep trained by the command into a private cache, and its page."""
    folder = tmp_path_factory.mktemp("sweep")
    path = write(folder, SMALL)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_RESULTS_DIR", str(folder / "results"))
        mp.setenv("FMNIST_PROGRESS", "0")
        mp.delenv("FMNIST_SCHEDULER", raising=False)
        assert sweeps.main([str(path), "--quick", "--out", str(folder / "pages")]) == 0
        sweep = load_sweep(path)
        results = cached_results(sweep.experiments(), sweep.seeds, sweeps.settings(quick=True))
    return SimpleNamespace(folder=folder, sweep=sweep, results=results,
                           page=folder / "pages" / "small.html")


def test_the_knobs_are_the_experiments_fields():
    fields = {f.name for f in dataclasses.fields(Experiment)} - {"name", "title", "notes"}
    assert set(sweeps.knobs()) == fields  # a knob added to Experiment is sweepable at once
    assert sweeps.knob_of("depth") == "n_linear" and sweeps.knob_of("width") == "hidden"


def test_the_example_file_loads():
    sweep = load_sweep(EXAMPLE)
    assert sweep.name == "lr" and sweep.seeds == tuple(range(10))
    assert sweep.axes == {"lr": (0.01, 0.03, 0.1, 0.3), "l2": (0.0, 1e-4)}
    assert all(type(v) is float for v in sweep.axes["l2"])  # TOML's 0 read as the field's 0.0
    assert sweep.fixed == {"epochs": 10} and len(sweep.runs()) == 80
    names = [e.name for e in sweep.experiments()]
    assert len(set(names)) == 8 and "lr_lr0.03_l20.0001" in names
    assert "shallow" in names  # lr 0.1, no penalty: the study's own model, its cached runs


def test_the_wider_grid_example_extends_the_explorers_grid():
    from fmnist_helpers.grid import GRID, grid_experiments
    from fmnist_helpers.settings import settings

    sweep = load_sweep(EXAMPLE.parent / "sweep_grid.toml")
    mine = {e.name for e in sweep.experiments()}
    assert len(sweep.runs()) == 72 and sweep.seeds == (0, 1)
    # every setting of the report's grid is one of the file's, under the same name (shared runs)
    assert {e.name for e in grid_experiments(settings(quick=False))} <= mine
    assert set(GRID.seeds) <= set(sweep.seeds)


def test_names_follow_the_settings_and_reuse_the_studys_models():
    sweep = Sweep("g", {"depth": [3, 8], "width": [10, 50], "dropout": [0, 0.2]}, [0, 1])
    names = {e.name for e in sweep.experiments()}
    assert {"shallow", "deeper", "wide", "dropout", "dropout_w50"} <= names
    assert "g_d8_w50_p0.2" in names and "g_d8_w10_p0.2" in names
    grid = Sweep("grid", {"depth": [2], "width": [25], "dropout": [0.5]}, 2)
    assert grid.experiments()[0].name == "grid_d2_w25_p0.5"  # the explorer's own names
    bn = Sweep("b", {"batch_norm": [False, True], "lr": [0.5]}, 1).experiments()
    assert [e.name for e in bn] == ["b_lr0.5", "b_bn_lr0.5"]
    assert bn[1].batch_norm and bn[1].lr == 0.5 and bn[1].hidden == 10
    bn = Sweep("b", {"batch_norm": [True], "lr": [0.3]}, 1).experiments()
    assert bn[0].name == "depth_lr_d3_lr0.3_bn"  # the depth section's own runs
    assert Sweep("x", {"lr": [0.1]}, 1, base="wide").experiments()[0] is STUDY["wide"]


def test_the_explorers_grid_is_a_sweep(tmp_path, monkeypatch):
    for quick in (False, True):
        config = sweeps.settings(quick=quick)
        sweep = grid.grid_sweep(config)
        points = grid.grid_for(config).points()
        assert sweep.seeds == grid.grid_for(config).seeds == ((0, 1) if quick else (0,))
        assert len(sweep.settings()) == len(points) == (8 if quick else 24)
        own = [grid.grid_experiment(*p) for p in points]
        assert [(e.name, e.title, e.numbers_key()) for e in sweep.experiments()] == [
            (e.name, e.title, e.numbers_key()) for e in own]  # so they share cached runs
    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(tmp_path / "results"))
    assert sweeps.main(["grid", "--quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "grid.html").stat().st_size > 3_000_000
    assert len(grid.cached_grid_results(sweeps.settings(quick=True))) == 16


@pytest.mark.parametrize("text, message", [
    ('name = "x"\nseeds = 2\n[axes]\nlearning_rate = [0.1]',
     r"\[axes\] .*unknown knob 'learning_rate'; the knobs are n_linear, hidden, .*lr"),
    ('name = "x"\nseeds = 2\n[axes]\nlr = [0.1, -0.5]',
     r"\[axes\] lr: learning rate must be a finite number > 0, got -0.5"),
    ('name = "x"\nseeds = 2\n[axes]\ndropout = [1.0]', r"\[axes\] dropout: dropout must be"),
    ('name = "x"\nseeds = 2\n[axes]\nlr = [0.1]\n[fixed]\nepochs = 0',
     r"\[fixed\] epochs: epochs must be a whole number >= 1, got 0"),
    ('name = "x"\nseeds = 0\n[axes]\nlr = [0.1]', r"seeds must be a count >= 1"),
    ('name = "x"\nseeds = [0, -1]\n[axes]\nlr = [0.1]', r"seeds: a seed must be"),
    ('name = "x y"\nseeds = 2\n[axes]\nlr = [0.1]', r"name must be letters"),
    ('name = "x"\nseeds = 2\n[axes]\nlr = 0.1', r"\[axes\] lr: give a list of values"),
    ('name = "x"\nseeds = 2\n[axes]\nlr = [0.1, 0.1]', r"listed twice"),
    ('name = "x"\nseeds = 2\nbase = "nope"\n[axes]\nlr = [0.1]', r"base: unknown experiment"),
    ('name = "x"\nseeds = 2\n[axes]\nlr = [0.1]\n[fixed]\nlr = 0.3', r"given twice"),
    ('name = "x"\nseed = 2\n[axes]\nlr = [0.1]', r"unknown key 'seed'"),
    ('name = "x"\n[axes]\nlr = [0.1]', r"missing 'seeds'"),
    ('name = "x"\nseeds = 2\n[axes]\n', r"\[axes\] is empty"),
    ('name = "x"\nseeds = [2', r"not valid TOML"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SweepError, match=re.escape(str(path)) + ": .*" + message):
        load_sweep(path)


def test_a_missing_file_and_the_commands_error(tmp_path, capsys):
    assert sweeps.main([str(tmp_path / "none.toml")]) == 2
    assert "none.toml: no such file" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.json"))


def test_the_scheduler_chooses_the_executor(monkeypatch):
    from fmnist_helpers.planner import LocalPool

    monkeypatch.delenv("FMNIST_SCHEDULER", raising=False)
    assert isinstance(sweeps.executor_for(), LocalPool)
    monkeypatch.setenv("FMNIST_SCHEDULER", "tcp://10.0.0.5:8786")
    assert sweeps.executor_for().address == "tcp://10.0.0.5:8786"  # connects on first use
    assert sweeps.executor_for("tcp://other:8786").address == "tcp://other:8786"


def test_the_command_trains_once_and_caches(small, monkeypatch):
    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(small.folder / "results"))
    assert len(small.results) == 8 and all(r.quick and r.epochs_trained == 2
                                           for r in small.results)
    entries = sorted((small.folder / "results").rglob("*.json"))
    assert len(entries) == 8 and all(e.with_suffix(".npz").is_file() for e in entries)
    again = sweeps.run_sweep(small.sweep, sweeps.settings(quick=True))
    assert sorted((small.folder / "results").rglob("*.json")) == entries  # nothing retrained
    assert [r.history.rows for r in again] == [
        next(c for c in small.results if c.experiment.name == r.experiment.name
             and c.seed == r.seed).history.rows for r in again]
    assert {r.experiment.name for r in again} == {
        "small_lr0.02_d3", "small_lr0.02_d4", "shallow", "small_lr0.1_d4"}


def test_the_page_embeds_the_runs(small, monkeypatch):
    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(small.folder / "results"))
    results = sweeps.run_sweep(small.sweep, sweeps.settings(quick=True))
    text = small.page.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", text) and "plotly.js v" in text
    data = json.loads(re.search(r'id="sweep-data">(.*?)</script>', text, re.S).group(1))
    assert data == json.loads(json.dumps(page_data(small.sweep, results)))
    assert [a["values"] for a in data["axes"]] == [["0.02", "0.1"], ["3", "4"]]
    assert data["start"] == [1, 0]  # the base experiment's own setting first
    for point in data["points"]:
        runs = [r for r in results if r.experiment.name == point["name"]]
        kept = [r for r in runs if not collapsed(r)] or runs
        assert point["test_acc"] == pytest.approx(
            sum(r.final["test_acc"] for r in kept) / len(kept), rel=1e-12)
        assert point["curves"]["test_loss"]["mean"] == pytest.approx(
            [sum(r.history.rows[i]["test_loss"] for r in runs) / 2 for i in range(2)])
        assert point["seeds"] == [0, 1]
    with pytest.raises(ValueError, match="8 runs, got 7"):
        page_data(small.sweep, results[:-1])
    table = sweep_table(small.sweep, results)
    assert list(table.index) == [0.02, 0.1] and list(table.columns) == [3, 4]
    assert table.loc[0.1, 3] == next(p["test_acc"] for p in data["points"]
                                     if p["name"] == "shallow")


@pytest.mark.browser
def test_the_page_works_offline_in_chromium(small, tmp_path, chromium):
    from playwright.sync_api import expect

    blocked, errors = [], []
    data = json.loads(re.search(r'id="sweep-data">(.*?)</script>',
                                small.page.read_text(encoding="utf-8"), re.S).group(1))
    by_index = {tuple(p["idx"]): p for p in data["points"]}

    def offline(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    def expect_point(page, index: tuple) -> None:
        point = by_index[index]
        heading = page.locator("#heading")
        expect(heading).to_contain_text(point["setting"], timeout=TIMEOUT_MS)
        expect(heading).to_contain_text(f"test accuracy {point['test_acc']:.3f}")
        shown = page.evaluate("""() => document.getElementById('curves').data
            .filter(t => t.meta).map(t => [t.meta.role, t.y])""")
        assert dict(shown)["test_acc"] == pytest.approx(point["curves"]["test_acc"]["mean"])

    page = chromium.new_page(viewport={"width": 1200, "height": 1400})
    try:
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", offline)
        page.goto(small.page.as_uri())
        page.locator("#parcoords .main-svg").first.wait_for()
        expect_point(page, (1, 0))  # lr 0.1, depth 3: the study's shallow network

        page.locator("#slider-lr").focus()
        page.keyboard.press("ArrowLeft")  # the lr slider: 0.1 -> 0.02
        expect_point(page, (0, 0))
        page.locator("#slider-n_linear").focus()
        page.keyboard.press("ArrowRight")  # depth 3 -> 4
        expect_point(page, (0, 1))

        heat = page.evaluate("""() => { const t = document.getElementById('heatmap').data[0];
            return {x: t.x, y: t.y, z: t.z}; }""")
        assert heat["x"] == ["0.02", "0.1"] and heat["y"] == ["3", "4"]
        assert heat["z"][1][0] == pytest.approx(by_index[(0, 1)]["test_acc"])
        page.select_option("#heat-x", "1")  # depth across, learning rate down
        page.select_option("#heat-y", "0")
        heat = page.evaluate("() => document.getElementById('heatmap').data[0].x")
        assert heat == ["3", "4"]

        dims = page.evaluate("""() => document.getElementById('parcoords').data[0]
            .dimensions.map(d => [d.label, d.values.length])""")
        assert dims == [["learning rate", 4], ["depth (linear layers)", 4],
                        ["test accuracy", 4]]
        assert page.locator("#parcoords .parcoords").count() >= 1  # drawn, not only data
    finally:
        page.screenshot(path=str(tmp_path / "sweep.png"), full_page=True)
    assert not blocked, f"the page asked the network for {blocked}"
    assert not errors, f"errors in the page: {errors}"
