"""The planner: trains the runs the cache lacks, in as few stacks as memory allows.

Runs that train identically and differ only in when they end share one training (a
:class:`Trajectory`); trajectories of one shape form stacks (:func:`plan`), ordered costliest
first by a fitted cost model (:func:`cost`) and handed to an :class:`Executor`: this machine's
worker processes (:class:`LocalPool`, the default), or a Dask cluster
(:class:`fmnist_helpers.cluster.DaskCluster`). Each result is cached
(:mod:`fmnist_helpers.results`) as soon as its run ends, by the process that asked for it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from . import diagnostics
from .bridge import member_for, shape_of
from .constraints import check_seed
from .data import FashionMNIST
from .engine import EarlyStopping, History, Snapshot, train_stack
from .results import (
    Artifacts,
    Result,
    artifacts_path,
    cache_path,
    clean_leftovers,
    get_data,
    load_cached,
    resolve,
    results_dir,
    versions,
    write_atomic,
)
from .settings import Settings, settings
from .study import Experiment, get_experiment

MAX_STACK = 96  # models per stack (for the study's widths MAX_UNITS, below, binds first)
MAX_UNITS = 800  # first-layer units per stack (K x width): past it, a step costs more per model
STOP_GUESS = 15  # planning only: the epochs an early-stopping run is expected to train (7-35)
FULL_TRAIN = 60_000  # training images of a full epoch (planning only, as the three below)
EVAL_SHARE = 0.1  # of a full epoch's per-model cost: evaluating the test set and a sample
AUTOGRAD_FACTOR = 1.55  # the general path's time over the written-out one (bench --only paths)


class Trajectory:
    """Runs that train identically, step for step, and differ only in when they end.

    Early stopping on a loss decides when a run ends and changes nothing before. So the shallow
    network's 10 epochs are the first 10 of the early-stopping run, and the early-stopping
    readings (other ``min_delta``) are that same training read by another rule. One engine
    member trains until every run on the trajectory has ended; each run's history is the
    trajectory's cut where the run ends: what training the run alone gives, bit for bit, the
    engine's numbers not depending on the stack. The engine sees this as the member's
    early-stopping rule: a :class:`~fmnist_helpers.engine.StoppingRule`.
    """

    def __init__(self, seed: int, runs: list[Experiment]):
        self.seed, self.runs = seed, runs
        self.epochs = max(e.epochs for e in runs)
        self.validation = runs[0].early_stopping == "validation"
        self.monitor = "val_loss" if self.validation else "test_loss"
        self.rules = [EarlyStopping(e.patience, e.min_delta, self.monitor, e.stop_against)
                      if e.early_stopping
                      else None for e in runs]
        # per run, once it has ended: (its last epoch, stopped by its rule, its best epoch)
        self.ends: list[tuple[int, bool, int | None] | None] = [None] * len(runs)

    @property
    def best_epoch(self) -> None:
        """None: each run on the trajectory has its own best epoch (see :meth:`history_of`)."""
        return None

    @staticmethod
    def key(experiment: Experiment, seed: int) -> tuple:
        """What fixes the training: all but the epochs and the early-stopping rule."""
        fixed = experiment.numbers_key()
        for name in ("epochs", "patience", "min_delta", "early_stopping", "stop_against"):
            del fixed[name]
        return seed, experiment.early_stopping == "validation", tuple(sorted(fixed.items()))

    def step(self, value: float, epoch: int) -> bool:
        """Record an epoch; True once every run has ended (its rule stopped it, or its epochs)."""
        for k, (run, rule) in enumerate(zip(self.runs, self.rules, strict=True)):
            if self.ends[k] is None:
                stopped = rule is not None and rule.step(value, epoch)
                if stopped or epoch >= run.epochs:
                    self.ends[k] = (epoch, stopped, rule.best_epoch if rule else None)
        return all(end is not None for end in self.ends)

    def run_ends_at(self, epoch: int) -> bool:
        """Whether a run ended at ``epoch`` (the engine then measures ``train_acc`` on all the
        training rows, as at a run's last epoch; see :meth:`history_of`)."""
        return any(end is not None and end[0] == epoch for end in self.ends)

    def history_of(self, k: int, trajectory: History) -> History:
        """Run ``k``'s own history: the trajectory cut where the run ended (or as it is).

        Where another run ended, the trajectory's row holds the exact ``train_acc`` and the
        sample's (``train_acc_sample``); run ``k`` keeps the exact one at its own last epoch
        only, as when it trains alone.
        """
        end, stopped, best = self.ends[k] or (len(trajectory), False, None)
        if self.ends[k] is None and self.rules[k] is not None:
            best = self.rules[k].best_epoch
        rows = [dict(row) for row in trajectory.rows[:end]]
        for row in rows[:-1]:
            if "train_acc_sample" in row:
                row["train_acc"] = row.pop("train_acc_sample")
        if rows:
            rows[-1].pop("train_acc_sample", None)
        return History(rows, stopped, best, trajectory.interrupted,
                       None if self.ends[k] else trajectory.diverged)


def plan(runs: Iterable[tuple[Experiment, int]], max_stack: int = MAX_STACK, parts: int = 1
         ) -> list[list[Trajectory]]:
    """Group runs into trajectories (:class:`Trajectory`), and those into stacks of one shape
    and training-set size, ``max_stack`` models and :data:`MAX_UNITS` first-layer units at
    most, the costliest first (:func:`cost`). Past some 800 units, the first layer's weights
    and gradient (784 x units floats each) outgrow the core's 2 MB cache: measured on the
    2-core machine, a step of a wide stack cost 380 us per model with 10 or 15 models and
    405 us with 25 (shallow networks: 142-175 us with 26 to 65 models, the 65 still below).

    Worker processes take the stacks in that order as they free up, so the long ones start
    first and the short ones fill the gaps at the end. With ``parts`` > 1 (workers), a stack
    that would cost more than a worker's fair share of the whole is cut into ``parts``, whole
    seeds each (a seed's models share their first-layer products), so that the workers finish
    together; otherwise a stack is kept whole, which costs less than two halves.
    """
    trajectories: dict[tuple, list[Experiment]] = {}
    seeds: dict[tuple, int] = {}
    for experiment, seed in runs:
        key = Trajectory.key(experiment, seed)
        trajectories.setdefault(key, []).append(experiment)
        seeds[key] = seed
    groups: dict[tuple, list[Trajectory]] = {}
    for key, experiments in trajectories.items():
        shape = (shape_of(experiments[0]), experiments[0].early_stopping == "validation",
                 experiments[0].train_size)  # members of a stack train on as many rows
        groups.setdefault(shape, []).append(Trajectory(seeds[key], experiments))
    stacks = [piece for group in groups.values()
              for piece in _cut(group, max(-(-len(group) // max_stack),
                                           -(-len(group) * shape_of(group[0].runs[0]).hidden
                                             // MAX_UNITS)))]
    fair_share = sum(map(cost, stacks)) / parts
    if parts > 1:
        stacks = [piece for stack in stacks
                  for piece in (_cut(stack, parts) if cost(stack) > fair_share else [stack])]
    return sorted(stacks, key=cost, reverse=True)


def _cut(group: list[Trajectory], pieces: int) -> list[list[Trajectory]]:
    """``group`` cut into ``pieces`` stacks (fewer if it has fewer seeds), whole seeds each."""
    seeds = sorted({t.seed for t in group})
    pieces = min(pieces, len(seeds))
    return [[t for t in group if t.seed in seeds[part::pieces]] for part in range(pieces)]


def cost(stack: list[Trajectory]) -> float:
    """Rough seconds to train a stack on one core of the 2-core machine, for planning.

    Fitted to the 22 stacks of a full report timed one by one (the five over 100 s within
    12%, the smaller ones up to half off): per epoch, a share per layer (four times more with
    batch norm), the per-batch overhead; per model and epoch, a share per layer and one per
    parameter. An early-stopping run counts as :data:`STOP_GUESS` epochs, its cap being far
    above what runs train. Those shares are for batches of 32 over all 60,000 images: the
    per-batch share scales with the steps an epoch takes, the per-model one with the images
    trained on (plus evaluation's share, :data:`EVAL_SHARE`, which does not shrink), and the
    autograd path costs :data:`AUTOGRAD_FACTOR` times the written-out one.
    """
    first = stack[0].runs[0]
    shape = shape_of(first)
    images = first.train_size or FULL_TRAIN
    steps_share = math.ceil(images / shape.batch_size) / math.ceil(FULL_TRAIN / 32)
    images_share = EVAL_SHARE + (1 - EVAL_SHARE) * images / FULL_TRAIN
    path = 1.0 if shape.written_path else AUTOGRAD_FACTOR
    epochs = [max(min(e.epochs, STOP_GUESS) if e.early_stopping else e.epochs for e in t.runs)
              for t in stack]
    return path * (max(epochs) * steps_share * shape.n_linear * (0.19 + 0.66 * shape.batch_norm)
                   + sum(epochs) * images_share * (0.063 * shape.n_linear
                                                   + 1.8e-5 * shape.n_params()))


class _Progress:
    """One bar over every run the planner trains, in epochs of training, with runs done."""

    def __init__(self, runs: int, epochs: int, enabled: bool):
        self.runs, self.done, self.bar = runs, 0, None
        if enabled and runs:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, desc=f"training {runs} run{'s' * (runs > 1)}",
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} "
                                       "epochs{postfix} [{elapsed}<{remaining}]")
            self.bar.set_postfix_str(f"0/{runs} runs done")

    def advance(self, epochs: float) -> None:
        """Count ``epochs`` of training done (or skipped: a trajectory that ended early)."""
        if self.bar is not None:  # never past the end (a diverged run's last epoch counts twice)
            self.bar.update(min(epochs, self.bar.total - self.bar.n))

    def batch(self, step: int, steps: int, models: int) -> None:
        self.advance(models / steps)

    def run_done(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.done}/{self.runs} runs done")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train_runs(
    runs: Sequence[tuple[str | Experiment, int]],
    config: Settings | None = None,
    *,
    epochs: int | None = None,
    cache: bool = True,
    executor: Executor | None = None,
) -> list[Result]:
    """Results of ``(experiment, seed)`` runs, in order: cached ones loaded, the rest trained.

    The missing runs are trained in as few stacks as :func:`plan` allows, with one progress bar
    over all of them; each result is cached as soon as its run ends. ``executor`` trains the
    stacks: this machine's processes by default (:class:`LocalPool`), or a Dask cluster
    (:class:`fmnist_helpers.cluster.DaskCluster`).
    """
    config = config or settings()
    wanted = [(resolve(get_experiment(name), config, epochs), check_seed(seed))
              for name, seed in runs]
    found: dict[Path, Result] = {}
    missing: dict[Path, tuple[Experiment, int]] = {}
    for experiment, seed in wanted:
        path = cache_path(experiment, seed, config.quick, config.device.type)
        cached = load_cached(path) if cache else None
        if cached is not None:
            found[path] = cached
        else:
            missing[path] = (experiment, seed)
    if missing:
        found |= _train_missing(list(missing.values()), config, cache, executor or LocalPool())
    return [found[cache_path(e, s, config.quick, config.device.type)] for e, s in wanted]


def _workers(config: Settings, stacks: int) -> int:
    """Processes that train stacks side by side: ``config.workers`` (``FMNIST_WORKERS``), else
    one per core (CPU, full mode), else 1 (the GPU is one device; quick mode's stacks are too
    small to share)."""
    if config.workers is not None:
        return config.workers
    if config.device.type != "cpu" or config.quick:
        return 1
    return max(1, min(stacks, os.cpu_count() or 1))


class Executor(Protocol):
    """Where stacks train: it takes the planned stacks and yields each stack's results (keyed
    by their cache paths, cached when ``cache``) as the stack finishes."""

    def workers(self, config: Settings, stacks: int) -> int:
        """Stacks it trains side by side (the plan cuts long stacks into that many parts)."""

    def train(self, stacks: list[list[Trajectory]], config: Settings, cache: bool,
              progress: _Progress) -> Iterator[dict[Path, Result]]:
        """Train ``stacks``; yield each one's results as it finishes."""


class LocalPool:
    """This machine: one process, or spawned worker processes (``FMNIST_WORKERS``), each run
    cached by the process that trained it as soon as the run ends."""

    def workers(self, config: Settings, stacks: int) -> int:
        """``config.workers``, else one per core (CPU, full mode), else 1 (see
        :func:`_workers`)."""
        return _workers(config, stacks)

    def train(self, stacks: list[list[Trajectory]], config: Settings, cache: bool,
              progress: _Progress) -> Iterator[dict[Path, Result]]:
        """Train ``stacks`` here, or in spawned processes; yield each one's results."""
        workers = self.workers(config, len(stacks))
        if workers == 1:
            for stack in stacks:
                yield _train_one_stack(stack, config, cache, progress)
        else:
            yield from _train_in_processes(stacks, config, cache, progress, workers)


def _train_missing(missing: list[tuple[Experiment, int]], config: Settings,
                   cache: bool, executor: Executor) -> dict[Path, Result]:
    if cache:
        clean_leftovers(results_dir(config.quick))
    workers = executor.workers(config, len(plan(missing)))
    stacks = plan(missing, parts=workers)
    progress = _Progress(len(missing), sum(t.epochs for s in stacks for t in s),
                         config.progress)
    out: dict[Path, Result] = {}
    try:
        for finished in executor.train(stacks, config, cache, progress):
            out |= finished
    finally:
        progress.close()
    return out


def _train_one_stack(stack: list[Trajectory], config: Settings, cache: bool,
                     progress, data: FashionMNIST | None = None) -> dict[Path, Result]:
    """Train one stack; cache each run as soon as it ends (so an interruption keeps it).

    ``data``: the mode's dataset when the caller has it (a Dask worker is sent it once).
    """
    data = data or get_data(config.quick)
    out: dict[Path, Result] = {}
    latest: dict[int, Artifacts] = {}  # each member's predictions and weights, last epoch
    diag = diagnostics.recorder_for([t.runs for t in stack], data)  # None for most stacks

    def save(trajectory: Trajectory, k: int, history: History, artifacts: Artifacts) -> None:
        experiment = trajectory.runs[k]
        path = cache_path(experiment, trajectory.seed, config.quick, config.device.type)
        out[path] = result = Result(experiment, trajectory.seed, config.quick,
                                    trajectory.history_of(k, history),
                                    shape_of(experiment).n_params(), config.device.type,
                                    data.source, versions(), artifacts)
        if cache:  # the arrays first: a JSON entry naming them means they are whole
            artifacts.save(artifacts_path(path))
            if diag is not None:
                diag.save(stack.index(trajectory), experiment, len(result.history), path)
            write_atomic(path, result.to_dict())
        progress.run_done()

    def epoch_done(j: int, history: History, snapshot: Snapshot) -> None:
        trajectory = stack[j]
        latest[j] = Artifacts.of(snapshot)  # this epoch's, for the runs that end here
        if diag is not None:  # gradient norms and dead units at this epoch's weights
            diag.observe(j, trajectory.runs, latest[j].load()[1])
        for k, end in enumerate(trajectory.ends):
            if end is not None and end[0] == len(history):  # the runs that end here
                save(trajectory, k, history, latest[j])
        if all(end is not None for end in trajectory.ends):
            progress.advance(trajectory.epochs - len(history))

    members = []
    for trajectory in stack:
        member = member_for(trajectory.runs[0].replace(epochs=trajectory.epochs),
                            trajectory.seed, data)
        member.early_stopping = trajectory
        members.append(member)
    trained = train_stack(shape_of(stack[0].runs[0]), members, data, device=config.device,
                          on_batch=progress.batch, on_snapshot=epoch_done)
    for j, (trajectory, t) in enumerate(zip(stack, trained, strict=True)):  # diverged runs:
        for k, end in enumerate(trajectory.ends):  # their last finished epoch, if any
            if end is None:
                save(trajectory, k, t.history, latest.get(j, Artifacts(0)))
        if t.history.diverged:
            progress.advance(trajectory.epochs - len(t.history))
    return out


# Worker processes (spawned: a fork would copy torch's thread pools). Each trains whole stacks
# with the engine's one thread and tells the parent's progress bar how far it got.
_RELAY = None


class _Relay:
    """The progress bar's interface, sending each update to the parent process."""

    def __init__(self, queue):
        self.queue = queue

    EVERY = 25  # batches per message

    def batch(self, step: int, steps: int, models: int) -> None:
        since = step % self.EVERY
        if since == 0 or step == steps:
            self.queue.put(("epochs", models * (since or self.EVERY) / steps))

    def advance(self, epochs: float) -> None:
        self.queue.put(("epochs", epochs))

    def run_done(self) -> None:
        self.queue.put(("run", None))


def _start_worker(queue) -> None:
    global _RELAY
    _RELAY = _Relay(queue)


def _stack_job(stack: list[Trajectory], config: Settings,
               cache: bool) -> dict[Path, Result]:
    return _train_one_stack(stack, config, cache, _RELAY)


def _train_in_processes(stacks: list, config: Settings, cache: bool, progress,
                        workers: int) -> Iterator[dict[Path, Result]]:
    """Train ``stacks`` in ``workers`` spawned processes; relay their progress to the bar;
    yield each stack's results as it finishes."""
    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()

    def relay(timeout: float) -> None:
        try:
            while True:
                kind, value = messages.get(timeout=timeout)
                progress.advance(value) if kind == "epochs" else progress.run_done()
                timeout = 0
        except queues.Empty:
            pass

    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(messages,)) as pool:
        pending = {pool.submit(_stack_job, stack, config, cache) for stack in stacks}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            relay(0.05)
            for future in done:
                yield future.result()
        relay(0.05)
