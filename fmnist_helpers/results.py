"""The run record and the run store: each run's :class:`Result`, its arrays, and the cache.

A *run* is one experiment of :mod:`fmnist_helpers.study` with one seed. Its :class:`Result`
holds the history and where it was trained; its test predictions and final weights
(:class:`Artifacts`) sit beside the JSON entry in a ``.npz`` file. Every result is cached under a
key made of everything that changes its numbers (:func:`cache_path`), written atomically
(:func:`write_atomic`). The engine gives a run the same numbers whatever shares its stack, so
each cached result has exactly one possible value.

Nothing here trains: statistics, tables and figures read results through this module without
importing the engine. Training what is missing is :mod:`fmnist_helpers.planner`'s job; the
notebooks' entry points are in :mod:`fmnist_helpers.runs`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from . import kernels
from .constraints import check_seed
from .data import FashionMNIST, load_fashion_mnist
from .history import History
from .settings import Settings, results_root, settings
from .study import STUDY, Experiment, get_experiment

if TYPE_CHECKING:
    from .engine import Snapshot

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
CACHE_VERSION = 5  # bump when a change to the code changes the numbers (5: per-model products)
ARTIFACTS_VERSION = 1  # bump when the layout of the .npz beside each entry changes


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
        with atomic_file(path, "wb") as f:
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
    """The dataset the runs of a mode train and are tested on, loaded once per process (full, or
    the quick subset); a result's predictions follow its ``test`` split's order."""
    return load_fashion_mnist(quick=quick)


def versions() -> dict:
    """The software a result was made with (stored in it)."""
    from importlib.metadata import version  # importing torchvision itself takes seconds

    return {"torch": torch.__version__, "torchvision": version("torchvision"),
            "python": platform.python_version(), "cpu_kernels": kernels.in_force()}


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------

def resolve(experiment: Experiment, config: Settings, epochs: int | None = None) -> Experiment:
    """The experiment as it will train, and as its result is filed: its epochs after ``epochs``
    and quick mode's cap."""
    n = config.epochs(experiment.epochs if epochs is None else epochs,
                      experiment.early_stopping is not None)
    return experiment if n == experiment.epochs else experiment.replace(epochs=n)


def results_dir(quick: bool) -> Path:
    """The folder of the runs of one mode: ``quick/`` or ``full/`` under ``FMNIST_RESULTS_DIR``
    (:func:`fmnist_helpers.settings.results_root`), else under :data:`RESULTS_DIR`."""
    return (results_root() or RESULTS_DIR) / ("quick" if quick else "full")


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
    with atomic_file(path, "w") as f:
        json.dump(payload, f)


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator:
    """A file to write ``path`` through: a temporary file beside it, renamed into place once the
    ``with`` block ends without an error (deleted if it raises). ``mode``: "w" (UTF-8 text) or
    "wb".

    The package's one atomic writer: the run store's entries and arrays, the report's pages and
    notebooks, the explorer page (:func:`fmnist_helpers.render.write_text_atomic`). A reader
    never sees half a file, and of two writers the last rename wins whole. The temporary name
    carries the writer's process id, so :func:`clean_leftovers` can tell a dead writer's.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.pid{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "x" + mode.lstrip("w"), encoding=None if "b" in mode else "utf-8") as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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


def cached_results(names: Iterable[str | Experiment] | None = None,
                   seeds: Sequence[int] | None = None,
                   config: Settings | None = None) -> list[Result]:
    """The finished runs found in the cache; nothing is trained, missing runs are left out.

    ``names``: experiments or their names (default: the study's); ``seeds`` default to
    ``config.seeds``; ``config`` to ``settings()``.
    """
    config = config or settings()
    found = []
    seeds = config.seeds if seeds is None else [check_seed(s) for s in seeds]
    for name in names or STUDY:
        experiment = resolve(get_experiment(name), config)
        for seed in seeds:
            result = load_cached(cache_path(experiment, seed, config.quick, config.device.type))
            if result is not None:
                found.append(result)
    return found
