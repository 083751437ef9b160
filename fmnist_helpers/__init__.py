"""Helpers for the Fashion-MNIST MLP report: data, models, training, experiments, plots."""

from .data import CLASSES, DataError, FashionMNIST, Split, load_fashion_mnist, quick_mode
from .experiments import PAPER, STUDY, Experiment, Result, run_experiment, run_study
from .models import build_mlp, count_parameters, weight_penalty
from .train import EarlyStopping, History, TrainingDiverged, evaluate, pick_device, train

__all__ = [
    "CLASSES", "DataError", "FashionMNIST", "Split", "load_fashion_mnist", "quick_mode",
    "PAPER", "STUDY", "Experiment", "Result", "run_experiment", "run_study",
    "build_mlp", "count_parameters", "weight_penalty",
    "EarlyStopping", "History", "TrainingDiverged", "evaluate", "pick_device", "train",
]
