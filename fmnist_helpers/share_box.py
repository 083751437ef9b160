"""The playground's sharing box: a settings string typed in, the current one shown with its
explorer link, and the notebook code that trains its seeds (copy as code).

:class:`ShareBox` only shows and reads: the playground (:mod:`fmnist_helpers.playground`)
applies a typed string to its knobs and tells the box what to show after every move. The
string's format and the code are :mod:`fmnist_helpers.share`'s.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as W

from .share import EXAMPLE, code_for, explorer_link, of_experiment
from .study import Experiment

CODE_STYLE = "user-select:all;background:#f5f5f5;padding:6px;white-space:pre-wrap"


class ShareBox:
    """The settings box (``text``), the current string and explorer link (``note``) and the
    code (``code``); ``on_settings`` is called with a string typed and entered."""

    def __init__(self, on_settings: Callable[[str], None]):
        self.text = W.Text(
            description="settings", style={"description_width": "120px"},
            layout=W.Layout(width="760px"), continuous_update=False,
            placeholder="paste a settings string or an explorer link, then press Enter",
            tooltip=f"e.g. {EXAMPLE}")
        self.note = W.HTML()
        self.code = W.HTML()
        for name in ("text", "note", "code"):
            getattr(self, name).add_class(f"fmnist-share-{name}")
        self.text.observe(lambda change: change["new"].strip() and on_settings(change["new"]),
                          names="value")
        self.widget = W.VBox([
            W.HTML("<b>Share this setting, or train its seeds in a notebook</b>"),
            self.text, self.note, self.code])

    def show(self, experiment: Experiment, seed: int) -> None:
        """Show the settings string of ``experiment`` and ``seed``, its link and its code."""
        text, link = of_experiment(experiment, seed), explorer_link(experiment)
        self.note.value = (
            f"<div>Settings string: <code>{html.escape(text)}</code> (paste it into the "
            "settings box, or call <code>playground(settings=\"...\")</code>). The explorer "
            f"page of the HTML report at this depth, width and dropout: <code>"
            f"{html.escape(link)}</code> (it holds the grid's settings, trained with the "
            "study's recipe).</div>")
        self.code.value = ("<div>To train every seed of this setting in a notebook (the cached "
                           "runs are loaded), copy:</div>"
                           f"<pre style='{CODE_STYLE}'>{html.escape(code_for(experiment))}"
                           "</pre>")

    def show_error(self, message: str) -> None:
        """Say why the knobs as they stand have no settings string."""
        self.note.value = f"<i>{html.escape(message)}</i>"
        self.code.value = ""
