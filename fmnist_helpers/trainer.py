"""The playground's trainer: one run at a time, in a background thread, so the notebook stays
responsive.

:class:`Trainer` trains through :func:`fmnist_helpers.bridge.train_one` (the engine, the
package's one training loop) and tells its view what happens through :class:`Events`, whose
callbacks run in the training thread: the status line, the progress bar, each epoch's history,
the finished :class:`PlaygroundRun`, and the end of every run (failed ones too). Stop ends a run
between two batches and keeps the weights learned so far, scored as they are. Nothing here
draws: the view (:mod:`fmnist_helpers.playground`) does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .bridge import train_one, training_subset
from .data import FashionMNIST
from .engine import evaluate
from .history import History
from .results import get_data
from .settings import Settings
from .study import Experiment

PROGRESS_EVERY = 20  # batches between two updates of the progress bar


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


@dataclass
class Events:
    """What a :class:`Trainer` tells its view; every callback runs in the training thread."""

    say: Callable[[str, str], None]  # a status line, and its kind: info, done, warn or error
    progress: Callable[[int, int, str], None]  # batches done, batches in the epoch, "epoch 2/10"
    epoch: Callable[[History, str, int, float], None]  # history so far, label, cap, seconds
    finished: Callable[[PlaygroundRun, FashionMNIST], None]  # the run, the data it was tested on
    ended: Callable[[], None]  # after every run, finished or failed


def outcome_of(history: History) -> str:
    """How a run ended, in the runs table's words."""
    if history.interrupted:
        return "stopped by you"
    if history.diverged:
        return "diverged"
    if history.stopped_early:
        return f"early stop (best epoch {history.best_epoch})"
    return "finished"


class Trainer:
    """Trains one run at a time in a background thread (:meth:`start`), stops it between two
    batches (:meth:`stop`), and reports through ``events``."""

    def __init__(self, config: Settings, events: Events):
        self.config, self.events = config, events
        self.error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._epoch, self._epoch_start = 1, 0.0

    @property
    def running(self) -> bool:
        """True while a run is training."""
        return not self._done.is_set()

    def start(self, experiment: Experiment, seed: int, label: str, preset: str) -> bool:
        """Train ``experiment`` with ``seed`` in a background thread; False (and nothing
        started) while another run trains."""
        if self.running:
            return False
        self.error = None
        self._stop.clear()
        self._done.clear()
        self._thread = threading.Thread(target=self._run, args=(experiment, seed, label, preset),
                                        name="fmnist-playground", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> bool:
        """Ask the run to stop after the batch it is on; False when none is training."""
        if self.running:
            self._stop.set()
            return True
        return False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends; False if it still runs after ``timeout`` seconds."""
        return self._done.wait(timeout)

    def _run(self, experiment: Experiment, seed: int, label: str, preset: str) -> None:
        try:
            self.events.say(f"Run {label}: loading the data…", "info")
            data = get_data(self.config.quick)
            self._epoch = 1
            self._progress(0, 1, experiment.epochs)
            rows = training_subset(data, experiment.train_size)
            images = len(data.train) if rows is None else len(rows)
            self.events.say(f"Run {label}: training on {images:,} images…", "info")
            start = self._epoch_start = time.perf_counter()
            trained = train_one(
                experiment, seed, data, device=self.config.device,
                on_epoch=lambda _, h: self._epoch_done(h, label, experiment.epochs),
                on_batch=lambda step, steps, _: self._batch_done(step, steps, experiment.epochs),
                should_stop=self._stop.is_set,
            )
            self.events.finished(self._scored(label, preset, experiment, seed, trained.history,
                                              trained.model, data,
                                              time.perf_counter() - start), data)
        except Exception as e:  # shown in the view: a thread's traceback would be lost
            self.error = e
            self.events.say(f"Run {label} failed: {type(e).__name__}: {e}", "error")
        finally:
            self.events.ended()
            self._done.set()

    @staticmethod
    def _scored(label, preset, experiment, seed, history, model, data, seconds) -> PlaygroundRun:
        if history.interrupted or not history.rows:  # score the weights as they are now
            train_acc = evaluate(model, data.train.images, data.train.labels)["acc"]
            test_acc = evaluate(model, data.test.images, data.test.labels)["acc"]
        else:
            train_acc, test_acc = history.last["train_acc"], history.last["test_acc"]
        return PlaygroundRun(label, preset, experiment, seed, history, model, seconds,
                             train_acc, test_acc, outcome_of(history))

    def _progress(self, value: int, maximum: int, epochs: int) -> None:
        self.events.progress(value, maximum, f"epoch {self._epoch}/{epochs}")

    def _batch_done(self, step: int, steps: int, epochs: int) -> None:
        if step == 1 or step == steps or step % PROGRESS_EVERY == 0:
            self._progress(step, steps, epochs)

    def _epoch_done(self, history: History, label: str, epochs: int) -> None:
        now = time.perf_counter()
        seconds, self._epoch_start = now - self._epoch_start, now
        self._epoch = len(history) + 1
        self.events.epoch(history, label, epochs, seconds)
