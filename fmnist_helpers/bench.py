"""Benchmark: one epoch of the shallow model, the project's batching against the study's.

    python -m fmnist_helpers.bench [--repeats 3]

Both paths train the same model with the same optimizer on the full training set, in one
process, one after the other, alternating; the printed ratio is study time / project time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from .data import locate, minibatches
from .experiments import get_data
from .models import build_mlp


def _epoch(model, optimizer, batches) -> float:
    start = time.perf_counter()
    for images, labels in batches:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def bench_batching(repeats: int = 3) -> dict:
    """Seconds per epoch: in-memory tensors vs ``ToTensor`` + ``DataLoader(shuffle=True)``."""
    from torch.utils.data import DataLoader
    from torchvision.datasets import FashionMNIST
    from torchvision.transforms import ToTensor

    data = get_data(quick=False)
    root, _ = locate()
    loader = DataLoader(FashionMNIST(str(root), train=True, transform=ToTensor()),
                        batch_size=32, shuffle=True)
    ours, study = [], []
    for r in range(repeats):
        torch.manual_seed(r)
        model = build_mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, foreach=False)
        g = torch.Generator().manual_seed(r)
        ours.append(_epoch(model, opt, minibatches(data.train, 32, g)))
        torch.manual_seed(r)
        model = build_mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, foreach=False)
        study.append(_epoch(model, opt, loader))
    return {"project_s": statistics.median(ours), "study_s": statistics.median(study)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per path")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    b = bench_batching(args.repeats)
    print(f"shallow model, one epoch of 60,000 images, batch 32 (median of {args.repeats}):")
    print(f"  study's recipe (ToTensor + DataLoader): {b['study_s']:.2f} s")
    print(f"  project (tensors in memory)           : {b['project_s']:.2f} s")
    print(f"  speed-up: {b['study_s'] / b['project_s']:.1f}x")


if __name__ == "__main__":
    main()
