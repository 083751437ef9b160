"""The "try it" cells that end each section notebook: the playground, preset to that section.

``python scripts/add_try_it.py notebooks/0[1-7]_*.ipynb`` adds them: a short markdown cell
and a code cell, before the notebook's closing navigation cell ("---" then Previous / Next).
The section is read from the file name (``01_depth.ipynb`` -> depth). Running it twice changes
nothing: a notebook that already calls the playground is left alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from fmnist_helpers.widgets import FOCUS

# section -> (the study's preset to start from, what the focused knob is called)
TRY_IT: dict[str, tuple[str, str]] = {
    "depth": ("deeper", "the depth slider"),
    "width": ("wide", "the width slider"),
    "dropout": ("dropout", "the dropout slider"),
    "early stopping": ("early_stopping", "the early-stopping switch"),
    "batch norm": ("batch_norm", "the batch-norm switch"),
    "regularization": ("l2", "the L1 and L2 strengths"),
    "mixed": ("mixed", "each ingredient in turn"),
}
assert set(TRY_IT) == set(FOCUS)


def try_it_sources(section: str) -> tuple[str, str]:
    """The markdown and the code of the "try it" cells for one section of the study."""
    preset, knob = TRY_IT[section]
    markdown = (
        f"**Try it.** The playground below starts from this section's model with {knob} first. "
        "Change it, press **Train**, and compare your runs in its table. "
        "([9. Playground](09_playground.ipynb) explains every knob.)"
    )
    code = f'from fmnist_helpers.widgets import playground\n\nplayground("{preset}", ' \
           f'focus="{section}")'
    return markdown, code


def section_of(path: Path) -> str:
    """The study section a notebook covers, from its name: ``04_early_stopping`` -> ``early
    stopping``."""
    name = path.stem.split("_", 1)[-1].replace("_", " ")
    if name not in TRY_IT:
        raise ValueError(f"{path.name}: no section of the study is called {name!r}")
    return name


def add_try_it(path: str | Path) -> bool:
    """Add the "try it" cells to a section notebook; return False if it already had them."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if any("playground(" in cell.source for cell in nb.cells if cell.cell_type == "code"):
        return False
    markdown, code = try_it_sources(section_of(path))
    cells = [nbformat.v4.new_markdown_cell(markdown), nbformat.v4.new_code_cell(code)]
    at = len(nb.cells)
    if nb.cells and nb.cells[-1].cell_type == "markdown" and \
            nb.cells[-1].source.lstrip().startswith("---"):
        at -= 1  # before the closing navigation links
    nb.cells[at:at] = cells
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return True


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"{arg}: {'added' if add_try_it(arg) else 'already there'}")
