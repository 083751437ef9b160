"""The one model family of the study: a multi-layer perceptron on flattened 28x28 images."""

from __future__ import annotations

import torch
from torch import nn

from .constraints import check_all
from .data import IMAGE_SIZE, N_CLASSES

ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                      "leaky_relu": nn.LeakyReLU}  # LeakyReLU's default slope, 0.01


def check_architecture(
    n_linear: int = 3, hidden: int = 10, batch_norm: bool = False, dropout: float = 0.0,
    activation: str = "relu",
) -> None:
    """Raise ``ValueError`` for a network :func:`build_mlp` cannot build (draws no randomness)."""
    check_all(n_linear=n_linear, hidden=hidden, dropout=dropout, activation=activation)
    if batch_norm and n_linear < 2:
        raise ValueError("batch norm needs at least one hidden layer (n_linear >= 2)")


def check_recipe(lr: float, epochs: int, l1: float = 0.0, l2: float = 0.0,
                 l2_first: float = 0.0) -> None:
    """Raise ``ValueError`` for a learning rate, epoch count or penalty no run can train with."""
    check_all(lr=lr, epochs=epochs, l1=l1, l2=l2, l2_first=l2_first)


def build_mlp(
    n_linear: int = 3,
    hidden: int = 10,
    batch_norm: bool = False,
    dropout: float = 0.0,
    activation: str = "relu",
) -> nn.Sequential:
    """Build flatten -> [linear -> ReLU -> (batch norm) -> (dropout)] * (n_linear - 1) -> linear.

    ``n_linear`` counts every linear layer, the classifier included, as the study does
    (its "shallow" network has 3, its "deeper" one 8). Batch norm and dropout follow each
    hidden activation, in that order, as in the study's mixed model. ``activation``: "relu"
    (the study's), "tanh", "sigmoid" or "leaky_relu"; it has no weights, so the state dict's
    names and the initial weights drawn after a seed do not depend on it.
    """
    check_architecture(n_linear, hidden, batch_norm, dropout, activation)
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = IMAGE_SIZE * IMAGE_SIZE
    for _ in range(n_linear - 1):
        layers += [nn.Linear(width_in, hidden), ACTIVATION_MODULES[activation]()]
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width_in = hidden
    layers.append(nn.Linear(width_in, N_CLASSES))
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's linear layers, input side first."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def weight_penalty(
    model: nn.Module, l1: float = 0.0, l2: float = 0.0, l2_first: float = 0.0
) -> torch.Tensor:
    """The penalty added to the loss: ``l1 * sum|W| + l2 * sum W^2 + l2_first * sum W_1^2``.

    Sums run over the weight matrices of the linear layers (biases and batch-norm
    parameters are not penalised); ``W_1`` is the first linear layer.
    """
    weights = [layer.weight for layer in linear_layers(model)]
    total = weights[0].new_zeros(())
    if l1:
        total = total + l1 * sum(w.abs().sum() for w in weights)
    if l2:
        total = total + l2 * sum(w.pow(2).sum() for w in weights)
    if l2_first:
        total = total + l2_first * weights[0].pow(2).sum()
    return total


PREDICT_CHUNK = 128  # images per product: the engine's evaluation chunk (stack.EVAL_CHUNK), so a
# model's outputs here are the bits the engine computed for it (MKL may compute a product of 256
# rows or more by another kernel)


@torch.no_grad()
def logits_in_chunks(model: nn.Module, images: torch.Tensor,
                     chunk: int = PREDICT_CHUNK) -> torch.Tensor:
    """The model's outputs for ``images``, ``chunk`` images at a time, in eval mode (the mode it
    was in is restored). The package's one chunked prediction: the engine's evaluation of a
    stopped run, the playground's and the figures' predictions, the dead-unit counts (a forward
    hook sees one chunk per call)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(images[i:i + chunk]) for i in range(0, len(images), chunk)])
    finally:
        model.train(was_training)
