"""Rendering shared by the report, the explorer and the playground: figures as PNG, notebook
outputs, files written whole.

* :func:`figure_png` (bytes), :func:`png_base64` and :func:`img_tag`: a matplotlib figure as a
  PNG, drawn under the report's style (:func:`fmnist_helpers.style.style`);
* :func:`image_output` and :func:`html_output`: a notebook ``display_data`` output, as an
  ``ipywidgets.Output`` or a display handle takes it;
* :func:`write_text_atomic`: a page written through the package's one atomic writer
  (:func:`fmnist_helpers.results.atomic_file`).

Nothing here trains or reads the results cache: what to draw comes in as arguments.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from matplotlib.figure import Figure

from .results import atomic_file
from .style import style

DPI = 100  # the report's figures; the playground draws at 90 (smaller, redrawn every epoch)


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, cropped to what it draws (its caption included)."""
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def png_base64(fig: Figure, dpi: int = DPI) -> str:
    """The figure as a base64 PNG, as notebook outputs and ``data:`` URIs hold it."""
    return base64.b64encode(figure_png(fig, dpi)).decode("ascii")


def img_tag(fig: Figure | str, alt: str, dpi: int = DPI) -> str:
    """An ``<img>`` with the figure embedded (a figure, or its :func:`png_base64` already)."""
    data = fig if isinstance(fig, str) else png_base64(fig, dpi)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def image_output(fig: Figure | str, text: str, dpi: int = DPI) -> dict:
    """A notebook ``display_data`` output showing the figure (or its base64 PNG) as an image,
    ``text`` for renderers without images."""
    data = fig if isinstance(fig, str) else png_base64(fig, dpi)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": data, "text/plain": text}}


def html_output(markup: str, text: str) -> dict:
    """A notebook ``display_data`` output showing HTML, ``text`` for plain-text renderers."""
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": markup, "text/plain": text}}


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole: a reader never sees half a page. Returns the
    path."""
    path = Path(path)
    with atomic_file(path, "w") as f:
        f.write(text)
    return path
