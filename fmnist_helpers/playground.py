"""An interactive playground: pick depth, width, dropout, the activation, the optimizer and the
study's other knobs, train on the real Fashion-MNIST, watch the curves redraw every epoch, and
compare the runs in a table. The setting travels as a short string (:mod:`fmnist_helpers.share`):
typed into the settings box (or ``playground(settings="depth=8&act=tanh")``), it sets the knobs;
the box below the runs shows the current one, its explorer link and the notebook code that
trains its seeds.

``playground()`` returns a :class:`Playground`, the view: its widgets are its attributes, one
per knob of :data:`fmnist_helpers.knobs.KNOBS` (the one place a knob is defined). Training is
:class:`fmnist_helpers.trainer.Trainer`'s, in a background thread, so the notebook stays
responsive: Stop ends a run between two batches and keeps the weights learned so far. Figures
are drawn on bare matplotlib figures (no pyplot) and shown as PNG images through
:mod:`fmnist_helpers.render`, so they work from the training thread with the default inline
backend, no ipympl.

Every display of the playground also carries a static copy (:meth:`Playground.static_html`:
the settings, the last run's curves as an image and the runs table as HTML), which renderers
without the widget manager (GitHub, nbviewer, the exported report) show instead of the live
controls. It is refreshed after every run.

Long on purpose (about 470 lines): the widgets, the preset and settings-string logic, the grid's
preview, the static copy and the runs table all read and write one view's state; what stands
apart is already out (the trainer, the knobs' table, rendering, the sharing box).
"""

from __future__ import annotations

import html

import ipywidgets as W
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .data import N_CLASSES, QUICK_TEST_PER_CLASS, QUICK_TRAIN_PER_CLASS, FashionMNIST
from .history import History
from .knobs import FOCUS, KNOBS, MAX_SEED_SHOWN, changes_text, lowest, settings_text
from .models import count_parameters, logits_in_chunks
from .plots import plot_history, plot_overlay, plot_seeds_curves
from .render import html_output, image_output, png_base64
from .results import resolve
from .settings import Settings, settings
from .share import decode, of_experiment
from .share_box import ShareBox
from .study import STUDY, Experiment
from .style import caption
from .trainer import Events, PlaygroundRun, Trainer

LEARNED_TABS = ("per class", "confusions", "first layer")
HIGHLIGHT = "2px solid #ff7f0e"
DPI = 90  # the playground's figures, redrawn every epoch: smaller than the report's
GRID_KNOBS = ("n_linear", "hidden", "dropout", "batch_norm")  # what the explorer's grid spans
STATUS_COLORS = {"info": "inherit", "done": "#2e7d32", "warn": "#e65100", "error": "#c62828"}


