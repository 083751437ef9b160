"""The run store: each run's result cached on disk, and the planner that trains what is missing.

A *run* is one experiment of :mod:`fmnist_helpers.study` with one seed. This module joins the
study's configurations (plain data) to the engine (tensors and hyperparameters): it turns an
experiment and a seed into an engine :class:`~fmnist_helpers.engine.Member`, groups the missing
runs by shape into as few stacks as memory allows, trains each stack once, and caches every
result under a key made of everything that changes its numbers. The engine gives a run the same
numbers whatever shares its stack, so each cached result has exactly one possible value.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import numbers
import os
import platform
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import kernels
from .data import N_CLASSES, FashionMNIST, load_fashion_mnist, stratified_indices
from .engine import EarlyStopping, History, Member, Shape, Snapshot, Trained, train_stack
from .settings import Settings, settings
from .study import STUDY, Experiment, get_experiment

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
CACHE_VERSION = 5  # bump when a change to the code changes the numbers (5: per-model products)
ARTIFACTS_VERSION = 1  # bump when the layout of the .npz beside each entry changes
VALIDATION_FRACTION = 12  # the sound early stopping holds out 1/12 of the training set (5,000)
MAX_STACK = 96  # models per stack (for the study's widths MAX_UNITS, below, binds first)
MAX_UNITS = 800  # first-layer units per stack (K x width): past it, a step costs more per model
STOP_GUESS = 15  # planning only: the epochs an early-stopping run is expected to train (7-35)


class Artifacts:
    """A run's test predictions and weights at its last epoch: in memory, or in a ``.npz`` file.

    The file sits beside the run's JSON entry, same name, ``.npz``: plain numpy arrays, read
    without pickle; uncompressed, so reading one is a copy (about 1 ms for a whole run), and
    only on first use, so loading ~250 entries reads none of them. Inside: ``format``
    (:data:`ARTIFACTS_VERSION`), ``epoch`` (the epoch they are from; 0 for a run that diverged
    before finishing one, which then has neither), ``predictions`` (``uint8``, one class per
    test image, in ``data.test``'s order: 10 KB) and ``state.<name>`` per entry of the state
    dict of ``Experiment.build()`` (float32: 32 KB for the shallow network, 170 KB for the wide).
    The JSON entry, written after the file, records the format too: an entry without it (an
    older one) or with another is incomplete, and the run is trained again.
    """

    def __init__(self, epoch: int, predictions: torch.Tensor | None = None,
                 state: dict[str, torch.Tensor] | None = None, path: Path | None = None):
        self.epoch, self.path = epoch, path
        self._loaded = None if path is not None and predictions is None else (predictions, state)

    @classmethod
    def of(cls, snapshot: Snapshot) -> Artifacts:
        """What a run keeps of a member's epoch-end :class:`~fmnist_helpers.engine.Snapshot`."""
        return cls(snapshot.epoch, snapshot.predictions, snapshot.state_dict())

    def save(self, path: Path) -> None:
        """Write the arrays to ``path`` atomically (see :func:`write_atomic`); remember it."""
        predictions, state = self.load()
        arrays = {"format": np.array(ARTIFACTS_VERSION), "epoch": np.array(self.epoch)}
        if predictions is not None:
            arrays["predictions"] = predictions.numpy().astype(np.uint8)
            arrays |= {f"state.{k}": v.numpy() for k, v in state.items()}
        with _atomic(path, "wb") as f:
            np.savez(f, **arrays)
        self.path = path

    def load(self) -> tuple[torch.Tensor | None, dict[str, torch.Tensor] | None]:
        """The predictions and the state dict, read from the file the first time."""
        if self._loaded is None:
            with np.load(self.path, allow_pickle=False) as z:
                if int(z["format"]) != ARTIFACTS_VERSION:
                    raise ValueError(f"{self.path} holds format {int(z['format'])}, this code "
                                     f"reads format {ARTIFACTS_VERSION}; delete it to retrain")
                if "predictions" not in z.files:
                    self._loaded = (None, None)
                else:
                    self._loaded = (torch.from_numpy(z["predictions"]),
                                    {k[len("state."):]: torch.from_numpy(z[k])
                                     for k in z.files if k.startswith("state.")})
        return self._loaded

    def __getstate__(self) -> dict:
        """Crossing processes, a stored run sends only its file's path."""
        state = self.__dict__.copy()
        if self.path is not None:
            state["_loaded"] = None
        return state


@dataclass
class Result:
    """A finished run: what was trained, how it went, on what data and with what software.

    Its test predictions and final weights (:attr:`predictions`, :meth:`state_dict`,
    :meth:`model`) are those of its own last epoch, read from the cache on first use.
    """

    experiment: Experiment
    seed: int
    quick: bool
    history: History
    n_params: int
    device: str
    source: str = ""
    versions: dict = field(default_factory=dict)
    artifacts: Artifacts | None = field(default=None, compare=False, repr=False)

    @property
    def final(self) -> dict:
        return self.history.last

    @property
    def epochs_trained(self) -> int:
        return len(self.history)

    @property
    def complete(self) -> bool:
        """Whether the predictions and weights are here (an older cache entry lacks them)."""
        a = self.artifacts
        return a is not None and (a.path is None or a.path.is_file())

    def _stored(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        name = f"{self.experiment.name} seed {self.seed}"
        if self.artifacts is None:
            raise ValueError(f"run {name} has no stored predictions or weights (an entry made "
                             "before they were kept); train it again with run_experiment")
        predictions, state = self.artifacts.load()
        if predictions is None:
            raise ValueError(f"run {name} has no predictions or weights: "
                             f"{self.history.diverged or 'it finished no epoch'}")
        return predictions, state

    @property
    def predictions(self) -> torch.Tensor:
        """Predicted class (int64) of each test image, in the order of ``data.test``."""
        return self._stored()[0].long()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The final weights, a copy, keyed as ``experiment.build()``'s state dict."""
        return {k: v.clone() for k, v in self._stored()[1].items()}

    def model(self) -> nn.Module:
        """``experiment.build()`` holding the final weights, in eval mode (no randomness drawn)."""
        state = self.state_dict()
        with torch.random.fork_rng(devices=[]):
            model = self.experiment.build()
        model.load_state_dict(state)
        return model.eval()

    def to_dict(self) -> dict:
        out = {"experiment": dataclasses.asdict(self.experiment), "seed": self.seed,
               "quick": self.quick, "history": self.history.to_dict(),
               "n_params": self.n_params, "device": self.device, "source": self.source,
               "versions": self.versions}
        if self.artifacts is not None:
            out["artifacts"] = {"format": ARTIFACTS_VERSION, "epoch": self.artifacts.epoch}
        return out

    @classmethod
    def from_dict(cls, d: dict, artifacts_path: Path | None = None) -> Result:
        """The result of :meth:`to_dict`; its artifacts in ``artifacts_path`` when it has any
        of the current format."""
        stored = d.get("artifacts")
        artifacts = None
        if artifacts_path is not None and stored and stored["format"] == ARTIFACTS_VERSION:
            artifacts = Artifacts(stored["epoch"], path=artifacts_path)
        return cls(Experiment(**d["experiment"]), d["seed"], d["quick"],
                   History.from_dict(d["history"]), d["n_params"], d["device"], d["source"],
                   d["versions"], artifacts)


@functools.lru_cache(maxsize=2)
def get_data(quick: bool) -> FashionMNIST:
    """The dataset, loaded once per process (full, or the quick subset)."""
    return load_fashion_mnist(quick=quick)


def versions() -> dict:
    from importlib.metadata import version  # importing torchvision itself takes seconds

    return {"torch": torch.__version__, "torchvision": version("torchvision"),
            "python": platform.python_version(), "cpu_kernels": kernels.in_force()}


# ---------------------------------------------------------------------------------------------
# From an experiment to the engine
# ---------------------------------------------------------------------------------------------

def resolve(experiment: Experiment, config: Settings, epochs: int | None = None) -> Experiment:
    """The experiment as it will train: its epochs after ``epochs`` and quick mode's cap."""
    n = config.epochs(experiment.epochs if epochs is None else epochs,
                      experiment.early_stopping is not None)
    return experiment if n == experiment.epochs else experiment.replace(epochs=n)


def validation_rows(data: FashionMNIST, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``data.train`` to train on and the stratified rows held out for validation."""
    size = len(data.train) // VALIDATION_FRACTION // N_CLASSES * N_CLASSES
    held = stratified_indices(data.train.labels, size // N_CLASSES, seed)
    keep = torch.ones(len(data.train), dtype=torch.bool)
    keep[held] = False
    return torch.nonzero(keep).flatten(), held


def shape_of(experiment: Experiment) -> Shape:
    return Shape(experiment.n_linear, experiment.hidden, experiment.batch_norm)


def member_for(experiment: Experiment, seed: int, data: FashionMNIST) -> Member:
    """The engine's member for one run: the experiment's hyperparameters and the seed."""
    stopper, train_rows, val_rows = None, None, None
    if experiment.early_stopping == "validation":
        train_rows, val_rows = validation_rows(data, seed)
    if experiment.early_stopping:
        monitor = "test_loss" if experiment.early_stopping == "test" else "val_loss"
        stopper = EarlyStopping(experiment.patience, experiment.min_delta, monitor,
                                experiment.stop_against)
    return Member(seed, experiment.lr, experiment.epochs, experiment.dropout, experiment.l1,
                  experiment.l2, experiment.l2_first, stopper, train_rows, val_rows)


def train_one(experiment: Experiment, seed: int, data: FashionMNIST, **engine_options) -> Trained:
    """Train one run, no cache (the playground): ``engine_options`` go to ``train_stack``."""
    member = member_for(experiment, seed, data)
    return train_stack(shape_of(experiment), [member], data, **engine_options)[0]


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------

def results_dir(quick: bool) -> Path:
    root = Path(os.environ.get("FMNIST_RESULTS_DIR", RESULTS_DIR))
    return root / ("quick" if quick else "full")


def cache_path(experiment: Experiment, seed: int, quick: bool, device: str) -> Path:
    """Where a run is cached: keyed by everything that changes its numbers."""
    key = {"experiment": experiment.numbers_key(), "seed": seed, "quick": quick,
           "device": device, "torch": torch.__version__, "cache_version": CACHE_VERSION}
    if device == "cpu":  # other kernels give other numbers (README, "Reproducibility")
        key["cpu_kernels"] = kernels.in_force()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return results_dir(quick) / f"{experiment.name}-seed{seed}-{digest}.json"


def write_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it into place.

    Two processes writing the same run (two notebooks open) each rename a complete file, so the
    entry is always whole; the temporary name carries the writer's process id (see
    :func:`clean_leftovers`).
    """
    with _atomic(path, "w") as f:
        json.dump(payload, f)


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator:
    """A temporary file beside ``path``, renamed into place once written (``mode`` "w"/"wb")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(mode, dir=path.parent, delete=False,
                                     prefix=f"{path.stem}.pid{os.getpid()}.",
                                     suffix=".part") as f:
        yield f
    os.replace(f.name, path)


def artifacts_path(entry: Path) -> Path:
    """Where the predictions and weights of the run cached at ``entry`` (a .json) are kept."""
    return entry.with_suffix(".npz")


def clean_leftovers(folder: Path) -> int:
    """Delete temporary files that a killed process left in ``folder``; return how many."""
    removed = 0
    for part in folder.glob("*.pid*.part"):
        pid = part.name.rsplit(".pid", 1)[1].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            part.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def load_cached(path: Path) -> Result | None:
    """The cached result at ``path``; None when absent, unreadable (then deleted) or incomplete.

    Incomplete: an older entry, without the predictions and weights of the current format
    (:class:`Artifacts`); it stays until its run, trained again, replaces it.
    """
    if not path.is_file():
        return None
    try:
        result = Result.from_dict(json.loads(path.read_text()), artifacts_path(path))
    except (ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)  # unreadable or an older format: it will be trained again
        return None
    return result if result.complete else None


# ---------------------------------------------------------------------------------------------
# The planner
# ---------------------------------------------------------------------------------------------

class Trajectory:
    """Runs that train identically, step for step, and differ only in when they end.

    Early stopping on a loss decides when a run ends and changes nothing before. So the shallow
    network's 10 epochs are the first 10 of the early-stopping run, and the early-stopping
    readings (other ``min_delta``) are that same training read by another rule. One engine
    member trains until every run on the trajectory has ended; each run's history is the
    trajectory's cut where the run ends: what training the run alone gives, bit for bit, the
    engine's numbers not depending on the stack. The engine sees this as the member's
    early-stopping rule (``monitor``, ``step``, ``best_epoch``).
    """

    def __init__(self, seed: int, runs: list[Experiment]):
        self.seed, self.runs = seed, runs
        self.epochs = max(e.epochs for e in runs)
        self.validation = runs[0].early_stopping == "validation"
        self.monitor = "val_loss" if self.validation else "test_loss"
        self.rules = [EarlyStopping(e.patience, e.min_delta, self.monitor, e.stop_against)
                      if e.early_stopping
                      else None for e in runs]
        self.ends: list[tuple[int, bool, int | None] | None] = [None] * len(runs)
        self.best_epoch = None

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
        shape = (shape_of(experiments[0]), experiments[0].early_stopping == "validation")
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
    above what runs train.
    """
    shape = shape_of(stack[0].runs[0])
    epochs = [max(min(e.epochs, STOP_GUESS) if e.early_stopping else e.epochs for e in t.runs)
              for t in stack]
    return (max(epochs) * shape.n_linear * (0.19 + 0.66 * shape.batch_norm)
            + sum(epochs) * (0.063 * shape.n_linear + 1.8e-5 * shape.n_params()))


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


MAX_SEED = 2**63 - 1


def check_seed(seed) -> int:
    """A seed as an int, or a ValueError that says what a seed may be."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"a seed must be a whole number from 0 to 2**63 - 1 (an int), got "
                         f"{seed!r}")
    return int(seed)


def train_runs(
    runs: Sequence[tuple[str | Experiment, int]],
    config: Settings | None = None,
    *,
    epochs: int | None = None,
    cache: bool = True,
) -> list[Result]:
    """Results of ``(experiment, seed)`` runs, in order: cached ones loaded, the rest trained.

    The missing runs are trained in as few stacks as :func:`plan` allows, with one progress bar
    over all of them; each result is cached as soon as its run ends.
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
        found |= _train_missing(list(missing.values()), config, cache)
    return [found[cache_path(e, s, config.quick, config.device.type)] for e, s in wanted]


def _workers(config: Settings, stacks: int) -> int:
    """Processes that train stacks side by side: ``FMNIST_WORKERS``, else one per core (CPU,
    full mode), else 1 (the GPU is one device; quick mode's stacks are too small to share)."""
    if os.environ.get("FMNIST_WORKERS"):
        return max(1, int(os.environ["FMNIST_WORKERS"]))
    if config.device.type != "cpu" or config.quick:
        return 1
    return max(1, min(stacks, os.cpu_count() or 1))


def _train_missing(missing: list[tuple[Experiment, int]], config: Settings,
                   cache: bool) -> dict[Path, Result]:
    if cache:
        clean_leftovers(results_dir(config.quick))
    workers = _workers(config, len(plan(missing)))
    stacks = plan(missing, parts=workers)
    progress = _Progress(len(missing), sum(t.epochs for s in stacks for t in s),
                         config.progress)
    out: dict[Path, Result] = {}
    try:
        if workers == 1:
            for stack in stacks:
                out |= _train_one_stack(stack, config, cache, progress)
        else:
            out = _train_in_processes(stacks, config, cache, progress, workers)
    finally:
        progress.close()
    return out


def _train_one_stack(stack: list[Trajectory], config: Settings, cache: bool,
                     progress) -> dict[Path, Result]:
    """Train one stack; cache each run as soon as it ends (so an interruption keeps it)."""
    data = get_data(config.quick)
    out: dict[Path, Result] = {}
    latest: dict[int, Artifacts] = {}  # each member's predictions and weights, last epoch

    def save(trajectory: Trajectory, k: int, history: History, artifacts: Artifacts) -> None:
        experiment = trajectory.runs[k]
        path = cache_path(experiment, trajectory.seed, config.quick, config.device.type)
        out[path] = result = Result(experiment, trajectory.seed, config.quick,
                                    trajectory.history_of(k, history),
                                    shape_of(experiment).n_params(), config.device.type,
                                    data.source, versions(), artifacts)
        if cache:  # the arrays first: a JSON entry naming them means they are whole
            artifacts.save(artifacts_path(path))
            write_atomic(path, result.to_dict())
        progress.run_done()

    def epoch_done(j: int, history: History, snapshot: Snapshot) -> None:
        trajectory = stack[j]
        latest[j] = Artifacts.of(snapshot)  # this epoch's, for the runs that end here
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
                        workers: int) -> dict[Path, Result]:
    """Train ``stacks`` in ``workers`` spawned processes; relay their progress to the bar."""
    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    out: dict[Path, Result] = {}

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
                out |= future.result()
        relay(0.05)
    return out


def run_experiment(
    name: str | Experiment,
    seed: int = 0,
    epochs: int | None = None,
    *,
    quick: bool | None = None,
    cache: bool = True,
    device: str | None = None,
) -> Result:
    """Train one run of an experiment (or load it from the cache) and return its result.

    ``quick`` (default: ``FMNIST_QUICK``) trains a couple of epochs on a stratified subset;
    quick and full results are cached in separate folders and never mix.
    """
    return train_runs([(name, seed)], settings(quick, device), epochs=epochs, cache=cache)[0]


def study_results(names: Iterable[str] | None = None, seeds: Sequence[int] | None = None,
                  quick: bool | None = None) -> list[Result]:
    """Every seed of every experiment named (default: the study's), as few stacks as possible."""
    config = settings(quick)
    seeds = config.seeds if seeds is None else seeds
    return train_runs([(n, s) for n in (names or STUDY) for s in seeds], config)


def cached_results(names: Iterable[str] | None = None, seeds: Sequence[int] | None = None,
                   quick: bool | None = None) -> list[Result]:
    """The finished runs found in the cache; nothing is trained, missing runs are left out."""
    config = settings(quick)
    found = []
    seeds = config.seeds if seeds is None else [check_seed(s) for s in seeds]
    for name in names or STUDY:
        experiment = resolve(get_experiment(name), config)
        for seed in seeds:
            result = load_cached(cache_path(experiment, seed, config.quick, config.device.type))
            if result is not None:
                found.append(result)
    return found
