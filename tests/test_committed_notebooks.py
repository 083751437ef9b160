"""The committed notebooks read: no cell cut short, tables of at most 8 columns, every widget
with a static copy for renderers without the widget manager, an example run in the playground.

These scan the outputs committed in ``notebooks/`` (made by ``python -m fmnist_helpers.report
--update-notebooks``), which is what GitHub and other viewers show.
"""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            yield index, output


def texts(output) -> list[str]:
    data = output.get("data", {})
    found = [data[k] for k in ("text/html", "text/plain", "text/markdown") if k in data]
    if output.get("output_type") == "stream":
        found.append(output.get("text", ""))
    return ["".join(t) if isinstance(t, list) else t for t in found]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_is_cut_short(path):
    for index, output in outputs(path):
        for text in texts(output):
            if output.get("output_type") == "stream":  # progress bars may elide
                continue
            cut = re.search(r"\w(\.\.\.|…)(\s|<|$)", text)
            where = text[max(cut.start() - 60, 0):cut.end()] if cut else ""
            assert not cut, f"{path.name}, cell {index}: {where!r}"
            assert "-0.0%" not in text and "-0.0 " not in text, f"{path.name}, cell {index}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_committed_sentence_is_contradicted_by_its_runs(path):
    """A hand-written sentence whose check failed (evidence.claim) is never committed."""
    for index, output in outputs(path):
        for text in texts(output):
            assert "not borne out by these runs" not in text, f"{path.name}, cell {index}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tables_have_at_most_eight_columns(path):
    for index, output in outputs(path):
        html = output.get("data", {}).get("text/html", "")
        html = "".join(html) if isinstance(html, list) else html
        for head in re.findall(r"<thead>(.*?)</thead>", html, flags=re.S):
            last_row = head.split("<tr")[-1]
            columns = len(re.findall(r"<th[ >]", last_row))
            assert columns <= 8, f"{path.name}, cell {index}: a table of {columns} columns"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_widget_has_a_static_copy(path):
    for index, output in outputs(path):
        data = output.get("data", {})
        if WIDGET_VIEW in data and "playground" in "".join(data.get("text/plain", "")).lower():
            assert "text/html" in data, f"{path.name}, cell {index}: no static copy"
        assert "VBox(children" not in "".join(data.get("text/plain", "")), path.name


def test_the_playground_is_committed_with_an_example_run():
    (path,) = [p for p in NOTEBOOKS if p.stem.startswith("09")]
    html = "".join("".join(o["data"]["text/html"]) for _, o in outputs(path)
                   if "text/html" in o.get("data", {}))
    assert "fmnist-playground-static" in html
    assert "data:image/png;base64," in html and "finished" in html and "<table" in html


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_cell_shows_its_figure(path):
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        source = cell.source.strip()
        if cell.cell_type == "code" and "plot" in source and source.endswith(";"):
            kinds = {k for o in cell.outputs for k in o.get("data", {})}
            assert "image/png" in kinds, f"{path.name}, cell {index}: no figure shown"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2] <= "08"], ids=lambda p: p.stem)
def test_the_committed_numbers_were_made_in_portable_mode(path):
    """Every section states the arithmetic its numbers came from, and it is portable mode's,
    which ``FMNIST_KERNELS=portable make report`` reproduces on any x86-64 CPU."""
    text = " ".join(t for _, o in outputs(path) for t in texts(o))
    if "Trained on the CPU" not in text and not path.stem.startswith("00"):
        pytest.skip(f"{path.name} shows no mode line (00 must)")
    assert "in portable mode (portable: DEFAULT kernels, MKL_CBWR=COMPATIBLE)" in text
