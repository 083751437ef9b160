"""The playground driven through its widgets, on the quick subset of the real data."""

import time

import pytest

from fmnist_helpers import trainer, widgets
from fmnist_helpers.runs import resolve
from fmnist_helpers.settings import settings
from fmnist_helpers.study import STUDY
from fmnist_helpers.widgets import FOCUS, Playground, playground

TIMEOUT = 120  # generous: the test machine may be busy


@pytest.fixture(autouse=True)
def quick_env(monkeypatch, quick_data):
    monkeypatch.setenv("FMNIST_QUICK", "1")


def _image(output) -> str:
    (image,) = [o["data"]["image/png"] for o in output.outputs if "image/png" in o["data"]]
    return image


def test_presets_fill_every_knob():
    for name, experiment in STUDY.items():
        pg = playground(name)
        assert pg.quick  # from FMNIST_QUICK
        assert pg.experiment() == resolve(experiment, settings(True))
    pg = playground("deeper")
    pg.preset.value = "mixed"
    assert (pg.depth.value, pg.width.value, pg.batch_norm.value, pg.dropout.value) == (
        4, 50, True, 0.2)
    assert pg.early_stopping.value == "test" and pg.epochs.value == 4


def test_presets_warn_only_when_they_really_clamp():
    import itertools

    for first, second in itertools.permutations(STUDY, 2):
        pg = playground(first)
        pg.preset.value = second
        assert "depth set to 2" not in pg.status.value, (first, second)
        assert pg.depth.value == STUDY[second].n_linear
    pg = playground("shallow")
    pg.depth.value = 1
    pg.batch_norm.value = True  # a real clamp: batch norm needs a hidden layer
    assert "depth set to 2" in pg.status.value and pg.depth.value == 2


def test_every_display_carries_a_static_copy():
    pg = playground("deeper", focus="depth")
    bundle = pg._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "preset deeper" in bundle["text/html"] and "depth 8" in bundle["text/html"]
    assert "VBox" not in bundle["text/plain"]
    pg.epochs.value = 1
    assert pg.run_now() is pg and pg.error is None, pg.error
    html = pg.static_html()
    assert "data:image/png;base64," in html  # the run's curves, as an image
    for tab in pg.learned_tabs.children:  # per class, confusions, first layer
        assert _image(tab)
    assert "<table" in html and "finished" in html  # the runs table, as HTML


def test_train_through_the_widgets_draws_curves_and_fills_the_table():
    pg = playground("shallow", focus="depth")
    assert "quick subset" in pg.data_note
    assert pg.plot_output.outputs == () and pg.table_output.outputs == ()
    pg.depth.value, pg.width.value, pg.epochs.value = 4, 16, 2
    pg.train_button.click()
    assert pg.wait(TIMEOUT), "the run did not finish"
    assert pg.error is None, pg.error
    (run,) = pg.runs
    assert len(run.history) == 2 and run.outcome == "finished"
    assert run.experiment.n_linear == 4 and run.experiment.hidden == 16
    assert run.label == "1. shallow: depth 4, width 16"
    first_plot = _image(pg.plot_output)
    assert len(pg.runs_frame()) == 1
    assert "depth 4, width 16" in pg.table_output.outputs[0]["data"]["text/html"]
    assert "finished" in pg.status.value
    assert not pg.train_button.disabled and pg.stop_button.disabled

    pg.dropout.value = 0.5
    pg.train_button.click()
    assert pg.wait(TIMEOUT) and pg.error is None, pg.error
    assert len(pg.runs) == 2 and len(pg.runs_frame()) == 2
    assert list(pg.runs_frame()["dropout"]) == [0.0, 0.5]
    assert _image(pg.plot_output) != first_plot  # redrawn for the new run
    assert _image(pg.table_output)  # the overlay of both runs


def test_stop_ends_the_run_between_batches_and_keeps_the_weights():
    pg = playground("shallow")
    pg.epochs.value = 50
    pg.train_button.click()
    deadline = time.monotonic() + TIMEOUT
    while pg.progress.value == 0 and pg.running and time.monotonic() < deadline:
        time.sleep(0.01)
    pg.stop_button.click()
    assert pg.wait(TIMEOUT), "Stop did not end the run"
    (run,) = pg.runs
    assert run.history.interrupted and len(run.history) < 50
    assert run.outcome == "stopped by you" and "stopped by you" in pg.status.value
    assert 0 <= run.test_acc <= 1 and len(pg.runs_frame()) == 1
    assert run.model is not None and not pg.running


def test_invalid_combinations_are_out_of_reach():
    pg = playground("shallow")
    assert pg.width.min == 1 and pg.depth.min == 1 and pg.dropout.max < 1
    pg.dropout.value = 1.0
    assert pg.dropout.value == widgets.MAX_DROPOUT
    pg.depth.value = 1
    pg.batch_norm.value = True  # batch norm needs a hidden layer
    assert pg.depth.min == 2 and pg.depth.value == 2
    assert "depth set to 2" in pg.status.value
    pg.depth.value = 1
    assert pg.depth.value == 2
    pg.batch_norm.value = False
    pg.depth.value = 1
    assert pg.experiment().n_linear == 1  # a plain linear classifier is allowed
    with pytest.raises(ValueError, match="unknown focus"):
        playground(focus="colour")
    with pytest.raises(ValueError, match="unknown preset"):
        playground("tiny")


