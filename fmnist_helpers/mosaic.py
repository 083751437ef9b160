"""Many small images as one mosaic: tiled into a single array, drawn with one ``imshow``.

One image with labelled tiles draws far faster than one matplotlib axes per small image (60
axes took seconds to lay out and render). The tiles are separated by white (NaN) pixels, with a
band of white above each row where the tiles' labels are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

TILE_GAP = 1  # white pixels between two tiles side by side
LABEL_BAND = 6  # white pixels above each row of tiles, where their labels are written


def check_columns(columns: int) -> int:
    """``columns`` (tiles to a row), checked: a whole number >= 1."""
    if isinstance(columns, bool) or int(columns) != columns or columns < 1:
        raise ValueError(f"columns must be a whole number >= 1, got {columns!r}")
    return int(columns)


def mosaic(images: np.ndarray, columns: int) -> np.ndarray:
    """``images`` ``(n, h, w)`` tiled row by row, ``columns`` to a row, as one 2-D array: NaN
    (drawn white) in the gaps, in the label band above each row and in the empty slots."""
    images = np.asarray(images, dtype=float)
    if images.ndim != 3:
        raise ValueError(f"images must be (n, height, width), got shape {images.shape}")
    n, height, width = images.shape
    columns = check_columns(columns)
    step_x, step_y = width + TILE_GAP, height + LABEL_BAND
    tiled = np.full((max(1, -(-n // columns)) * step_y, columns * step_x - TILE_GAP), np.nan)
    for k, image in enumerate(images):
        top, left = (k // columns) * step_y + LABEL_BAND, (k % columns) * step_x
        tiled[top:top + height, left:left + width] = image
    return tiled


def draw_mosaic(ax: Axes, images: np.ndarray, labels: list[str], columns: int, cmap: str,
                limits: tuple[float, float]) -> AxesImage:
    """``images`` as one :func:`mosaic` on ``ax`` (NaN white, no frame), each label written
    above its tile; returns the image (for a colorbar)."""
    if len(labels) != len(images):
        raise ValueError(f"one label per image: got {len(labels)} labels for {len(images)} "
                         "images")
    ax.axis("off")
    colours = plt.get_cmap(cmap).with_extremes(bad="white")
    shown = ax.imshow(mosaic(images, columns), cmap=colours, vmin=limits[0], vmax=limits[1],
                      interpolation="nearest")
    height, width = np.shape(images)[1:]
    for k, label in enumerate(labels):  # just above the tile's top edge, centred
        ax.text((k % columns) * (width + TILE_GAP) + (width - 1) / 2,
                (k // columns) * (height + LABEL_BAND) + LABEL_BAND - 1, label,
                ha="center", va="bottom", fontsize=7, color="black",
                in_layout=False)  # inside the image: no need to measure it for the layout
    return shown
