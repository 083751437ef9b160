"""The package's layering: what each low module may import, where the environment is read,
the engine's stopping-rule protocol that the planner's trajectories implement, how long a module
may grow, and the README's pictures."""

import ast
import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fmnist_helpers
from fmnist_helpers import runs
from fmnist_helpers.engine import EarlyStopping, Member, StoppingRule
from fmnist_helpers.planner import Trajectory
from fmnist_helpers.study import READINGS, STUDY

PACKAGE = Path(fmnist_helpers.__file__).parent

LOADED = """
import importlib, json, sys, types
found = {}
for module in sys.argv[2:]:
    for name in [n for n in sys.modules if n.split(".")[0] == "fmnist_helpers"]:
        del sys.modules[name]
    package = types.ModuleType("fmnist_helpers")  # the module alone, not the package's __init__
    package.__path__ = [sys.argv[1]]
    sys.modules["fmnist_helpers"] = package
    importlib.import_module("fmnist_helpers." + module)
    found[module] = sorted(n.split(".", 1)[1] for n in sys.modules
                           if n.startswith("fmnist_helpers."))
print(json.dumps(found))
"""
CHECKED = ["settings", "constraints", "history", "results", "seeds", "tables", "analysis",
           "findings", "verdicts", "lessons", "plots", "learned", "render", "grid", "explorer",
           "pages", "knobs"]
MAX_LINES = 450  # longer, a module is split by its jobs, or its docstring says "Long on purpose"


@functools.cache
def _loaded() -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", LOADED, str(PACKAGE), *CHECKED],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def loaded_with(module: str) -> set[str]:
    """The package's modules that importing ``module`` alone loads (in a fresh interpreter,
    torch aside)."""
    return set(_loaded()[module])


@pytest.mark.parametrize("module, allowed", [
    ("settings", {"settings"}),
    ("constraints", {"constraints"}),
    ("history", {"history"}),
    ("results", {"results", "history", "constraints", "settings", "data", "models", "study",
                 "kernels"}),
])
def test_the_low_modules_import_nothing_above_them(module, allowed):
    """Settings sit on the ground floor; results are read without the engine or the planner."""
    assert loaded_with(module) <= allowed


@pytest.mark.parametrize("module", ["seeds", "tables", "analysis", "findings", "verdicts",
                                    "lessons", "plots", "learned", "render", "grid", "explorer",
                                    "pages", "knobs"])
def test_statistics_figures_and_pages_read_results_without_the_trainer(module):
    """Presentation draws what it is given; only the loaders that say so (seeds.load_or_train,
    findings.load_or_train, grid.grid_results) import the trainer, inside the call."""
    assert not loaded_with(module) & {"engine", "planner", "bridge", "runs", "trainer"}


def test_no_module_grows_past_its_jobs():
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text()
        lines = len(text.splitlines())
        if lines > MAX_LINES:
            assert "Long on purpose" in (ast.get_docstring(ast.parse(text)) or ""), (
                f"{path.name}: {lines} lines; split it by job, or say why in its docstring")


def test_the_readmes_pictures_are_there_and_small():
    """The index, a section and the explorer (python -m fmnist_helpers.screenshots)."""
    root = PACKAGE.parent
    images = re.findall(r"\]\((docs/images/[^)]+)\)", (root / "README.md").read_text())
    assert len(images) >= 3
    for image in images:
        assert (root / image).is_file(), image
        assert (root / image).stat().st_size <= 150_000, image


def test_the_fmnist_variables_are_read_in_settings_only():
    kept = {"kernels.py": {"FMNIST_KERNELS"},  # read before torch, by the kernels' own module
            "data.py": {"FMNIST_DATA_DIR", "FMNIST_ALLOW_NONCANONICAL"},  # the loader's own
            "bench.py": {"FMNIST_RESULTS_DIR"}}  # saved, to be restored after a benchmark
    for path in PACKAGE.glob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text()
        read = set(re.findall(r'environ(?:\.get)?\(\s*"(FMNIST_\w+)"', text))
        read |= set(re.findall(r'environ\["(FMNIST_\w+)"\](?!\s*=)', text))
        assert read <= kept.get(path.name, set()), (path.name, read)


def test_runs_keeps_every_name_it_had():
    for name in ("Result", "Artifacts", "cache_path", "results_dir", "write_atomic",
                 "artifacts_path", "clean_leftovers", "load_cached", "cached_results",
                 "versions", "CACHE_VERSION", "ARTIFACTS_VERSION", "RESULTS_DIR", "resolve",
                 "validation_rows", "shape_of", "member_for", "train_one", "get_data",
                 "check_seed", "MAX_SEED", "VALIDATION_FRACTION", "Trajectory", "plan", "cost",
                 "train_runs", "MAX_STACK", "MAX_UNITS", "STOP_GUESS", "run_experiment",
                 "study_results"):
        assert hasattr(runs, name), name


def test_early_stopping_and_trajectories_are_stopping_rules():
    rule = EarlyStopping(patience=1)
    trajectory = Trajectory(0, [STUDY["shallow"], STUDY["early_stopping"],
                                READINGS["early_stopping_w10_delta0.001"]])
    assert isinstance(rule, StoppingRule) and isinstance(trajectory, StoppingRule)
    assert not any(rule.run_ends_at(epoch) for epoch in range(1, 60))
    assert trajectory.best_epoch is None  # each run on it has its own
    for epoch, loss in enumerate([1.0, 0.9, 0.85, 0.84, 0.84, 0.84, 0.84], 1):
        trajectory.step(loss, epoch)
    ended = [end[0] for end in trajectory.ends if end is not None]
    assert all(trajectory.run_ends_at(e) for e in ended)
    assert not trajectory.run_ends_at(max(ended) + 1)
    Member(0, early_stopping=trajectory)
    with pytest.raises(TypeError, match="StoppingRule"):
        Member(0, early_stopping="test")
