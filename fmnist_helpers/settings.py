"""Quick mode, device, seeds and the run store's folder: the package's ``FMNIST_*`` settings.

The environment variables that change how runs are made are read here and nowhere else (each
when asked, so a test or a notebook may change one between two calls):

* ``FMNIST_QUICK=1``: quick mode, a few epochs on a real, stratified subset (the tests use it);
* ``FMNIST_DEVICE``: ``cpu``, ``cuda`` or ``mps`` (default: the best one present);
* ``FMNIST_PROGRESS=0``: no progress bars;
* ``FMNIST_WORKERS``: processes the planner trains stacks in (default: one per core on the CPU
  at full settings, else 1; see :mod:`fmnist_helpers.planner`);
* ``FMNIST_RESULTS_DIR``: the run store's folder (default: ``results/`` beside the package);
* ``FMNIST_SCHEDULER``: a Dask scheduler's address for sweeps (:mod:`fmnist_helpers.sweep`).

Two variables stay with what they choose, being read before anything else or only by the
loader: ``FMNIST_KERNELS`` (:mod:`fmnist_helpers.kernels`, the CPU arithmetic) and
``FMNIST_DATA_DIR``/``FMNIST_ALLOW_NONCANONICAL`` (:mod:`fmnist_helpers.data`).

This module is the ground floor: it imports torch and nothing of the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

FULL_SEEDS = 5  # seeds per experiment in the full report (the study ran one)...
QUICK_SEEDS = 2  # ...and in quick mode
QUICK_EPOCHS = 2  # quick mode: fixed-length runs train this many epochs...
QUICK_MAX_EPOCHS = 4  # ...and early-stopping runs at most this many

_YES = {"1", "true", "yes", "on"}
_NO = {"0", "false", "no", "off"}


def quick_mode() -> bool:
    """Return True when ``FMNIST_QUICK`` asks for the short, small-subset settings."""
    return os.environ.get("FMNIST_QUICK", "").strip().lower() in _YES


def progress_enabled() -> bool:
    """False when ``FMNIST_PROGRESS`` turns the progress bars off (on by default)."""
    return os.environ.get("FMNIST_PROGRESS", "1").strip().lower() not in _NO


def workers_asked() -> int | None:
    """The worker processes ``FMNIST_WORKERS`` asks for (at least 1), or None when unset."""
    value = os.environ.get("FMNIST_WORKERS", "").strip()
    return max(1, int(value)) if value else None


MAX_SEEDS = 50  # FMNIST_SEEDS's ceiling: past it, the report's training alone takes hours


def seeds_asked(quick: bool) -> tuple[int, ...]:
    """Seeds per experiment: ``FMNIST_SEEDS`` of them (``FMNIST_SEEDS=10``: seeds 0-9), else
    :data:`FULL_SEEDS` (quick mode: :data:`QUICK_SEEDS`). With 10 the replication compares two
    independent sets of 5 (0-4 and 5-9) instead of 2 against 3."""
    value = os.environ.get("FMNIST_SEEDS", "").strip()
    if not value:
        return tuple(range(QUICK_SEEDS if quick else FULL_SEEDS))
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_SEEDS:
        raise ValueError(f"FMNIST_SEEDS={value!r} is not a number of seeds from 1 to {MAX_SEEDS}: "
                         f"set it to, say, 10 (seeds 0-9), or unset it for the default "
                         f"{FULL_SEEDS} ({QUICK_SEEDS} in quick mode)")
    return tuple(range(n))


def results_root() -> Path | None:
    """The run store's folder set by ``FMNIST_RESULTS_DIR``, or None when unset."""
    value = os.environ.get("FMNIST_RESULTS_DIR")
    return Path(value) if value else None


def scheduler_address() -> str | None:
    """The Dask scheduler ``FMNIST_SCHEDULER`` names (``tcp://host:8786``), or None."""
    value = os.environ.get("FMNIST_SCHEDULER", "").strip()
    return value or None


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """CUDA if present, else Apple's MPS, else the CPU; ``prefer`` or ``FMNIST_DEVICE`` wins."""
    prefer = prefer or os.environ.get("FMNIST_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Settings:
    """How runs are made: quick or full, on which device, with which seeds by default, with or
    without progress bars, in how many worker processes (None: the planner's default)."""

    quick: bool
    device: torch.device
    seeds: tuple[int, ...]
    progress: bool
    workers: int | None = None

    def epochs(self, epochs: int, early_stopping: bool) -> int:
        """Epochs a run trains (its maximum, with early stopping), after quick mode's cap."""
        if self.quick:
            return min(epochs, QUICK_MAX_EPOCHS if early_stopping else QUICK_EPOCHS)
        return epochs


def settings(
    quick: bool | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> Settings:
    """The settings in force: each argument that is None is read from the environment."""
    quick = quick_mode() if quick is None else bool(quick)
    progress = progress_enabled() if progress is None else bool(progress)
    seeds = seeds_asked(quick)
    return Settings(quick, pick_device(device), seeds, progress, workers_asked())
