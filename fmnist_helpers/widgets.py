"""An interactive playground: pick depth, width, dropout and the study's other knobs, train on
the real Fashion-MNIST, watch the curves redraw every epoch, and compare the runs in a table.

``playground()`` returns a :class:`Playground` whose widgets are its attributes. Training runs in
a background thread through :func:`fmnist_helpers.engine.train_stack` (the package's one training
loop), so the notebook stays responsive: Stop ends a run between two batches and keeps the
weights learned so far. Figures are drawn on bare matplotlib figures (no pyplot) and shown as
PNG images, so they work from the training thread with the default inline backend, no ipympl.

Every display of the playground also carries a static copy (:meth:`Playground.static_html`:
the settings, the last run's curves as an image and the runs table as HTML), which renderers
without the widget manager (GitHub, nbviewer, the exported report) show instead of the live
controls. It is refreshed after every run.
"""

from __future__ import annotations

import base64
import html
import io
import threading
import time
from dataclasses import dataclass

import ipywidgets as W
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .bridge import train_one
from .constraints import CONSTRAINTS
from .data import N_CLASSES, QUICK_TEST_PER_CLASS, QUICK_TRAIN_PER_CLASS
from .engine import evaluate
from .history import History
from .models import count_parameters
from .plots import plot_history, plot_overlay, plot_seeds_curves
from .results import get_data, resolve
from .settings import settings
from .study import MAX_EPOCHS, STUDY, Experiment
from .style import caption, style

MAX_DEPTH = 10
MAX_WIDTH = 256
MAX_DROPOUT = 0.9  # dropout 1.0 would drop every unit
MAX_SEED_SHOWN = 999_999  # the seed box's largest (any seed up to 2**63 - 1 trains)
LR_CHOICES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
PENALTY_CHOICES = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
EARLY_STOPPING_CHOICES = (  # not None for "off": a dropdown reads None as "nothing selected"
    ("off", "off"),
    ("on test loss (the study's rule)", "test"),
    ("on a validation split", "validation"),
)
LEARNED_TABS = ("per class", "confusions", "first layer")
PROGRESS_EVERY = 20  # batches between two updates of the progress bar
HIGHLIGHT = "2px solid #ff7f0e"

# section of the study -> (knobs to put first and emphasise, what to try)
FOCUS: dict[str, tuple[tuple[str, ...], str]] = {
    "depth": (("depth",), "Try the <b>depth</b> slider: in the study 8 linear layers did worse "
              "than 3 after 10 epochs. Is there a depth that helps? Does batch norm rescue the "
              "deep network?"),
    "width": (("width",), "Try the <b>width</b> slider: 50 units per hidden layer beat 10 in the "
              "study. Where do the gains stop?"),
    "dropout": (("dropout",), "Try the <b>dropout</b> slider: 0.2 narrowed the gap between "
                "train and test in the study. What does 0.5 do to a 10-unit network?"),
    "early stopping": (("early_stopping", "epochs"), "Try <b>early stopping</b> on and off, and "
                       "on a validation split instead of the test set: when does it stop?"),
    "batch norm": (("batch_norm", "depth"), "Try <b>batch norm</b> on and off, on the shallow "
                   "network and on a deep one."),
    "regularization": (("l1", "l2", "l2_first", "lr"), "Try the <b>L1 and L2</b> strengths: how "
                       "strong can a penalty get before the network stops learning?"),
    "mixed": (("batch_norm", "dropout", "early_stopping"), "The <b>mix model</b> turns "
              "everything on. Switch one ingredient off at a time and compare the runs below."),
}
# Experiment field -> short name in run labels and the runs table
FIELD_NAMES = {
    "n_linear": "depth", "hidden": "width", "batch_norm": "batch norm", "dropout": "dropout",
    "lr": "lr", "l1": "L1", "l2": "L2", "l2_first": "L2 first", "epochs": "epochs",
    "early_stopping": "early stopping",
}


