"""The study's recipe as a plain PyTorch loop: the reference the engine is tested against.

Notebook 01 shows :func:`train_plain` as it is. The engine (:mod:`fmnist_helpers.engine`) runs
the same recipe for many models at once; a test checks that both give the same history for a
model without batch norm, within float rounding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .data import FashionMNIST
from .models import weight_penalty


def train_plain(model: nn.Module, data: FashionMNIST, epochs: int = 10, lr: float = 0.1,
                seed: int = 0, l1: float = 0.0, l2: float = 0.0) -> list[dict]:
    """Train ``model`` with cross-entropy and SGD, batches of 32; test loss/accuracy per epoch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)  # a fresh batch order every epoch
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in torch.randperm(len(data.train), generator=shuffle).split(32):
            logits = model(data.train.images[batch])
            loss = F.cross_entropy(logits, data.train.labels[batch])
            optimizer.zero_grad()
            (loss + weight_penalty(model, l1, l2)).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(data.test.images)
        history.append({"epoch": epoch,
                        "test_loss": F.cross_entropy(logits, data.test.labels).item(),
                        "test_acc": (logits.argmax(1) == data.test.labels).float().mean().item()})
    return history
