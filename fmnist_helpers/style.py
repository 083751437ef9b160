"""One plotting style for the whole report: the notebooks' figures, the playground, the index.

Series differ in colour AND line style (and marker), so they stay apart in print, in grey and
for colour-blind readers; mid-tone colours read on white and on a dark background. Every
figure carries a one-line caption under it saying what to look at (:func:`caption`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import matplotlib as mpl
from matplotlib.figure import Figure

# Seaborn's colour-blind palette, first six colours.
PALETTE = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P")
REFERENCE = {"color": "#555555", "linestyle": "-", "marker": "o"}  # what others are read against

TRAIN_STYLE = {"color": PALETTE[0], "linestyle": "-", "marker": "o", "markersize": 3}
TEST_STYLE = {"color": PALETTE[1], "linestyle": "--", "marker": "s", "markersize": 3}
VAL_STYLE = {"color": PALETTE[2], "linestyle": ":", "marker": "^", "markersize": 3}
COLLAPSED_STYLE = {"color": PALETTE[3], "linestyle": ":", "linewidth": 1}

RC = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "font.size": 9,
}
MAX_SERIES = len(PALETTE)


def series(i: int) -> dict:
    """The ``i``-th series' colour, line style and marker (at most :data:`MAX_SERIES`)."""
    if not 0 <= i < MAX_SERIES:
        raise ValueError(f"a panel holds at most {MAX_SERIES} series, asked for series {i + 1}")
    return {"color": PALETTE[i], "linestyle": LINESTYLES[i], "marker": MARKERS[i]}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The report's style for the figures drawn inside, then the settings as they were.

    Only the keys of :data:`RC` are set and restored. (``matplotlib.rc_context`` restores every
    setting, ``interactive`` and ``backend`` included, which stops Jupyter's inline backend
    from showing any figure drawn after the first.)
    """
    saved = {key: mpl.rcParams[key] for key in RC}
    mpl.rcParams.update(RC)
    try:
        yield
    finally:
        mpl.rcParams.update(saved)


def styled(plot: Callable) -> Callable:
    """Decorator: draw a figure under the report's style."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with style():
            return plot(*args, **kwargs)

    return wrapper


def caption(fig: Figure, text: str) -> Figure:
    """Write a one-line caption under the figure (saved with ``bbox_inches="tight"``)."""
    fig.text(0.5, 0, text, ha="center", va="top", fontsize=9, style="italic", wrap=True,
             color="#333333")
    return fig