@dataclass
class PlaygroundRun:
    """One finished run: its settings, its curves, its final scores and the trained model."""

    label: str
    preset: str
    experiment: Experiment
    seed: int
    history: History
    model: torch.nn.Module
    seconds: float
    train_acc: float
    test_acc: float
    outcome: str

    def row(self) -> dict:
        """The run as a row of :meth:`Playground.runs_frame`."""
        e = self.experiment
        row = {"run": self.label, "preset": self.preset}
        row |= {name: getattr(e, key) for key, name in FIELD_NAMES.items()}
        return row | {
            "seed": self.seed, "params": count_parameters(self.model),
            "epochs trained": len(self.history), "train acc": self.train_acc,
            "test acc": self.test_acc, "seconds": self.seconds, "outcome": self.outcome,
        }


def _show(value) -> str:
    """A setting as a short string: on/off, the early-stopping mode, a number."""
    if isinstance(value, bool) or value is None:
        return "on" if value else "off"
    return value if isinstance(value, str) else f"{value:g}"


def _png_b64(fig: Figure) -> str:
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _png(fig: Figure, text: str) -> dict:
    """A figure as a notebook ``display_data`` output (a PNG image)."""
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": _png_b64(fig), "text/plain": text}}


def _lowest(name: str) -> int:
    """The smallest value of a whole-number knob: the constraints table's (its sliders' min)."""
    return int(CONSTRAINTS[name].low)


def _choice(options: tuple[float, ...], value: float) -> tuple[float, ...]:
    """The options of a selection slider, with ``value`` added if a preset needs it."""
    return tuple(sorted(set(options) | {value}))


