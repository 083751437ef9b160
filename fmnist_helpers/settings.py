"""Quick mode, device and seeds, resolved once from the arguments or the environment.

* ``FMNIST_QUICK=1``: quick mode, a few epochs on a real, stratified subset (the tests use it);
* ``FMNIST_DEVICE``: ``cpu``, ``cuda`` or ``mps`` (default: the best one present);
* ``FMNIST_PROGRESS=0``: no progress bars;
* ``FMNIST_WORKERS``: processes the planner trains stacks in (default: one per core on the CPU
  at full settings, else 1; read by :mod:`fmnist_helpers.runs`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .data import quick_mode
from .engine import pick_device

FULL_SEEDS = 5  # seeds per experiment in the full report (the study ran one)...
QUICK_SEEDS = 2  # ...and in quick mode
QUICK_EPOCHS = 2  # quick mode: fixed-length runs train this many epochs...
QUICK_MAX_EPOCHS = 4  # ...and early-stopping runs at most this many


@dataclass(frozen=True)
class Settings:
    """How runs are made: quick or full, on which device, with which seeds by default."""

    quick: bool
    device: torch.device
    seeds: tuple[int, ...]
    progress: bool

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
    if progress is None:
        flag = os.environ.get("FMNIST_PROGRESS", "1").strip().lower()
        progress = flag not in {"0", "false", "no", "off"}
    seeds = tuple(range(QUICK_SEEDS if quick else FULL_SEEDS))
    return Settings(quick, pick_device(device), seeds, progress)
