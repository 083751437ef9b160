"""Benchmarks of the engine, each measured side by side in one process.

    python -m fmnist_helpers.bench [--repeats 3] [--threads N] [--device cpu] [--json PATH]
                                   [--only epoch seeds stack kernels study paths]

* **epoch**: one epoch of the shallow model, the study's recipe (``ToTensor`` + ``DataLoader`` +
  ``nn.Module`` + ``torch.optim.SGD``) against the engine with K = 1 (goal >= 5x);
* **seeds**: 5 seeds of the shallow model in one stack against 1 alone, one epoch (goal <= 2x);
* **stack**: the largest difference between a model's history trained alone and trained in a
  stack with other experiments of its shape (goal: 0 on the CPU);
* **kernels**: one epoch of four of the report's stacks (20 shallow-shaped models, 5 wide,
  5 deeper, 5 with batch norm), each kernel mode (:mod:`fmnist_helpers.kernels`) in a fresh
  process: portable against native;
* **paths**: one epoch of the same stack (5 seeds of the shallow model, the full data) on the
  written-out backward pass and on the general path (autograd, the same ReLU + SGD recipe):
  general / written;
* **study**: the report's whole training (every experiment and reading, every seed) by the
  planner, against the same runs one by one with K = 1. Training them all one by one would take
  hours, so one epoch of each experiment is timed with K = 1 and multiplied by the epochs each
  of its runs trained in the planner's pass (goal >= 8x).

Paths alternate between repeats against drift; the medians are printed. ``--json PATH`` also
writes ``epoch_speedup``, ``seeds5_over_1``, ``study_speedup``, ``stack_max_abs_diff`` and
``autograd_over_written``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

from .bridge import member_for, shape_of
from .data import locate
from .engine import Member, train_stack
from .planner import train_runs
from .results import get_data, resolve
from .settings import settings
from .study import CONTROLS, READINGS, STUDY, get_experiment


def _alternate(paths: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each timed path, alternating the order between repeats."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(repeats):
        for name in (list(paths) if r % 2 == 0 else list(reversed(paths))):
            start = time.perf_counter()
            paths[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_paths(repeats: int, device: str) -> dict[str, float]:
    """One epoch of 5 seeds of the shallow model on the full data, each gradient path."""
    data = get_data(False)

    def epoch(gradients: str) -> Callable[[], None]:
        return lambda: train_stack(shape_of(STUDY["shallow"]),
                                   [Member(seed, epochs=1) for seed in range(5)], data,
                                   device=device, gradients=gradients)

    t = _alternate({"written": epoch("written"), "autograd": epoch("autograd")}, repeats)
    return {"written_s": t["written"], "autograd_s": t["autograd"]}


def _engine_epoch(seeds: list[int], device: str) -> None:
    members = [Member(seed, epochs=1) for seed in seeds]
    train_stack(shape_of(STUDY["shallow"]), members, get_data(False), device=device)


def bench_epoch(repeats: int, device: str) -> dict[str, float]:
    """Seconds per epoch of the shallow model: the study's recipe against the engine, K = 1."""
    from torch.utils.data import DataLoader
    from torchvision.datasets import FashionMNIST
    from torchvision.transforms import ToTensor

    root, _ = locate()
    loader = DataLoader(FashionMNIST(str(root), train=True, transform=ToTensor()),
                        batch_size=32, shuffle=True)

    def recipe() -> None:
        model = STUDY["shallow"].build().to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for images, labels in loader:
            loss = F.cross_entropy(model(images.to(device)), labels.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return _alternate({"recipe_s": recipe, "engine_s": lambda: _engine_epoch([0], device)},
                      repeats)


def bench_seeds(repeats: int, device: str, n_seeds: int = 5) -> dict[str, float]:
    """Seconds for one epoch of ``n_seeds`` seeds in one stack, and of one seed alone."""
    return _alternate({"stack_s": lambda: _engine_epoch(list(range(n_seeds)), device),
                       "one_s": lambda: _engine_epoch([0], device)}, repeats)


def stack_max_abs_diff(device: str, epochs: int = 2) -> float:
    """Largest |difference| of any history number, alone against stacked with other runs."""
    data = get_data(False)
    names = ["shallow", "dropout", "l1_l2", "early_stopping"]
    together = [member_for(STUDY[n].replace(epochs=epochs), seed, data)
                for n in names for seed in (0, 1)]
    stacked = train_stack(shape_of(STUDY["shallow"]), together, data, device=device)
    worst = 0.0
    for n, t in zip((n for n in names for _ in (0, 1)), stacked, strict=True):
        alone = train_stack(shape_of(STUDY[n]), [member_for(STUDY[n].replace(epochs=epochs),
                            t.member.seed, data)], data, device=device)[0]
        for a, b in zip(alone.history.rows, t.history.rows, strict=True):
            worst = max(worst, *(abs(a[k] - b[k]) for k in a))
    return worst


KERNEL_STACKS = ((("shallow", "dropout", "l1_l2", "early_stopping"), 5), (("wide",), 5),
                 (("deeper",), 5), (("batch_norm",), 5))


def kernels_child() -> float:
    """Seconds for one epoch of each of :data:`KERNEL_STACKS`, in this process's kernel mode."""
    data = get_data(False)
    start = time.perf_counter()
    for names, n_seeds in KERNEL_STACKS:
        members = [member_for(STUDY[n].replace(epochs=1), seed, data)
                   for n in names for seed in range(n_seeds)]
        train_stack(shape_of(STUDY[names[0]]), members, data, device="cpu")
    return time.perf_counter() - start


def bench_kernels(repeats: int) -> dict[str, float]:
    """Median seconds of :func:`kernels_child` per kernel mode, each run in a fresh process
    (the libraries read their mode once), the modes alternating between repeats."""
    from .kernels import ENV, MODES

    env = {k: v for k, v in os.environ.items()
           if k not in {"ATEN_CPU_CAPABILITY", "MKL_CBWR", ENV}}

    def child(mode: str) -> Callable[[], float]:
        def run() -> float:
            out = subprocess.run([sys.executable, "-m", "fmnist_helpers.bench", "--kernels-child"],
                                 env={**env, ENV: mode, "FMNIST_PROGRESS": "0"},
                                 capture_output=True, text=True, check=True)
            return float(out.stdout.split()[-1])
        return run

    times: dict[str, list[float]] = {m: [] for m in MODES}
    for r in range(repeats):
        for mode in (list(MODES) if r % 2 == 0 else list(reversed(MODES))):
            times[mode].append(child(mode)())
    return {f"{m}_s": statistics.median(t) for m, t in times.items()}


def bench_study(device: str, names: list[str] | None = None) -> dict[str, float]:
    """The report's training by the planner (an empty cache), and one by one, extrapolated."""
    config = settings(False, device, progress=True)
    names = names or [*STUDY, *READINGS, *CONTROLS]
    runs = [(n, s) for n in names for s in config.seeds]
    with tempfile.TemporaryDirectory() as cache:
        before = os.environ.get("FMNIST_RESULTS_DIR")
        os.environ["FMNIST_RESULTS_DIR"] = cache
        try:
            start = time.perf_counter()
            results = train_runs(runs, config)
            planner = time.perf_counter() - start
        finally:
            if before is None:
                del os.environ["FMNIST_RESULTS_DIR"]
            else:
                os.environ["FMNIST_RESULTS_DIR"] = before
    per_epoch = {}
    data = get_data(False)
    for n in names:  # one epoch alone, K = 1, per experiment
        experiment = resolve(get_experiment(n), config).replace(epochs=1)
        start = time.perf_counter()
        train_stack(shape_of(experiment), [member_for(experiment, 0, data)], data, device=device)
        per_epoch[n] = time.perf_counter() - start
    one_by_one = sum(per_epoch[r.experiment.name] * r.epochs_trained for r in results)
    epochs = sum(r.epochs_trained for r in results)
    return {"planner_s": planner, "one_by_one_s": one_by_one, "runs": len(results),
            "epochs": epochs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timings per path")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parts = ["epoch", "seeds", "stack", "kernels", "study", "paths"]
    parser.add_argument("--only", nargs="+", choices=parts, default=parts)
    parser.add_argument("--kernels-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.kernels_child:
        print(kernels_child())
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}")
    figures: dict[str, float] = {}
    if "epoch" in args.only:
        b = bench_epoch(args.repeats, args.device)
        figures["epoch_speedup"] = b["recipe_s"] / b["engine_s"]
        print(f"(a) one epoch of the shallow model, 60,000 images (median of {args.repeats}):\n"
              f"    study's recipe (ToTensor + DataLoader + nn.Module): {b['recipe_s']:.2f} s\n"
              f"    engine, K = 1 (its evaluation included)            : {b['engine_s']:.2f} s\n"
              f"    speed-up: {figures['epoch_speedup']:.1f}x (goal >= 5)")
    if "seeds" in args.only:
        s = bench_seeds(args.repeats, args.device)
        figures["seeds5_over_1"] = s["stack_s"] / s["one_s"]
        print(f"(b) one epoch, 5 seeds in one stack: {s['stack_s']:.2f} s; 1 seed alone: "
              f"{s['one_s']:.2f} s; ratio {figures['seeds5_over_1']:.2f} (goal <= 2)")
    if "stack" in args.only:
        figures["stack_max_abs_diff"] = stack_max_abs_diff(args.device)
        print(f"(c) largest history difference, alone vs in a stack of 8 (4 experiments x 2 "
              f"seeds, 2 epochs): {figures['stack_max_abs_diff']:.3g} (goal 0 on the CPU)")
    if "kernels" in args.only:
        k = bench_kernels(args.repeats)
        figures["portable_over_native"] = k["portable_s"] / k["native_s"]
        print(f"(d) one epoch of 4 of the report's stacks (35 models), each mode in a fresh "
              f"process: native {k['native_s']:.2f} s, portable {k['portable_s']:.2f} s; "
              f"portable / native {figures['portable_over_native']:.2f}")
    if "study" in args.only:
        st = bench_study(args.device)
        figures["study_speedup"] = st["one_by_one_s"] / st["planner_s"]
        print(f"(e) the report's training, {st['runs']} runs, {st['epochs']} epochs in all:\n"
              f"    planner (stacks)                   : {st['planner_s']:.0f} s\n"
              f"    one by one, K = 1 (extrapolated)   : {st['one_by_one_s']:.0f} s\n"
              f"    speed-up: {figures['study_speedup']:.1f}x (goal >= 8)")
    if "paths" in args.only:
        p = bench_paths(args.repeats, args.device)
        figures["autograd_over_written"] = p["autograd_s"] / p["written_s"]
        print(f"(f) one epoch, 5 seeds of the shallow model in one stack, ReLU + SGD (median of "
              f"{args.repeats}):\n"
              f"    written-out backward pass and SGD step : {p['written_s']:.2f} s\n"
              f"    general path (autograd, stacked SGD)   : {p['autograd_s']:.2f} s\n"
              f"    autograd / written: {figures['autograd_over_written']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