def test_training_error_is_shown_in_the_status(monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(trainer, "train_one", fail)
    pg = playground("shallow")
    pg.train_button.click()
    assert pg.wait(TIMEOUT)
    assert isinstance(pg.error, RuntimeError)
    assert "RuntimeError: out of memory" in pg.status.value
    assert pg.runs == [] and not pg.train_button.disabled


def test_a_diverging_run_says_so():
    pg = playground("shallow")
    pg.lr.options = [*pg.lr.options, ("1000", 1000.0)]
    pg.lr.value, pg.l2.value = 1000.0, 1e-2
    pg.train_button.click()
    assert pg.wait(TIMEOUT) and pg.error is None
    (run,) = pg.runs
    assert run.outcome.startswith("diverged") and "Lower the learning rate" in pg.status.value


def test_focus_puts_the_sections_knobs_first_and_displays_itself():
    for focus, (names, _) in FOCUS.items():
        pg = playground(focus=focus)
        box = next(c for c in pg.widget.children if "fmnist-focus" in c._dom_classes)
        assert box.children[1:] == tuple(getattr(pg, n) for n in names)
    pg = playground("deeper", focus="depth")
    assert "depth" in pg.widget.children[2].children[0].value
    assert "application/vnd.jupyter.widget-view+json" in pg._repr_mimebundle_()
    assert isinstance(pg, Playground)


def test_every_section_notebook_ends_with_a_playground_focused_on_it():
    import re
    from pathlib import Path

    import nbformat

    notebooks = sorted((Path(__file__).parent.parent / "notebooks").glob("0[1-7]_*.ipynb"))
    assert len(notebooks) == 7
    for path in notebooks:
        code = [c.source for c in nbformat.read(path, as_version=4).cells
                if c.cell_type == "code"]
        call = next((s for s in code if "playground(" in s), None)
        assert call is not None, f"{path.name} has no playground cell"
        preset, focus = re.search(r'playground\("(\w+)", focus="([\w ]+)"\)', call).groups()
        namespace: dict = {}
        exec(f'from fmnist_helpers.widgets import playground\npg = playground("{preset}", '
             f'focus="{focus}")', namespace)
        assert namespace["pg"].preset.value == preset and namespace["pg"].focus == focus


def test_early_stopping_on_a_validation_split_through_the_widgets():
    pg = playground("early_stopping_val")
    assert pg.early_stopping.value == "validation" and pg.epochs.value == 4
    pg.train_button.click()
    assert pg.wait(TIMEOUT) and pg.error is None, pg.error
    (run,) = pg.runs
    assert 1 <= len(run.history) <= 4 and "val_loss" in run.history.rows[0]
    assert run.experiment.early_stopping == "validation"


def test_on_grid_settings_show_the_grids_curves_at_once(monkeypatch):
    from fmnist_helpers import explorer

    explorer.grid_results(config=settings(quick=True))  # the quick grid, cached
    pg = playground("shallow")
    assert "From the grid" in pg.status.value and _image(pg.plot_output)
    assert "2 seeds" in pg.status.value and not pg.runs  # shown, not trained

    def no_training(*args, **kwargs):
        raise AssertionError("an on-grid setting must show without training")

    monkeypatch.setattr(trainer, "train_one", no_training)
    pg.width.value = 50  # another point of the quick grid
    assert "From the grid" in pg.status.value
    pg.plot_output.outputs = ()
    pg.width.value = 13  # off the grid: nothing to show until Train
    assert pg.plot_output.outputs == ()
    pg.lr.value = 0.05
    pg.width.value = 50  # on the grid's shape but not its recipe
    assert pg.plot_output.outputs == ()


def test_train_pressed_twice_trains_once():
    pg = playground("shallow")
    pg.epochs.value = 1
    pg.train_button.click()
    pg.start()  # a second press while the first run trains: ignored
    assert pg.wait(TIMEOUT) and pg.error is None, pg.error
    assert len(pg.runs) == 1
    assert not pg.train_button.disabled and pg.stop_button.disabled


def test_stop_during_the_evaluation_ends_cleanly(monkeypatch):
    """Stop pressed while the epoch's evaluation runs: the run ends after it, buttons reset."""
    from fmnist_helpers import engine

    pg = playground("shallow")
    pg.epochs.value = 5
    real = engine.Stack.evaluate

    def evaluate_and_press_stop(self, *args, **kwargs):
        pg.stop()  # the reader presses Stop in the middle of the evaluation
        return real(self, *args, **kwargs)

    monkeypatch.setattr(engine.Stack, "evaluate", evaluate_and_press_stop)
    pg.train_button.click()
    assert pg.wait(TIMEOUT) and pg.error is None, pg.error
    (run,) = pg.runs
    assert run.outcome == "stopped by you" and len(run.history) <= 1
    assert not pg.train_button.disabled and pg.stop_button.disabled and not pg.running
