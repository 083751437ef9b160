"""The report's HTML: each executed notebook as one self-contained page, and the index.

:func:`export_html` writes a notebook as a page with its images embedded and every widget shown
by its static copy (:class:`WidgetFallbackPreprocessor`), nothing fetched from the network.
:func:`index_page` is the report's ``index.html``: the mode, the findings, links to every
section (and what is missing), the explorer's paragraph, the comparison table and chart. Both
draw what they are given (results, runs, paragraphs); loading is the command's
(:mod:`fmnist_helpers.report`), and nothing here trains.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode

from .render import img_tag, write_text_atomic
from .results import Result
from .settings import Settings

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class WidgetFallbackPreprocessor(Preprocessor):
    """Show every widget by its static copy: the page needs no widget manager and no network.

    The playground's outputs carry their own static copy (``text/html``: settings, curves,
    runs table); any other widget is shown by its ``text/plain`` form. The saved widget state
    is dropped from the exported copy of the notebook.
    """

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        nb.metadata.pop("widgets", None)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if data.pop(WIDGET_VIEW, None) is not None and not data:
                data["text/plain"] = "[a widget: run the notebook to use it]"
        return cell, resources



# The lab template, minus the scripts it would fetch from a CDN (require.js, MathJax):
# the pages must open offline. The notebooks write no LaTeX, and widgets are static HTML.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block body_header -%}
{{ super() }}
<nav style="padding:8px 16px;font-family:sans-serif"><a href="index.html">&larr; all sections
of the report</a></nav>
{%- endblock body_header -%}
"""


def export_html(nb: NotebookNode, dest: Path, title: str = "") -> Path:
    """Write ``nb`` as one self-contained HTML page: images embedded, widgets by their copies."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="fmnist_page.html.j2",
                            extra_loaders=[DictLoader({"fmnist_page.html.j2": PAGE_TEMPLATE})],
                            embed_images=True)
    exporter.register_preprocessor(WidgetFallbackPreprocessor, enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or
                                                                        dest.stem}})
    # links between the notebooks ("Next: 02_width.ipynb") lead to the pages instead
    body = re.sub(r'href="(\d\d_[^"/]+)\.ipynb"', r'href="\1.html"', body)
    return write_text_atomic(dest, body)


INDEX_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em;
       line-height: 1.5; color: #1d1d1f; background: #fff; }
a { color: #0b62c4; }
table { border-collapse: collapse; font-size: 0.86em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child, td:nth-child(2) { text-align: left; }
.failed { color: #c62828; font-weight: bold; }
.muted { color: #666; }
img { max-width: 100%; background: #fff; }
@media (prefers-color-scheme: dark) {
  body { color: #e6e6e6; background: #1e1e1e; }
  a { color: #7ab7ff; }
  th { background: #2d2d2d; }
  th, td { border-color: #555; }
  .muted { color: #aaa; }
}
"""



def findings_html(results: Sequence[Result], readings: Sequence[Result]) -> tuple[str, str]:
    """The findings (verdicts and lessons), and the comparison table with its chart, as HTML
    drawn from ``results`` (the study's models and controls) and ``readings``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from . import findings, plots, tables

    if not results:
        return ('<p class="muted">No finished run in the results cache yet: execute the '
                "results notebook (08) to fill it.</p>"), ""
    found = (markdown2html_mistune(findings.headline(results, readings))
             + findings.verdict_table(results, readings).to_html()
             + "<h3>What the reproduction learned</h3>"
             + markdown2html_mistune(findings.lessons(results, readings)))
    fig = plots.plot_comparison(results)
    chart = img_tag(fig, "test accuracy of every seed per model, and the study's")
    plt.close(fig)
    return found, tables.comparison_table(results).to_html() + chart


def section_item(title: str, page: str, notebook: str, status: str, seconds: float = 0.0,
                 error: str = "", page_exists: bool = False) -> str:
    """One section in the index's list: its link, or why it is missing."""
    name = html.escape(title)
    if status == "ok":
        return (f'<li><a href="{page}">{name}</a> <span class="muted">({seconds:.0f} s; '
                f'<a href="notebooks/{notebook}">notebook</a>)</span></li>')
    if status == "earlier" and page_exists:  # not executed this time (--only): kept
        return (f'<li><a href="{page}">{name}</a> <span class="muted">(from an earlier run; '
                f'<a href="notebooks/{notebook}">notebook</a>)</span></li>')
    if status == "failed":
        link = f'<a href="{page}">{name}</a>' if page_exists else name
        return f'<li>{link} <span class="failed">failed: {html.escape(error)}</span></li>'
    why = "interrupted" if status == "interrupted" else "not run"
    return f'<li>{name} <span class="failed">missing ({why})</span></li>'


def index_page(config: Settings, items: Sequence[str], missing: Sequence[str], found: str,
               table: str, explorer: str) -> str:
    """The report's ``index.html``: the mode, the findings, the sections (``items`` from
    :func:`section_item`; ``missing`` names the notebooks without a finished page), the
    explorer's paragraph, the comparison table."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from .describe import mode_line

    note = ""
    if missing:
        note = (f'<p class="failed">{len(missing)} of {len(items)} pages are missing or '
                f"incomplete: {html.escape(', '.join(missing))}. Run the report again to finish "
                "them: every finished run loads from the cache.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MLPs on Fashion-MNIST: the report</title><style>{INDEX_CSS}</style></head>
<body>
<h1>Multi-layer perceptrons on Fashion-MNIST</h1>
<p>A reproduction of a student study of small MLPs on Fashion-MNIST, one section per page.
Every number on these pages was computed from our runs; the study's numbers are labelled as
the study's.</p>
{markdown2html_mistune(mode_line(config))}
<h2>Findings</h2>
{found}
<h2>Sections</h2>
{note}<ol start="0">{"".join(items)}</ol>
<h2>Explorer</h2>
{explorer}
<h2>All experiments</h2>
{table}
<p class="muted">Written by <code>python -m fmnist_helpers.report{" --quick" * config.quick}</code>
on {time.strftime("%Y-%m-%d %H:%M")}.</p>
</body></html>
"""
