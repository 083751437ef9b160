"""The playground driven through its widgets, on the quick subset of the real data."""

import html
import time
from types import SimpleNamespace

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


def test_the_new_knobs_set_the_experiment_and_show_in_the_runs_table():
    from fmnist_helpers.constraints import ACTIVATIONS, MAX_BATCH, MIN_BATCH, OPTIMIZERS

    pg = playground("shallow")
    assert [v for _, v in pg.activation.options] == list(ACTIVATIONS)
    assert [v for _, v in pg.optimizer.options] == list(OPTIMIZERS)
    sizes = [v for _, v in pg.batch_size.options]
    assert (sizes[0], sizes[-1]) == (MIN_BATCH, MAX_BATCH) and pg.batch_size.value == 32
    lrs = [v for _, v in pg.lr.options]
    assert lrs == sorted(lrs) and lrs[0] <= 1e-4 and lrs[-1] == 1.0
    assert pg.experiment().train_size is None  # the slider's "all 60,000"
    pg.activation.value, pg.optimizer.value = "tanh", "adam"
    pg.lr.value, pg.batch_size.value, pg.train_size.value = 0.001, 64, 5_000
    pg.epochs.value = 1
    e = pg.experiment()
    assert (e.activation, e.optimizer, e.lr, e.batch_size, e.train_size) == (
        "tanh", "adam", 0.001, 64, 5_000)
    assert e.numbers_key() != STUDY["shallow"].numbers_key()  # recorded in the cache key
    pg.run_now()
    assert pg.error is None, pg.error
    (run,) = pg.runs
    assert run.experiment == e and run.outcome == "finished"
    assert "act tanh, opt adam, lr 0.001, batch 64, images 5000" in run.label
    row = pg.runs_frame().iloc[0]
    assert (row["act"], row["opt"], row["batch"], row["images"]) == ("tanh", "adam", 64, 5000)
    table = pg.table_output.outputs[0]["data"]["text/html"]
    assert "act tanh, opt adam" in table and "batch 64" in table and "images 5000" in table
    pg.preset.value = "deeper"  # presets put the study's recipe back
    assert pg.experiment() == resolve(STUDY["deeper"], settings(True))


def test_settings_string_round_trip_and_errors():
    from fmnist_helpers import share

    text = "depth=4&width=20&dropout=0.2&act=tanh&opt=adam&bs=64&lr=0.001&n=5000&seed=7"
    pg = playground(settings=text)
    assert (pg.depth.value, pg.width.value, pg.dropout.value, pg.activation.value,
            pg.optimizer.value, pg.batch_size.value, pg.lr.value, pg.train_size.value,
            pg.seed.value) == (4, 20, 0.2, "tanh", "adam", 64, 0.001, 5_000, 7)
    shown = pg.settings_string()
    assert shown.startswith(text.removesuffix("&seed=7")) and shown.endswith("&seed=7")
    again = playground("deeper", settings=shown)
    assert again.experiment().numbers_key() == pg.experiment().numbers_key()
    assert again.settings_string() == shown
    assert share.decode(share.encode(share.decode(shown))) == share.decode(shown)
    assert "depth=4&amp;width=20" in pg.share.note.value
    assert "explorer.html#depth=4&amp;width=20&amp;dropout=0.2" in pg.share.note.value
    assert share.decode("explorer.html#depth=8&width=10&dropout=0&n=all&es=off&bn=off") == {
        "n_linear": 8, "hidden": 10, "dropout": 0.0, "train_size": None,
        "early_stopping": None, "batch_norm": False}
    assert share.decode("n=60000") == {"train_size": None}  # every image: one cache key
    for bad, message in (("depth=0", "depth .* must be a whole number >= 1, got 0"),
                         ("colour=red", "unknown key 'colour'; the keys are depth"),
                         ("bs=1000", "bs .*batch size.* from 8 to 512"),
                         ("act=elu", "act .* 'relu', 'tanh'.*got 'elu'"),
                         ("opt=rmsprop", "'sgd', 'momentum'"),
                         ("n=1234", "multiple of 10"),
                         ("lr=fast", "lr='fast' is not a number"),
                         ("depth=3&depth=4", "'depth' is given twice"),
                         ("bn=yes", "bn='yes' is not on or off"),
                         ("lr", "'lr' has no value")):
        with pytest.raises(ValueError, match=message):
            share.decode(bad)
    with pytest.raises(ValueError, match="batch norm needs"):
        playground(settings="depth=1&bn=on")
    with pytest.raises(ValueError, match="beyond the playground's depth slider"):
        playground(settings="depth=20")
    before = pg.experiment()
    pg.share.text.value = "act=elu"  # typed into the box: said in the status, no knob moves
    assert "got &#x27;elu&#x27;" in pg.status.value and pg.experiment() == before
    pg.share.text.value = "act=sigmoid&opt=momentum"
    assert pg.activation.value == "sigmoid" and pg.optimizer.value == "momentum"
    assert "Settings applied" in pg.status.value


def test_copy_as_code_builds_the_same_experiment(monkeypatch):
    from fmnist_helpers import seeds

    pg = playground("mixed", settings="act=leaky_relu&opt=momentum&lr=0.02&bs=128&n=10000")
    code = pg.share.code.value
    assert "load_or_train(mine)" in code and "Experiment(" in code
    calls = []
    monkeypatch.setattr(seeds, "load_or_train", lambda *names, **kw: calls.append(names)
                        or [SimpleNamespace(summary=lambda: None)])  # no training here

    source = html.unescape(code.split("<pre", 1)[1].split(">", 1)[1].split("</pre>")[0])
    namespace: dict = {}
    exec(source, namespace)
    ((built,),) = calls  # the experiment handed to the loader
    assert built.numbers_key() == pg.experiment().numbers_key()
    assert (built.activation, built.optimizer, built.batch_size, built.train_size) == (
        "leaky_relu", "momentum", 128, 10_000)
