"""Widgets in the exported HTML: drawn from the saved widget state, not a text placeholder."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from fmnist_helpers.report import ThisPythonKernelManager, export_html, strip_volatile
from fmnist_helpers.static_widgets import WIDGET_STATE, WIDGET_VIEW, StaticRenderer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CELLS = [
    "import ipywidgets as w\nw.IntSlider(value=7, min=1, max=10, description='depth')",
    "w.VBox([w.HBox([w.FloatSlider(value=0.25, min=0, max=0.9, step=0.05, "
    "description='dropout'), w.Dropdown(options=['off', 'test', 'validation'], "
    "value='validation', description='stopping')]), w.Checkbox(value=True, "
    "description='batch norm'), w.Button(description='Train', button_style='success'), "
    "w.Label('a label'), w.HTML('<b id=\"bold\">bold words</b>')])",
    "from tqdm.notebook import tqdm\nfor _ in tqdm(range(20), desc='epochs'):\n    pass",
    "out = w.Output()\nwith out:\n    print('printed inside an Output widget')\nout",
]


@pytest.fixture(scope="module")
def executed():
    """A small notebook with widgets, executed by nbclient with its widget state saved."""
    nb = new_notebook(cells=[new_code_cell(c) for c in CELLS])
    NotebookClient(nb, kernel_name="python3", kernel_manager_class=ThisPythonKernelManager,
                   store_widget_state=True, timeout=120).execute()
    return nb


@pytest.fixture(scope="module")
def page(executed, tmp_path_factory):
    path = export_html(executed, tmp_path_factory.mktemp("html") / "widgets.html", "widgets")
    return path, path.read_text()


def test_widgets_become_static_controls(page):
    _, html = page
    assert WIDGET_VIEW not in html and WIDGET_STATE not in html  # no placeholder, no state
    slider = re.search(r"<input[^>]*type=\"range\"[^>]*>", html)
    assert slider and 'value="7"' in slider.group(0) and "disabled" in slider.group(0)
    assert ">depth<" in html and 'class="widget-readout">7<' in html
    assert ">dropout<" in html and ">0.25<" in html  # FloatSlider's readout format
    assert re.search(r"<option selected[^>]*>validation</option>", html)
    assert re.search(r"<input[^>]*type=\"checkbox\"[^>]*>", html) and ">batch norm<" in html
    assert re.search(r"<button[^>]*>Train</button>", html)
    assert "a label" in html and '<b id="bold">bold words</b>' in html
    assert "printed inside an Output widget" in html


def test_tqdm_bar_is_a_full_progress_bar(page):
    _, html = page
    bar = re.search(r"<span[^>]*role=\"progressbar\"[^>]*>\s*<span[^>]*>", html)
    assert bar, "tqdm's FloatProgress should become a progress bar"
    assert 'aria-valuemax="20' in bar.group(0) and 'aria-valuenow="20' in bar.group(0)
    assert "width:100.0%" in bar.group(0)
    assert re.search(r"epochs:\s*100%", html) and "20/20" in html  # tqdm writes \xa0


def test_page_loads_nothing_from_the_network(page):
    _, html = page
    assert not re.search(r"<script[^>]+src=\"https?:", html)
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_missing_model_falls_back_to_text(executed):
    nb = nbformat.from_dict(nbformat.v4.new_notebook(cells=[new_code_cell("x")]))
    nb.cells[0].outputs = [nbformat.v4.new_output(
        "display_data", data={WIDGET_VIEW: {"model_id": "gone", "version_major": 2,
                                            "version_minor": 0},
                              "text/plain": "IntSlider(value=3)"})]
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": {}, "version_major": 2,
                                             "version_minor": 0}}
    from fmnist_helpers.static_widgets import StaticWidgetPreprocessor

    out, _ = StaticWidgetPreprocessor().preprocess(nb, {})
    assert out.cells[0].outputs[0].data == {"text/plain": "IntSlider(value=3)"}
    assert "widgets" not in out.metadata


def test_renderer_on_hand_written_state():
    state = {
        "box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_p", "IPY_MODEL_x"]}},
        "p": {"model_name": "IntProgressModel",
              "state": {"value": 3, "min": 0, "max": 4, "bar_style": "danger",
                        "description": "run"}},
        "x": {"model_name": "SomeCustomModel", "state": {"value": "custom value"}},
        "hidden": {"model_name": "LabelModel",
                   "state": {"value": "never shown", "layout": "IPY_MODEL_l"}},
        "l": {"model_name": "LayoutModel", "state": {"display": "none"}},
    }
    r = StaticRenderer(state)
    html = r.render("box")
    assert 'aria-valuenow="3"' in html and "width:75.0%" in html
    assert "#f44336" in html  # bar_style danger: red
    assert "custom value" in html
    assert r.render("hidden") == ""
    assert r.render("nothing-saved") is None


def test_widget_ids_are_renumbered_stably(executed):
    a, b = strip_volatile(executed, "nb"), strip_volatile(executed, "nb")
    assert nbformat.writes(a) == nbformat.writes(b)
    old = set(executed.metadata.widgets[WIDGET_STATE]["state"])
    new = set(a.metadata.widgets[WIDGET_STATE]["state"])
    assert not old & new and len(old) == len(new)
    view = a.cells[0].outputs[0].data[WIDGET_VIEW]["model_id"]
    assert view in new
    assert "version" not in a.metadata.language_info


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_static_widgets_render_in_chromium(page, tmp_path):
    from playwright.sync_api import sync_playwright

    path, _ = page
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page()
        tab.goto(path.as_uri())
        assert tab.locator("input[type=range]").first.is_visible()
        bar = tab.locator("[role=progressbar] > span").first.bounding_box()
        track = tab.locator("[role=progressbar]").first.bounding_box()
        assert bar and track and bar["width"] >= track["width"] - 3  # drawn full
        tab.screenshot(path=str(tmp_path / "widgets.png"), full_page=True)
        browser.close()
