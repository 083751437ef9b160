"""Benchmarks: the project's batching against the study's, and seeds trained together.

One epoch of the shallow model fed from in-memory tensors against the study's ToTensor +
DataLoader recipe; and five seeds trained together against five separate runs.

    python -m fmnist_helpers.bench [--repeats 3] [--seeds 5] [--threads N] [--device cpu]
                                   [--only batching|seeds]

Both measurements run their paths on the full training set, in one process, one after the
other, alternating. The first prints study time / project time; the second times whole
epochs (training and the per-epoch evaluation) of :func:`fmnist_helpers.multiseed.train_seeds`
against :func:`fmnist_helpers.train.train`, seed by seed, and against a single seed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from .data import locate, minibatches
from .experiments import STUDY, get_data
from .models import build_mlp
from .multiseed import train_seeds
from .train import train


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


def bench_seeds(repeats: int = 3, n_seeds: int = 5, device: str = "cpu") -> dict:
    """Seconds per epoch of the shallow model: ``n_seeds`` together, separately, one seed."""
    data = get_data(quick=False)
    experiment = STUDY["shallow"]
    seeds = list(range(n_seeds))

    def together() -> float:
        start = time.perf_counter()
        train_seeds(experiment, seeds, data, epochs=1, device=device, progress=False)
        return time.perf_counter() - start

    def one(seed: int) -> float:
        torch.manual_seed(seed)
        model = experiment.build()
        start = time.perf_counter()
        train(model, data, epochs=1, lr=experiment.lr, seed=seed, device=device, progress=False)
        return time.perf_counter() - start

    def separate() -> float:
        return sum(one(seed) for seed in seeds)

    paths = {"together_s": together, "separate_s": separate, "one_s": lambda: one(0)}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(repeats):
        order = list(paths) if r % 2 == 0 else list(reversed(paths))  # alternate against drift
        for name in order:
            times[name].append(paths[name]())
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per path")
    parser.add_argument("--seeds", type=int, default=5, help="seeds trained together")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="device of the seeds benchmark")
    parser.add_argument("--only", choices=["batching", "seeds"], default=None,
                        help="run one of the two benchmarks")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    if args.only != "seeds":
        b = bench_batching(args.repeats)
        print(f"shallow model, one epoch of 60,000 images, batch 32 (median of {args.repeats}):")
        print(f"  study's recipe (ToTensor + DataLoader): {b['study_s']:.2f} s")
        print(f"  project (tensors in memory)           : {b['project_s']:.2f} s")
        print(f"  speed-up: {b['study_s'] / b['project_s']:.1f}x")
    if args.only != "batching":
        k = args.seeds
        s = bench_seeds(args.repeats, k, args.device)
        print(f"{k} seeds of the shallow model, one epoch each with its evaluation, on "
              f"{args.device} (median of {args.repeats}):")
        print(f"  {k} seeds together (multiseed)  : {s['together_s']:.2f} s")
        print(f"  {k} separate runs (train.train) : {s['separate_s']:.2f} s")
        print(f"  1 seed  (train.train)          : {s['one_s']:.2f} s")
        print(f"  {k} together / 1 seed: {s['together_s'] / s['one_s']:.2f} (goal <= 2.0)")
        print(f"  {k} separate / {k} together: {s['separate_s'] / s['together_s']:.1f}x")


if __name__ == "__main__":
    main()
