"""The chapters' prose: no paragraph twice, guarded hand-written claims, the explorer's links,
the 50-unit evidence, and exercises at the end of every section."""

import re
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from fmnist_helpers import evidence, seeds

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SECTIONS = [p for p in NOTEBOOKS if p.name[:2] in {f"0{i}" for i in range(1, 8)}]
MIN_WORDS = 12


def markdown_of(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "markdown"]


def paragraphs(text: str) -> list[str]:
    """The paragraphs of a Markdown text (split at blank lines), whitespace made single."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def repeated_paragraphs(notebooks: dict[str, list[str]]) -> dict[str, list[str]]:
    """Paragraphs of at least MIN_WORDS words found in two or more notebooks, with where."""
    where = defaultdict(set)
    for name, cells in notebooks.items():
        for cell in cells:
            for p in paragraphs(cell):
                if len(p.split()) >= MIN_WORDS:
                    where[p].add(name)
    return {p: sorted(names) for p, names in where.items() if len(names) > 1}


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 9 and len(SECTIONS) == 7


def test_no_paragraph_appears_in_two_notebooks():
    found = repeated_paragraphs({p.name: markdown_of(p) for p in NOTEBOOKS})
    assert not found, "\n\n".join(f"{names}: {p}" for p, names in found.items())


def test_the_repeat_check_finds_a_repeat():
    text = "One paragraph long enough to count, with twelve words or more in it here."
    found = repeated_paragraphs({"a": [text + "\n\nShort."], "b": ["Other.\n\n" + text]})
    assert list(found.values()) == [["a", "b"]]
    assert not repeated_paragraphs({"a": ["Short line."], "b": ["Short line."]})


def test_every_section_ends_with_exercises_that_say_what_to_look_for():
    for path in SECTIONS:
        cells = markdown_of(path)
        exercises = [c for c in cells if c.startswith("### Exercises")]
        assert len(exercises) == 1, path.name
        items = re.findall(r"^\d+\. ", exercises[0], flags=re.M)
        assert 2 <= len(items) <= 3, path.name
        assert exercises[0].count("*Look for*") == len(items), path.name


def test_the_mode_line_is_shown_once_in_the_notebooks():
    shown = [p.name for p in NOTEBOOKS
             if any("describe.mode_line()" in c.source for c in nbformat.read(p, as_version=4).cells
                    if c.cell_type == "code")]
    assert shown == ["00_data.ipynb"]


# ---------------------------------------------------------------------------------------------
# Guarded claims
# ---------------------------------------------------------------------------------------------

def test_a_claim_that_holds_is_shown_as_written():
    assert evidence.claim("Width helps.", holds=True) == "Width helps."


def test_a_contradicted_claim_stops_the_notebook_in_full_settings():
    with pytest.raises(evidence.ContradictedClaim, match="gain above 0.*Width helps"):
        evidence.claim("Width helps.", holds=False, why="gain above 0", strict=True)


def test_a_contradicted_claim_is_marked_in_quick_mode(monkeypatch):
    monkeypatch.setenv("FMNIST_QUICK", "1")
    text = evidence.claim("Width helps.", holds=False, why="gain above 0")
    assert text.startswith("~~Width helps.~~") and "not borne out" in text


def test_only_the_committed_outputs_mode_stops_on_a_contradicted_claim(monkeypatch):
    monkeypatch.setenv("FMNIST_QUICK", "0")
    monkeypatch.setenv("FMNIST_KERNELS", "portable")
    with pytest.raises(evidence.ContradictedClaim):  # full, portable, the default 5 seeds
        evidence.claim("Width helps.", holds=False)
    monkeypatch.setenv("FMNIST_SEEDS", "10")  # other seeds may say otherwise: marked, not fatal
    assert "not borne out" in evidence.claim("Width helps.", holds=False)


def test_a_claim_needs_its_check():
    with pytest.raises(TypeError, match="holds must be True or False"):
        evidence.claim("Width helps.", holds="yes")
    with pytest.raises(ValueError, match="empty text"):
        evidence.claim("  ", holds=True)


# ---------------------------------------------------------------------------------------------
# The explorer's grid, cited
# ---------------------------------------------------------------------------------------------

def test_the_link_to_a_setting_has_one_format():
    assert evidence.explorer_link(8, 10, 0.0) == "explorer.html#depth=8&width=10&dropout=0"
    assert evidence.explorer_link(3, 50, 0.2) == "explorer.html#depth=3&width=50&dropout=0.2"


def fake_point(depth, width, dropout, accs, dead=0):
    runs = [SimpleNamespace(seed=s) for s in range(len(accs))]
    kept = accs[dead:] or accs
    return SimpleNamespace(depth=depth, width=width, dropout=dropout, runs=runs,
                           collapsed=runs[:dead], mean=lambda _c, k=kept: sum(k) / len(k))


@pytest.fixture
def small_grid(monkeypatch):
    """A grid of made-up accuracies: depth 3 or 8, width 10 or 50, dropout 0 or 0.2."""
    acc = {(3, 10, 0.0): [0.84, 0.84], (3, 10, 0.2): [0.80, 0.81], (3, 50, 0.0): [0.87, 0.87],
           (3, 50, 0.2): [0.86, 0.86], (8, 10, 0.0): [0.10, 0.78], (8, 10, 0.2): [0.1, 0.1],
           (8, 50, 0.0): [0.86, 0.86], (8, 50, 0.2): [0.80, 0.79]}
    points = {(d, w, p, False): fake_point(d, w, p, a, dead=int(a[0] < 0.2))
              for (d, w, p), a in acc.items()}
    monkeypatch.setattr(evidence, "_points", lambda grid: points)
    return [SimpleNamespace(seed=0, quick=False), SimpleNamespace(seed=1, quick=False)]


def test_depth_width_and_dropout_are_read_off_the_grid(small_grid):
    cost = evidence.depth_cost(small_grid)
    assert cost[10] == pytest.approx(0.84 - 0.78) and cost[50] == pytest.approx(0.01)
    assert evidence.width_gain(small_grid)[8] == pytest.approx(0.86 - 0.78)
    assert evidence.dropout_cost(small_grid)[10] == pytest.approx(0.84 - 0.805)
    text = evidence.explorer_depth(small_grid)
    assert "[8 layers](explorer.html#depth=8&width=10&dropout=0)" in text
    assert "(1 of 2 seeds collapsed, left out)" in text and "6.0 points lower" in text
    text = evidence.explorer_dropout(small_grid)
    assert "at width 10 dropout costs 3.5 points" in text
    assert "explorer.html#depth=3&width=50&dropout=0.2" in text
    assert "explorer.html#depth=8" in evidence.explorer_width(small_grid)


def test_a_setting_off_the_grid_is_named(small_grid):
    with pytest.raises(ValueError, match="no runs at depth 4, width 10"):
        evidence.depth_cost(small_grid, deep=4)


# ---------------------------------------------------------------------------------------------
# The 50-unit evidence
# ---------------------------------------------------------------------------------------------

def test_the_fifty_unit_reading_is_set_beside_the_study():
    ten, fifty = seeds.load_or_train("dropout", "dropout_w50")
    text = evidence.width_evidence(ten, fifty)
    assert "the study reports 86.3% running train accuracy" in text
    assert "(the study's numbers, one run)" in text and "with 50 units runs at" in text
    assert "Quick-mode runs cannot be set against the study's numbers" in text
    assert isinstance(evidence.nearer_fifty(ten, fifty), bool)
    with pytest.raises(ValueError, match="widths 50 and 10"):
        evidence.width_evidence(fifty, ten)


def test_counts_of_readings_are_said_as_words_read_them():
    from fmnist_helpers.lessons import _readings_allow

    none = "None of the 4 readings tried allows the study's 38 epochs"
    assert _readings_allow(4, 0, 0, 38) == none
    text = _readings_allow(8, 6, 2, 16)
    assert text.startswith("Of the 8 readings tried, 6 allow the study's 16 epochs")
    assert text.endswith("and 2 of them its accuracy as well")
    assert _readings_allow(3, 3, 3, 16).startswith("All 3 readings tried allow")
    assert _readings_allow(3, 1, 0, 16).endswith("that one not its accuracy")
    assert " 0 of " not in " ".join(_readings_allow(n, k, f, 16) for n in (1, 4) for k in
                                    range(n + 1) for f in range(k + 1))
