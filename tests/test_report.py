"""The report command: notebooks executed in quick mode, HTML pages, index, failures, browser."""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from fmnist_helpers import report
from fmnist_helpers.study import STUDY

# The data, one section (with its try-it playground), and the results: the report command
# itself handles every notebook, this keeps the test short.
SUBSET = ["00", "04", "08"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``python -m fmnist_helpers.report --quick`` on a subset, into a private folder and an
    empty private cache: the report's own training step trains every quick run the notebooks
    read, with its progress bar, as ``make report`` does from nothing (a few seconds in quick
    mode; executing the notebooks takes the rest). Nothing is read from the project's results/,
    so the module passes alone, before or without nbmake."""
    out = tmp_path_factory.mktemp("report")
    cache = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_RESULTS_DIR", str(cache))
        mp.delenv("FMNIST_PROGRESS", raising=False)  # progress bars on, as for a reader
        code = report.main(["--quick", "--out", str(out), "--only", *SUBSET])
        yield code, out


def pages(out: Path) -> list[Path]:
    return sorted(out.glob("[0-9][0-9]_*.html"))


@pytest.mark.slow
def test_report_executes_the_notebooks(built):
    code, out = built
    assert code == 0
    assert [p.name[:2] for p in pages(out)] == SUBSET
    for name in SUBSET:
        (nb_path,) = (out / "notebooks").glob(f"{name}_*.ipynb")
        nb = nbformat.read(nb_path, as_version=4)
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code_cells), f"{nb_path.name} not fully run"
        assert not any(o.output_type == "error" for c in code_cells for o in c.outputs)
        assert all("execution" not in c.metadata for c in nb.cells)  # no timestamps
        assert "version" not in nb.metadata.get("language_info", {})
        text = json.dumps(nb)  # the kernels ran with FMNIST_QUICK=1: the mode line says so,
        assert "Quick mode" in text or "FMNIST_QUICK=1" in text  # or the playground's data


@pytest.mark.slow
def test_pages_are_self_contained(built):
    _, out = built
    for page in pages(out):
        html = page.read_text()
        assert not re.search(r"<script[^>]+src=\"https?:", html), page.name
        assert not re.search(r"<img[^>]+src=\"(?!data:)", html), page.name
        assert 'href="index.html"' in html
        assert "application/vnd.jupyter.widget-view+json" not in html
    early = next(p for p in pages(out) if p.name.startswith("04")).read_text()
    assert "fmnist-playground-static" in early  # the try-it playground, by its static copy
    assert "VBox(children" not in early
    assert 'href="05_batch_norm.html"' in early  # notebook links point at the pages


@pytest.mark.slow
def test_index_opens_with_the_findings_then_links_and_table(built):
    _, out = built
    html = (out / "index.html").read_text()
    for page in pages(out):
        assert f'href="{page.name}"' in html
    findings, sections, table = (html.index(h) for h in ("<h2>Findings</h2>",
                                                          "<h2>Sections</h2>",
                                                          "<h2>All experiments</h2>"))
    assert findings < sections < table
    assert "rows of the study's table are reproduced" in html[findings:sections]
    assert "What the reproduction learned" in html[findings:sections]
    for name in STUDY:
        assert f"<td>{name}</td>" in html[table:]
    assert "study test %" in html and "Quick mode" in html
    assert "data:image/png;base64," in html  # the comparison chart, embedded


def _notebook(path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_markdown_cell(f"# {path.stem}")]
                      + [new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_failure_names_notebook_and_cell_and_keeps_earlier_output(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "00_fine.ipynb", "print('first notebook ran')")
    _notebook(src / "01_broken.ipynb", "x = 1", "x / 0", "print('never')")
    _notebook(src / "02_later.ipynb", "print('not reached')")
    out = tmp_path / "out"
    code = report.main(["--quick", "--jobs", "1", "--notebooks", str(src), "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert re.search(r"01_broken\.ipynb, cell 3 \(In \[2\]\): ZeroDivisionError", err)
    assert "first notebook ran" in (out / "00_fine.html").read_text()
    broken = nbformat.read(out / "notebooks" / "01_broken.ipynb", as_version=4)
    assert broken.cells[2].outputs[0].output_type == "error"  # saved up to the failure
    assert (out / "01_broken.html").exists() and not (out / "02_later.html").exists()
    index = (out / "index.html").read_text()
    assert "failed" in index and "missing (not run)" in index
    assert "2 of 3 pages are missing or incomplete: 01_broken.ipynb, 02_later.ipynb" in index


def test_only_keeps_the_other_pages_in_the_index(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "00_first.ipynb", "print('first')")
    _notebook(src / "01_second.ipynb", "print('second')")
    _notebook(src / "02_never.ipynb", "print('never run')")
    out = tmp_path / "out"
    for only in ("00", "01"):  # two runs of --only: the index links both pages
        assert report.main(["--quick", "--no-train", "--notebooks", str(src), "--out", str(out),
                            "--only", only]) == 0
    index = (out / "index.html").read_text()
    assert 'href="00_first.html"' in index and "from an earlier run" in index
    assert 'href="01_second.html"' in index and "02_never" not in index  # never built: absent
    assert "missing" not in index


def test_ctrl_c_keeps_finished_pages_and_the_index_names_the_missing(tmp_path, monkeypatch,
                                                                     capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "00_fine.ipynb", "print('first notebook ran')")
    _notebook(src / "01_slow.ipynb", "print('interrupted here')")
    _notebook(src / "02_later.ipynb", "print('not reached')")
    real_execute = report.execute

    def interrupted_on_the_second(path, quick, timeout=report.CELL_TIMEOUT):
        if path.name.startswith("01"):
            raise KeyboardInterrupt
        return real_execute(path, quick, timeout)

    monkeypatch.setattr(report, "execute", interrupted_on_the_second)
    out = tmp_path / "out"
    code = report.main(["--quick", "--no-train", "--jobs", "1", "--notebooks", str(src),
                        "--out", str(out)])
    assert code == 130
    assert "running the same command again resumes" in capsys.readouterr().err
    assert "first notebook ran" in (out / "00_fine.html").read_text()
    index = (out / "index.html").read_text()
    assert "2 of 3 pages are missing or incomplete: 01_slow.ipynb, 02_later.ipynb" in index
    assert "missing (interrupted)" in index and "missing (not run)" in index
    monkeypatch.setattr(report, "execute", real_execute)  # the rerun finishes the job
    assert report.main(["--quick", "--no-train", "--notebooks", str(src), "--out",
                        str(out)]) == 0
    assert "pages are missing" not in (out / "index.html").read_text()


def test_two_at_a_time_runs_every_notebook_and_stops_starting_after_a_failure(tmp_path,
                                                                             capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "00_slow.ipynb", "import time\ntime.sleep(8)", "print('slow one ran')")
    _notebook(src / "01_fine.ipynb", "print('beside it')")
    _notebook(src / "02_broken.ipynb", "1 / 0")
    _notebook(src / "03_later.ipynb", "print('not started')")
    out = tmp_path / "out"
    code = report.main(["--quick", "--no-train", "--jobs", "2", "--notebooks", str(src),
                        "--out", str(out)])
    assert code == 1
    # 01 and 02 ran beside the slow 00, which finished; after 02 failed nothing new started
    assert "slow one ran" in (out / "00_slow.html").read_text()
    assert "beside it" in (out / "01_fine.html").read_text()
    assert "02_broken.ipynb, cell 2" in capsys.readouterr().err
    assert not (out / "03_later.html").exists()
    index = (out / "index.html").read_text()
    assert "2 of 4 pages are missing or incomplete: 02_broken.ipynb, 03_later.ipynb" in index


def test_a_dying_kernel_is_a_failure_that_names_the_cell(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "00_dies.ipynb", "print('before')", "import os\nos._exit(1)")
    out = tmp_path / "out"
    code = report.main(["--quick", "--no-train", "--notebooks", str(src), "--out", str(out)])
    assert code == 1
    assert "00_dies.ipynb, cell 3" in capsys.readouterr().err
    assert "before" in (out / "00_dies.html").read_text()
    assert "1 of 1 pages are missing or incomplete" in (out / "index.html").read_text()


def test_quick_outputs_never_overwrite_the_committed_ones(capsys):
    with pytest.raises(SystemExit) as stop:
        report.main(["--quick", "--update-notebooks"])
    assert stop.value.code == 2 and "without --quick" in capsys.readouterr().err


def test_update_notebooks_is_stable(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    path = _notebook(src / "00_widget.ipynb",
                     "import ipywidgets as w\nw.IntSlider(value=4, description='n')")
    args = ["--quick", "--notebooks", str(src), "--out", str(tmp_path / "out"),
            "--update-notebooks"]
    assert report.main(args) == 0
    first = path.read_text()
    assert "application/vnd.jupyter.widget-state+json" in first  # outputs written back
    assert report.main(args) == 0
    assert path.read_text() == first  # a rerun changes nothing


@pytest.mark.browser
@pytest.mark.slow
def test_report_renders_in_chromium(built, tmp_path, chromium):
    _, out = built
    tab = chromium.new_page(viewport={"width": 1200, "height": 900})
    for page in [out / "index.html", *pages(out)]:
        tab.goto(page.as_uri())
        tab.wait_for_load_state("load")
        widths = tab.evaluate(
            "[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        assert widths and all(w > 0 for w in widths), f"{page.name}: images {widths}"
        if page.name in ("index.html",) or page.name.startswith("08"):
            rows = tab.locator("table tbody tr").count()
            assert rows >= len(STUDY), f"{page.name}: {rows} table rows"
            assert tab.locator("table").first.is_visible()
        tab.screenshot(path=str(tmp_path / f"{page.stem}.png"), full_page=True)
    assert len(list(tmp_path.glob("*.png"))) == len(pages(out)) + 1
    from fmnist_helpers import screenshots  # the README's pictures, from the same pages

    (image,) = screenshots.take(out, tmp_path / "images",
                                (screenshots.Shot("index.html", "index", top="h2"),),
                                browser=chromium)
    assert image.parent.name == "images" and 0 < image.stat().st_size <= screenshots.MAX_BYTES