class Playground:
    """The playground's widgets, its runs so far, and the thread that trains."""

    def __init__(self, preset: str = "shallow", focus: str | None = None,
                 quick: bool | None = None):
        if preset not in STUDY:
            raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(STUDY)}")
        if focus is not None:
            focus = focus.replace("_", " ")
            if focus not in FOCUS:
                raise ValueError(f"unknown focus {focus!r}; choose one of: {', '.join(FOCUS)}")
        self.settings = settings(quick, progress=False)
        self.quick = self.settings.quick
        self.focus = focus
        self.runs: list[PlaygroundRun] = []
        self.error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._epoch, self._epoch_start = 1, 0.0
        self._handle = None  # the display handle, to refresh the static copy after a run
        self._curves_png: str | None = None  # the last run's curves, for the static copy
        self._runs_html = ""
        self._applying = False  # a preset sets many knobs: preview once, at the end
        self._make_widgets()
        self.preset.value = preset
        self._apply_preset()
        self.widget = self._layout()

    # -- widgets -----------------------------------------------------------------------------
    def _make_widgets(self) -> None:
        style = {"description_width": "120px"}
        wide = W.Layout(width="400px")

        def sel(description, options, tooltip):
            return W.SelectionSlider(description=description, options=[(f"{v:g}", v) for v in
                                     options], style=style, layout=wide, tooltip=tooltip)

        self.preset = W.Dropdown(
            description="preset", style=style, layout=W.Layout(width="520px"),
            options=[(f"{e.title} ({name})", name) for name, e in STUDY.items()],
            tooltip="Fill every knob with one of the study's models",
        )
        self.depth = W.IntSlider(
            description="depth (layers)", min=_lowest("n_linear"), max=MAX_DEPTH, style=style,
            layout=wide,
            tooltip="Linear layers, the classifier included (the study: 3 shallow, 8 deeper)")
        self.width = W.IntSlider(
            description="hidden width", min=_lowest("hidden"), max=MAX_WIDTH, style=style,
            layout=wide,
            tooltip="Units in each hidden layer (the study: 10 or 50)")
        self.dropout = W.FloatSlider(
            description="dropout", min=CONSTRAINTS["dropout"].low, max=MAX_DROPOUT, step=0.05,
            style=style, layout=wide, readout_format=".2f",
            tooltip="Dropout after each hidden layer")
        self.batch_norm = W.Checkbox(
            description="batch norm", style=style, layout=wide,
            tooltip="Batch norm after each hidden ReLU (needs depth >= 2)")
        self.l1 = sel("L1 strength", PENALTY_CHOICES, "l1 * sum |W| added to the loss")
        self.l2 = sel("L2 strength", PENALTY_CHOICES, "l2 * sum W^2 added to the loss")
        self.l2_first = sel("L2 first layer", PENALTY_CHOICES,
                            "L2 penalty on the first layer's weights only")
        self.lr = sel("learning rate", LR_CHOICES, "SGD learning rate (the study: 0.1)")
        self.epochs = W.IntSlider(
            description="epochs", min=_lowest("epochs"), max=MAX_EPOCHS, style=style, layout=wide,
            tooltip="Epochs to train (the most, with early stopping)")
        self.early_stopping = W.Dropdown(
            description="early stopping", options=EARLY_STOPPING_CHOICES, style=style,
            layout=wide, tooltip="Stop when the loss has not fallen by 0.01 for 3 epochs")
        self.seed = W.BoundedIntText(
            description="seed", min=_lowest("seed"), max=MAX_SEED_SHOWN, style=style,
            layout=W.Layout(width="220px"),
            tooltip="Seeds the initial weights, the dropout masks and the batch order")
        self.train_button = W.Button(description="Train", button_style="success", icon="play",
                                     tooltip="Train a model with these settings")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop",
                                    disabled=True, tooltip="Stop between two batches")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="epoch -",
                                      style={"description_width": "90px"},
                                      layout=W.Layout(width="420px"))
        self.status = W.HTML()
        self.plot_output = W.Output(layout=W.Layout(min_height="40px"))
        self.table_output = W.Output()
        self.learned_tabs = W.Tab(children=[W.Output(), W.Output(), W.Output()],
                                  titles=LEARNED_TABS)
        for name in ("depth", "width", "dropout", "batch_norm", "train_button", "stop_button",
                     "status", "plot_output", "table_output", "learned_tabs"):
            getattr(self, name).add_class(f"fmnist-{name.replace('_', '-')}")
        self.preset.observe(self._apply_preset, names="value")
        self.batch_norm.observe(self._batch_norm_changed, names="value")
        for knob in ("depth", "width", "dropout", "batch_norm", "lr", "l1", "l2", "l2_first",
                     "epochs", "early_stopping"):
            getattr(self, knob).observe(self._preview, names="value")
        self.train_button.on_click(self.start)
        self.stop_button.on_click(self.stop)
        self._say("Ready: set the knobs and press Train.")

    @property
    def data_note(self) -> str:
        """Which data the playground trains on."""
        if self.quick:
            return (f"quick subset of the real Fashion-MNIST, "
                    f"{QUICK_TRAIN_PER_CLASS * N_CLASSES:,} training and "
                    f"{QUICK_TEST_PER_CLASS * N_CLASSES:,} test images (FMNIST_QUICK=1)")
        return "the full Fashion-MNIST, 60,000 training and 10,000 test images"

    def _layout(self) -> W.VBox:
        knobs = ["depth", "width", "dropout", "batch_norm", "lr", "l1", "l2", "l2_first",
                 "epochs", "early_stopping"]
        head = [W.HTML("<h3 style='margin:0'>MLP playground: Fashion-MNIST</h3>"
                       f"<div>Data: {html.escape(self.data_note)}. Settings apply to the "
                       "next run; compare the runs in the table below.</div>"), self.preset]
        if self.focus:
            names, note = FOCUS[self.focus]
            box = W.VBox([W.HTML(note), *(getattr(self, n) for n in names)],
                         layout=W.Layout(border=HIGHLIGHT, padding="4px", margin="4px 0"))
            box.add_class("fmnist-focus")
            head.append(box)
            knobs = [k for k in knobs if k not in names]
        half = (len(knobs) + 1) // 2
        columns = W.HBox([W.VBox([getattr(self, k) for k in part])
                          for part in (knobs[:half], knobs[half:])])
        buttons = W.HBox([self.train_button, self.stop_button, self.progress, self.seed])
        box = W.VBox([*head, columns, buttons, self.status, self.plot_output,
                      W.HTML("<b>What the last run learned</b>"), self.learned_tabs,
                      W.HTML("<b>Runs so far</b>"), self.table_output])
        box.add_class("fmnist-playground")
        return box

    def _bundle(self) -> dict:
        """The live widget's view, plus the static copy for renderers without widgets."""
        data = dict(self.widget._repr_mimebundle_())
        data["text/html"] = self.static_html()
        data["text/plain"] = ("Playground (live controls need a Jupyter kernel with "
                              "ipywidgets): " + self._settings_text())
        return data

    def _repr_mimebundle_(self, **kwargs):
        return self._bundle()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._handle = display(self._bundle(), raw=True, display_id=True)

    def _refresh_static(self) -> None:
        if self._handle is not None:
            try:
                self._handle.update(self._bundle(), raw=True)
            except Exception:  # the static copy is a courtesy: never fail a run over it
                pass

    def _settings_text(self) -> str:
        e = STUDY[self.preset.value]
        knobs = ", ".join(f"{FIELD_NAMES[k]} {_show(getattr(self, a).value)}" for k, a in (
            ("n_linear", "depth"), ("hidden", "width"), ("dropout", "dropout"),
            ("batch_norm", "batch_norm"), ("lr", "lr"), ("epochs", "epochs")))
        return f"preset {e.name} ({knobs})"

    def static_html(self) -> str:
        """The playground as plain HTML: its settings, the last run's curves and the runs."""
        parts = [f"<p><b>Playground</b>: {html.escape(self._settings_text())}.<br><i>A static "
                 "copy: moving the sliders and training need a running Jupyter kernel (open "
                 "this notebook in JupyterLab). The report's explorer page moves over a grid of "
                 "real runs without one.</i></p>"]
        if self._curves_png:
            parts.append(f'<img alt="training curves of the last run" '
                         f'src="data:image/png;base64,{self._curves_png}">')
        if self._runs_html:
            parts.append("<p><b>Runs so far</b></p>" + self._runs_html)
        return '<div class="fmnist-playground-static">' + "".join(parts) + "</div>"

    # -- knobs -------------------------------------------------------------------------------
    def _apply_preset(self, _change=None) -> None:
        self._applying = True
        try:
            self._set_preset(STUDY[self.preset.value])
        finally:
            self._applying = False
        self._preview()

    def _set_preset(self, e: Experiment) -> None:
        # Batch norm moves the depth slider's minimum: switch it off before the depth is set and
        # on after, so a preset never clamps the depth (nor warns that it did).
        if not e.batch_norm:
            self.batch_norm.value = False
        self.depth.value, self.width.value, self.dropout.value = e.n_linear, e.hidden, e.dropout
        self.batch_norm.value = e.batch_norm
        for name in ("lr", "l1", "l2", "l2_first"):
            slider, value = getattr(self, name), getattr(e, name)
            values = tuple(v for _, v in slider.options)
            if value not in values:  # a preset off the grid: add its value
                slider.options = [(f"{v:g}", v) for v in _choice(values, value)]
            slider.value = value
        self.epochs.value = resolve(e, self.settings).epochs
        self.early_stopping.value = e.early_stopping or "off"

    # -- from the grid: settings already trained ----------------------------------------------
    def grid_runs(self) -> list | None:
        """The explorer grid's cached runs for the knobs' setting, or None (nothing trains).

        Only settings trained the study's way (lr 0.1, no penalty, no early stopping, the
        study's epochs) can be on the grid.
        """
        from .grid import lookup

        base = resolve(STUDY["shallow"], self.settings)
        recipe = (self.lr.value, self.l1.value, self.l2.value, self.l2_first.value,
                  self.early_stopping.value, self.epochs.value)
        if recipe != (base.lr, 0.0, 0.0, 0.0, "off", base.epochs):
            return None
        try:
            return lookup(self.depth.value, self.width.value,
                                   round(self.dropout.value, 4), self.batch_norm.value,
                                   self.quick)
        except ValueError:  # not a setting the grid can hold
            return None

    def _preview(self, _change=None) -> None:
        """Show the grid's curves for an on-grid setting at once, before any training."""
        if self._applying or self.running:
            return
        runs = self.grid_runs()
        if not runs:
            return
        import matplotlib.pyplot as plt

        from .seeds import Seeds, pct_sd

        models = Seeds(runs)
        fig = plot_seeds_curves([models])
        self._curves_png = _png_b64(fig)
        plt.close(fig)
        self.plot_output.outputs = ({"output_type": "display_data", "metadata": {}, "data": {
            "image/png": self._curves_png, "text/plain": "curves from the grid"}},)
        self._say(f"From the grid: this setting was already trained with {len(models)} seeds "
                  f"(test accuracy {pct_sd(models.summary())}), shown without training. "
                  "Press Train to train it yourself, with your seed.")

    def _batch_norm_changed(self, change) -> None:
        clamped = change["new"] and self.depth.value < 2
        self.depth.min = 2 if change["new"] else _lowest("n_linear")
        if clamped:
            self._say("Batch norm follows a hidden layer, so it needs depth 2 or more: "
                      "depth set to 2.", "warn")

    def experiment(self) -> Experiment:
        """The settings of the knobs, as an :class:`Experiment` (raises ValueError if invalid)."""
        return STUDY[self.preset.value].replace(
            n_linear=self.depth.value, hidden=self.width.value, batch_norm=self.batch_norm.value,
            dropout=round(self.dropout.value, 4), lr=self.lr.value, l1=self.l1.value,
            l2=self.l2.value, l2_first=self.l2_first.value, epochs=self.epochs.value,
            early_stopping=None if self.early_stopping.value == "off" else
            self.early_stopping.value,
        )

    def _label(self, experiment: Experiment, seed: int) -> str:
        base = resolve(STUDY[experiment.name], self.settings)
        changes = [f"{name} {_show(getattr(experiment, key))}" for key, name in
                   FIELD_NAMES.items() if getattr(experiment, key) != getattr(base, key)]
        changes += [f"seed {seed}"] if seed else []
        text = experiment.name + (": " + ", ".join(changes) if changes else "")
        return f"{len(self.runs) + 1}. {text}"

    # -- training ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a run is training."""
        return not self._done.is_set()

    def start(self, _button=None) -> None:
        """Train a model with the current settings, in a background thread (the Train button)."""
        if self.running:
            return
        try:
            experiment = self.experiment()
        except ValueError as e:
            self._say(f"These settings cannot be trained: {e}", "error")
            return
        self.error = None
        self._stop.clear()
        self._done.clear()
        self.train_button.disabled, self.stop_button.disabled = True, False
        label = self._label(experiment, self.seed.value)
        self._thread = threading.Thread(target=self._run, args=(experiment, self.seed.value,
                                        label), name="fmnist-playground", daemon=True)
        self._thread.start()

    def stop(self, _button=None) -> None:
        """Ask the current run to stop after the batch it is on (the Stop button)."""
        if self.running:
            self._stop.set()
            self._say("Stopping after this batch…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ends; False if it still runs after ``timeout`` seconds."""
        return self._done.wait(timeout)

    def run_now(self) -> Playground:
        """Train one run with the current settings and wait for it (an example run in a cell)."""
        self.start()
        self.wait()
        return self

    def _run(self, experiment: Experiment, seed: int, label: str) -> None:
        try:
            self._say(f"Run {label}: loading the data…")
            data = get_data(self.quick)
            self._epoch = 1
            self._set_progress(0, 1, experiment.epochs)
            self._say(f"Run {label}: training on {len(data.train):,} images…")
            start = self._epoch_start = time.perf_counter()
            trained = train_one(
                experiment, seed, data, device=self.settings.device,
                on_epoch=lambda _, h: self._epoch_done(h, label, experiment.epochs),
                on_batch=lambda step, steps, _: self._batch_done(step, steps, experiment.epochs),
                should_stop=self._stop.is_set,
            )
            history, model = trained.history, trained.model
            self._finish(label, experiment, seed, history, model, data,
                         time.perf_counter() - start)
        except Exception as e:  # shown in the UI: a thread's traceback would be lost
            self.error = e
            self._say(f"Run {label} failed: {type(e).__name__}: {e}", "error")
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True
            self._done.set()

    def _set_progress(self, value: int, maximum: int, epochs: int) -> None:
        self.progress.max = maximum
        self.progress.value = value
        self.progress.description = f"epoch {self._epoch}/{epochs}"

    def _batch_done(self, step: int, steps: int, epochs: int) -> None:
        if step == 1 or step == steps or step % PROGRESS_EVERY == 0:
            self._set_progress(step, steps, epochs)

    def _epoch_done(self, history: History, label: str, epochs: int) -> None:
        row, now = history.last, time.perf_counter()
        seconds, self._epoch_start = now - self._epoch_start, now
        self._epoch = len(history) + 1
        self._say(f"Run {label}: epoch {row['epoch']}/{epochs}, train acc "
                  f"{row['train_acc']:.3f}, test acc {row['test_acc']:.3f} "
                  f"({seconds:.1f} s)")
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        axes = fig.subplots(1, 2)
        plot_history(history, title=f"Run {label}", axes=axes)
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs
        caption(fig, "Train (blue, solid) against test (orange, dashed); the grey line, if any, "
                     "is the epoch early stopping judged best.")
        self._curves_png = _png_b64(fig)
        self.plot_output.outputs = ({"output_type": "display_data", "metadata": {}, "data": {
            "image/png": self._curves_png, "text/plain": f"training curves of run {label}"}},)

    def _finish(self, label, experiment, seed, history, model, data, seconds) -> None:
        if history.interrupted or not history.rows:  # score the weights as they are now
            train_acc = evaluate(model, data.train.images, data.train.labels)["acc"]
            test_acc = evaluate(model, data.test.images, data.test.labels)["acc"]
        else:
            train_acc, test_acc = history.last["train_acc"], history.last["test_acc"]
        outcome = ("stopped by you" if history.interrupted else
                   "diverged" if history.diverged else
                   f"early stop (best epoch {history.best_epoch})" if history.stopped_early
                   else "finished")
        self.runs.append(PlaygroundRun(label, experiment.name, experiment, seed, history, model,
                                       seconds, train_acc, test_acc, outcome))
        self._show_runs()
        if not history.diverged:
            self._show_learned(label, model, data)
        self._refresh_static()
        if history.diverged:
            self._say(f"Run {label}: {history.diverged}", "warn")
            return
        self._say(f"Run {label}: {outcome} after {len(history)} epoch(s), train acc "
                  f"{train_acc:.3f}, test acc {test_acc:.3f}, {seconds:.1f} s.", "done")

    def _show_learned(self, label: str, model: torch.nn.Module, data) -> None:
        """Fill the tabs: per-class accuracy, confusion matrix, first-layer weights."""
        import matplotlib.pyplot as plt

        from . import learned

        with torch.no_grad():
            model.eval()
            predictions = torch.cat([model(data.test.images[i:i + 1000]).argmax(1)
                                     for i in range(0, len(data.test), 1000)])
        matrix = learned.confusion_matrix(data.test.labels, predictions)
        figures = (
            learned.plot_class_bars(learned.per_class_accuracy(data.test.labels, predictions),
                                    f"Run {label}: test accuracy per class"),
            learned.plot_confusion(matrix, f"Run {label}: confusion matrix"),
            learned.plot_first_layer(model, data, title=f"Run {label}"),
        )
        for out, fig, what in zip(self.learned_tabs.children, figures, LEARNED_TABS,
                                  strict=True):
            out.outputs = (_png(fig, f"{what} of run {label}"),)
            plt.close(fig)

    # -- the runs so far ---------------------------------------------------------------------
    def runs_frame(self) -> pd.DataFrame:
        """The finished runs, one row each: settings, final accuracies, epochs and seconds."""
        return pd.DataFrame([run.row() for run in self.runs])

    def _show_runs(self) -> None:
        frame = self.runs_frame()
        settings_ = []
        for row in frame.to_dict("records"):
            penalties = ", ".join(f"{n} {row[n]:g}" for n in ("L1", "L2", "L2 first") if row[n])
            settings_.append(
                f"depth {row['depth']}, width {row['width']}, dropout {_show(row['dropout'])}, "
                f"batch norm {_show(row['batch norm'])}, lr {_show(row['lr'])}"
                + (f", {penalties}" if penalties else "")
                + (f", early stopping {_show(row['early stopping'])}"
                   if row["early stopping"] else ""))
        shown = pd.DataFrame({
            "#": range(1, len(frame) + 1), "settings": settings_, "seed": frame["seed"],
            "params": frame["params"].map("{:,}".format),
            "epochs": [f"{n} of {m}" for n, m in zip(frame["epochs trained"], frame["epochs"],
                                                     strict=True)],
            "train %": frame["train acc"].map(lambda x: f"{100 * x:.1f}"),
            "test %": frame["test acc"].map(lambda x: f"{100 * x:.1f}"),
            "outcome": frame["outcome"],
        })
        table = ("<div style='overflow-x:auto;font-size:90%'>"
                 + shown.to_html(index=False, border=0)
                 + "</div>")
        self._runs_html = table
        outputs = [{"output_type": "display_data", "metadata": {},
                    "data": {"text/html": table, "text/plain": shown.to_string(index=False)}}]
        curves = {run.label: run.history for run in self.runs if run.history.rows}
        if curves:
            fig = Figure(figsize=(8, 3), layout="constrained")
            ax = fig.subplots()
            plot_overlay(curves, "test_acc", ax=ax, title="test accuracy per epoch, all runs")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            outputs.append(_png(fig, "test accuracy of all runs"))
        self.table_output.outputs = tuple(outputs)

    def _say(self, text: str, kind: str = "info") -> None:
        color = {"info": "inherit", "done": "#2e7d32", "warn": "#e65100", "error": "#c62828"}
        weight = "bold" if kind in ("error", "warn") else "normal"
        self.status.value = (f"<span style='color:{color[kind]};font-weight:{weight}'>"
                             f"{html.escape(text)}</span>")


def playground(preset: str = "shallow", focus: str | None = None,
               quick: bool | None = None) -> Playground:
    """Open the playground with a preset of the study and, optionally, one section's knob first.

    ``preset`` is a name of :data:`~fmnist_helpers.experiments.STUDY` (``"deeper"``, ``"wide"``,
    ...); ``focus`` one of the study's sections (``"depth"``, ``"width"``, ``"dropout"``,
    ``"early stopping"``, ``"batch norm"``, ``"regularization"``, ``"mixed"``), whose knobs are
    put first and highlighted. ``quick`` (default: ``FMNIST_QUICK``) trains on the small subset.
    The last line of a cell, ``playground()`` displays itself.
    """
    return Playground(preset, focus, quick)