class Playground:
    """The playground's view: its widgets, its runs so far, what it shows; a :class:`Trainer`
    trains."""

    def __init__(self, preset: str = "shallow", focus: str | None = None,
                 config: Settings | None = None, shared: str | None = None):
        if preset not in STUDY:
            raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(STUDY)}")
        if focus is not None:
            focus = focus.replace("_", " ")
            if focus not in FOCUS:
                raise ValueError(f"unknown focus {focus!r}; choose one of: {', '.join(FOCUS)}")
        self.settings = config or settings(progress=False)
        self.quick = self.settings.quick
        self.focus = focus
        self.runs: list[PlaygroundRun] = []
        self.trainer = Trainer(self.settings, Events(
            say=self._say, progress=self._set_progress, epoch=self._epoch_done,
            finished=self._finished, ended=self._ended))
        self._handle = None  # the display handle, to refresh the static copy after a run
        self._curves_png: str | None = None  # the last run's curves, for the static copy
        self._runs_html = ""
        self._applying = False  # a preset sets many knobs: preview once, at the end
        self._make_widgets()
        self.preset.value = preset
        self._apply_preset()
        if shared:
            self.apply_settings(shared)
        self.widget = self._layout()

    # -- widgets -----------------------------------------------------------------------------
    def _make_widgets(self) -> None:
        self.preset = W.Dropdown(
            description="preset", style={"description_width": "120px"},
            layout=W.Layout(width="520px"),
            options=[(f"{e.title} ({name})", name) for name, e in STUDY.items()],
            tooltip="Fill every knob with one of the study's models",
        )
        for name, knob in KNOBS.items():
            setattr(self, name, knob.make())
            getattr(self, name).add_class(f"fmnist-{name.replace('_', '-')}")
            getattr(self, name).observe(self._preview, names="value")
            getattr(self, name).observe(self._show_share, names="value")
        self.seed = W.BoundedIntText(
            description="seed", min=lowest("seed"), max=MAX_SEED_SHOWN,
            style={"description_width": "120px"}, layout=W.Layout(width="220px"),
            tooltip="Seeds the initial weights, the dropout masks and the batch order")
        self.train_button = W.Button(description="Train", button_style="success", icon="play",
                                     tooltip="Train a model with these settings")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop",
                                    disabled=True, tooltip="Stop between two batches")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="epoch -",
                                      style={"description_width": "90px"},
                                      layout=W.Layout(width="420px"))
        self.seed.observe(self._show_share, names="value")
        self.status = W.HTML()
        self.share = ShareBox(self._settings_typed)  # the settings string, copy as code
        self.plot_output = W.Output(layout=W.Layout(min_height="40px"))
        self.table_output = W.Output()
        self.learned_tabs = W.Tab(children=[W.Output(), W.Output(), W.Output()],
                                  titles=LEARNED_TABS)
        for name in ("train_button", "stop_button", "status", "plot_output", "table_output",
                     "learned_tabs"):
            getattr(self, name).add_class(f"fmnist-{name.replace('_', '-')}")
        self.preset.observe(self._apply_preset, names="value")
        self.batch_norm.observe(self._batch_norm_changed, names="value")
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
        knobs = list(KNOBS)
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
                      W.HTML("<b>Runs so far</b>"), self.table_output, self.share.widget])
        box.add_class("fmnist-playground")
        return box

    # -- display: the live widget, and its static copy ---------------------------------------
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
        try:
            e = self.experiment()
        except ValueError:  # between two knobs' moves: say the preset only
            return f"preset {self.preset.value}"
        return f"preset {self.preset.value} ({settings_text(e)}, epochs {e.epochs})"

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
        parts.append(self.share.note.value)
        return '<div class="fmnist-playground-static">' + "".join(parts) + "</div>"

    # -- knobs -------------------------------------------------------------------------------
    def _apply_preset(self, _change=None) -> None:
        self._applying = True
        try:
            self._set_knobs(resolve(STUDY[self.preset.value], self.settings))
        finally:
            self._applying = False
        self._preview()
        self._show_share()

    def _set_knobs(self, e: Experiment) -> None:
        # Batch norm moves the depth slider's minimum: switch it off before the depth is set and
        # on after (KNOBS has it after depth), so a preset never clamps the depth (nor warns).
        if not e.batch_norm:
            self.batch_norm.value = False
        for name, knob in KNOBS.items():
            widget, value = getattr(self, name), knob.to_widget(getattr(e, knob.field))
            if isinstance(widget, W.SelectionSlider):
                values = tuple(v for _, v in widget.options)
                if value not in values:  # a preset off the slider's choices: add its value
                    widget.options = [(f"{v:g}", v) for v in sorted({*values, value})]
            widget.value = value

    def apply_settings(self, text: str) -> Experiment:
        """Set the knobs (and the seed) from a settings string, the others left as they are;
        a bad string raises ``ValueError`` naming the key, and no knob moves."""
        fields = decode(text)
        seed = fields.pop("seed", self.seed.value)
        try:
            experiment = self.experiment().replace(**fields)  # checks the knobs together
        except ValueError as e:
            raise ValueError(f"settings string {text!r}: {e}") from None
        for name, knob in KNOBS.items():
            widget, value = getattr(self, name), knob.to_widget(getattr(experiment, knob.field))
            if isinstance(widget, (W.IntSlider, W.FloatSlider)) and value > widget.max:
                raise ValueError(f"settings string: {knob.label} {value} is beyond the "
                                 f"playground's {knob.label} slider (at most {widget.max}); "
                                 "train it with Experiment(...) in a notebook")
        if seed > self.seed.max:
            raise ValueError(f"settings string: seed {seed} is beyond the seed box (at most "
                             f"{self.seed.max}); train it with Experiment(...) in a notebook")
        self._applying = True
        try:
            self._set_knobs(experiment)
            self.seed.value = seed
        finally:
            self._applying = False
        self._preview()
        self._show_share()
        return experiment

    def _settings_typed(self, text: str) -> None:
        try:
            self.apply_settings(text)
        except ValueError as e:
            self._say(str(e), "error")
            return
        self._say("Settings applied: press Train to train them.")

    def settings_string(self) -> str:
        """The knobs and the seed as a settings string (raises ValueError if invalid)."""
        return of_experiment(self.experiment(), self.seed.value)

    def _show_share(self, _change=None) -> None:
        """Show the settings string, the explorer link and the code for the knobs as they are."""
        if self._applying:
            return
        try:
            self.share.show(self.experiment(), self.seed.value)
        except ValueError as e:
            self.share.show_error(str(e))

    def experiment(self) -> Experiment:
        """The settings of the knobs, as an :class:`Experiment` (raises ValueError if invalid)."""
        return STUDY[self.preset.value].replace(**{
            k.field: k.to_experiment(getattr(self, name).value) for name, k in KNOBS.items()})

    def _batch_norm_changed(self, change) -> None:
        clamped = change["new"] and self.depth.value < 2
        self.depth.min = 2 if change["new"] else lowest("n_linear")
        if clamped:
            self._say("Batch norm follows a hidden layer, so it needs depth 2 or more: "
                      "depth set to 2.", "warn")

    # -- from the grid: settings already trained ----------------------------------------------
    def grid_runs(self) -> list | None:
        """The explorer grid's cached runs for the knobs' setting, or None (nothing trains).

        Only settings trained the study's way (every knob but the grid's own at the study's
        recipe: lr 0.1, no penalty, no early stopping, the study's epochs) can be on the grid.
        """
        from .grid import lookup

        recipe = resolve(Experiment("recipe", ""), self.settings)
        try:
            e = self.experiment()
            if any(getattr(e, k.field) != getattr(recipe, k.field) for k in KNOBS.values()
                   if k.field not in GRID_KNOBS):
                return None
            return lookup(e.n_linear, e.hidden, e.dropout, e.batch_norm, self.settings)
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
        self._curves_png = png_base64(fig, DPI)
        plt.close(fig)
        self.plot_output.outputs = (image_output(self._curves_png, "curves from the grid"),)
        self._say(f"From the grid: this setting was already trained with {len(models)} seeds "
                  f"(test accuracy {pct_sd(models.summary())}), shown without training. "
                  "Press Train to train it yourself, with your seed.")

    # -- training: the trainer's -------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a run is training."""
        return self.trainer.running

    @property
    def error(self) -> Exception | None:
        """The last run's error, if it failed."""
        return self.trainer.error

    def start(self, _button=None) -> None:
        """Train a model with the current settings, in a background thread (the Train button)."""
        if self.running:
            return
        try:
            experiment = self.experiment()
        except ValueError as e:
            self._say(f"These settings cannot be trained: {e}", "error")
            return
        base = resolve(STUDY[experiment.name], self.settings)
        seed = self.seed.value
        changes = changes_text(experiment, base) + ([f"seed {seed}"] if seed else [])
        label = (f"{len(self.runs) + 1}. {experiment.name}"
                 + (": " + ", ".join(changes) if changes else ""))
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.trainer.start(experiment, seed, label, self.preset.value)

    def stop(self, _button=None) -> None:
        """Ask the current run to stop after the batch it is on (the Stop button)."""
        if self.trainer.stop():
            self._say("Stopping after this batch…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ends; False if it still runs after ``timeout`` seconds."""
        return self.trainer.wait(timeout)

    def run_now(self) -> Playground:
        """Train one run with the current settings and wait for it (an example run in a cell)."""
        self.start()
        self.wait()
        return self

    # -- what the trainer reports (in its thread) --------------------------------------------
    def _set_progress(self, value: int, maximum: int, description: str) -> None:
        self.progress.max = maximum
        self.progress.value = value
        self.progress.description = description

    def _epoch_done(self, history: History, label: str, epochs: int, seconds: float) -> None:
        row = history.last
        self._say(f"Run {label}: epoch {row['epoch']}/{epochs}, train acc "
                  f"{row['train_acc']:.3f}, test acc {row['test_acc']:.3f} ({seconds:.1f} s)")
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        axes = fig.subplots(1, 2)
        plot_history(history, title=f"Run {label}", axes=axes)
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs
        caption(fig, "Train (blue, solid) against test (orange, dashed); the grey line, if any, "
                     "is the epoch early stopping judged best.")
        self._curves_png = png_base64(fig, DPI)
        self.plot_output.outputs = (image_output(self._curves_png,
                                                 f"training curves of run {label}"),)

    def _finished(self, run: PlaygroundRun, data: FashionMNIST) -> None:
        self.runs.append(run)
        self._show_runs()
        history = run.history
        if not history.diverged:
            self._show_learned(run.label, run.model, data)
        self._refresh_static()
        if history.diverged:
            self._say(f"Run {run.label}: {history.diverged}", "warn")
            return
        self._say(f"Run {run.label}: {run.outcome} after {len(history)} epoch(s), train acc "
                  f"{run.train_acc:.3f}, test acc {run.test_acc:.3f}, {run.seconds:.1f} s.",
                  "done")

    def _ended(self) -> None:
        self.train_button.disabled, self.stop_button.disabled = False, True

    def _show_learned(self, label: str, model: torch.nn.Module, data: FashionMNIST) -> None:
        """Fill the tabs: per-class accuracy, confusion matrix, first-layer weights."""
        import matplotlib.pyplot as plt

        from . import learned

        predictions = logits_in_chunks(model, data.test.images).argmax(1)
        matrix = learned.confusion_matrix(data.test.labels, predictions)
        figures = (
            learned.plot_class_bars(learned.per_class_accuracy(data.test.labels, predictions),
                                    f"Run {label}: test accuracy per class"),
            learned.plot_confusion(matrix, f"Run {label}: confusion matrix"),
            learned.plot_first_layer(model, data, title=f"Run {label}"),
        )
        for out, fig, what in zip(self.learned_tabs.children, figures, LEARNED_TABS,
                                  strict=True):
            out.outputs = (image_output(fig, f"{what} of run {label}", DPI),)
            plt.close(fig)

    # -- the runs so far ---------------------------------------------------------------------
    def runs_frame(self) -> pd.DataFrame:
        """The finished runs, one row each: settings, final accuracies, epochs and seconds."""
        rows = []
        for run in self.runs:
            row = {"run": run.label, "preset": run.preset}
            row |= {k.label: getattr(run.experiment, k.field) for k in KNOBS.values()}
            rows.append(row | {
                "seed": run.seed, "params": count_parameters(run.model),
                "epochs trained": len(run.history), "train acc": run.train_acc,
                "test acc": run.test_acc, "seconds": run.seconds, "outcome": run.outcome})
        return pd.DataFrame(rows)

    def _show_runs(self) -> None:
        frame = self.runs_frame()
        shown = pd.DataFrame({
            "#": range(1, len(frame) + 1),
            "settings": [settings_text(run.experiment) for run in self.runs],
            "seed": frame["seed"], "params": frame["params"].map("{:,}".format),
            "epochs": [f"{n} of {m}" for n, m in zip(frame["epochs trained"], frame["epochs"],
                                                     strict=True)],
            "train %": frame["train acc"].map(lambda x: f"{100 * x:.1f}"),
            "test %": frame["test acc"].map(lambda x: f"{100 * x:.1f}"),
            "outcome": frame["outcome"],
        })
        self._runs_html = ("<div style='overflow-x:auto;font-size:90%'>"
                           + shown.to_html(index=False, border=0) + "</div>")
        outputs = [html_output(self._runs_html, shown.to_string(index=False))]
        curves = {run.label: run.history for run in self.runs if run.history.rows}
        if curves:
            fig = Figure(figsize=(8, 3), layout="constrained")
            ax = fig.subplots()
            plot_overlay(curves, "test_acc", ax=ax, title="test accuracy per epoch, all runs")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            outputs.append(image_output(fig, "test accuracy of all runs", DPI))
        self.table_output.outputs = tuple(outputs)

    def _say(self, text: str, kind: str = "info") -> None:
        weight = "bold" if kind in ("error", "warn") else "normal"
        self.status.value = (f"<span style='color:{STATUS_COLORS[kind]};font-weight:{weight}'>"
                             f"{html.escape(text)}</span>")


def playground(preset: str = "shallow", focus: str | None = None,
               config: Settings | None = None, settings: str | None = None) -> Playground:
    """Open the playground with a preset of the study and, optionally, one section's knob first.

    ``preset`` is a name of :data:`~fmnist_helpers.study.STUDY` (``"deeper"``, ``"wide"``,
    ...); ``focus`` one of the study's sections (``"depth"``, ``"width"``, ``"dropout"``,
    ``"early stopping"``, ``"batch norm"``, ``"regularization"``, ``"mixed"``), whose knobs are
    put first and highlighted. ``config``: the settings to train with (default: ``settings()``,
    so ``FMNIST_QUICK=1`` trains on the small subset). ``settings``: a settings string
    (``"depth=8&width=10&dropout=0&act=tanh&opt=adam"``, or an explorer link) applied over the
    preset. The last line of a cell, ``playground()`` displays itself.
    """
    return Playground(preset, focus, config, settings)
