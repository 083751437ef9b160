"""Helpers for the Fashion-MNIST MLP report: data, models, one training engine, runs, plots."""

# first of all: the CPU arithmetic (FMNIST_KERNELS), which PyTorch and MKL read only once
from .kernels import apply as _apply_kernels

_apply_kernels()

# ruff: noqa: E402

from .data import CLASSES, DataError, FashionMNIST, Split, load_fashion_mnist
from .engine import EarlyStopping, Member, Shape, train_stack
from .history import History
from .models import build_mlp, count_parameters
from .planner import train_runs
from .results import Result
from .runs import run_experiment, study_results
from .settings import Settings, pick_device, settings
from .study import PAPER, READINGS, STUDY, Experiment

__all__ = [
    "CLASSES", "DataError", "FashionMNIST", "Split", "load_fashion_mnist",
    "EarlyStopping", "History", "Member", "Shape", "pick_device", "train_stack",
    "build_mlp", "count_parameters",
    "Result", "run_experiment", "study_results", "train_runs",
    "Settings", "settings",
    "PAPER", "READINGS", "STUDY", "Experiment",
]
