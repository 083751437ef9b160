"""Do the same seeds give the same numbers under other arithmetic? Measure it.

    python -m fmnist_helpers.repro [--epochs 3] [--json here.json]
    python -m fmnist_helpers.repro --small --launcher "qemu-x86_64 -cpu Haswell" --json hsw.json
    python -m fmnist_helpers.repro --compare machine_a.json machine_b.json
    python -m fmnist_helpers.repro --check [--launcher "qemu-x86_64 -cpu EPYC-Rome"]

``--check`` trains the runs of the committed fingerprint (``fingerprint.json`` beside this file:
five short runs on a small subset, in portable mode) on this CPU and says whether they are bit
for bit the fingerprint's, exiting non-zero if not. ``--write-fingerprint`` makes it anew.

On the CPU, PyTorch picks its kernels by the instruction set the processor offers
(``ATEN_CPU_CAPABILITY``: default, avx2, avx512) and MKL picks its own code path (``MKL_CBWR``:
conditional bitwise reproducibility). Two CPUs of different generations can thus add the same
numbers in another order, and training amplifies the last bit. This trains a few runs of the
study with fixed seeds on the full data, once per arithmetic setting, each in a fresh process
with one thread, and prints how far their histories move from this CPU's native choice and what
each setting costs in time. ``--json`` writes the histories and the CPU's name; ``--compare``
reads two such files, written on two machines, and says which runs are bit-identical. With no
second machine at hand, ``--launcher`` trains under an emulated CPU (QEMU's user mode, Debian
package ``qemu-user``): another instruction set and vendor as PyTorch and MKL see them, some 35
times slower, hence ``--small``, a stratified subset.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
FINGERPRINT = Path(__file__).with_name("fingerprint.json")
FINGERPRINT_EPOCHS = 3

# name -> environment: "native" is each library's own choice for this CPU (what the report
# uses), "avx2" both pinned to AVX2, "baseline" the plainest kernels of both
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": dict(PINS),
    "baseline": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
}
RUNS = (("deeper", 0), ("deeper", 1), ("shallow", 0), ("batch_norm", 0), ("dropout", 0))
COLUMNS = ("train_loss", "test_loss", "test_acc")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


SMALL = (1_000, 500)  # --small: images per class, train and test (a stratified subset)


def child(epochs: int, small: bool = False) -> dict:
    """Train :data:`RUNS` for ``epochs`` on the CPU in this process; their histories and time.

    ``small``: on a stratified subset (:data:`SMALL`), fast enough to run under an emulated
    CPU (``qemu-x86_64 -cpu Haswell``), where training is some 35 times slower (measured).
    """
    import torch

    from .data import FashionMNIST, stratified_indices
    from .engine import train_stack
    from .runs import get_data, member_for, shape_of
    from .study import get_experiment

    if os.environ.get("ATEN_CPU_CAPABILITY") == "avx2" and not torch.cpu._is_avx2_supported():
        return {"skipped": "this CPU has no AVX2 (PyTorch's AVX2 kernels would crash here)"}
    data = get_data(False)
    if small:
        train, test = (part.take(stratified_indices(part.labels, n))
                       for part, n in zip((data.train, data.test), SMALL, strict=True))
        data = FashionMNIST(train, test, data.source + f" (stratified {SMALL} per class)")
    out, start = {}, time.perf_counter()
    for name, seed in RUNS:
        e = get_experiment(name).replace(epochs=epochs)
        (trained,) = train_stack(shape_of(e), [member_for(e, seed, data)], data, device="cpu")
        out[f"{name}/{seed}"] = {c: trained.history[c] for c in COLUMNS}
    from .kernels import in_force

    return {"seconds": time.perf_counter() - start, "histories": out,
            "capability": torch.backends.cpu.get_cpu_capability(), "kernels": in_force()}


def measure(epochs: int, small: bool = False, launcher: str = "") -> dict:
    """Every setting of :data:`SETTINGS`, each in a fresh process with its environment.

    ``launcher`` prefixes the child's command, e.g. ``"qemu-x86_64 -cpu Haswell"`` to train on
    an emulated CPU (qemu's user mode does not follow a program into the processes it starts).
    """
    results = {}
    for name, env in SETTINGS.items():
        print(f"  {name} ({' '.join(f'{k}={v}' for k, v in env.items()) or 'as is'}) ...",
              flush=True)
        found = _train_elsewhere(epochs, small, launcher, {"FMNIST_KERNELS": "native", **env})
        if "skipped" in found:
            print(f"  {name}: skipped, {found['skipped']}")
        else:
            results[name] = found
    cpu = cpu_name() + (f", under {launcher}" if launcher else "")
    return {"cpu": cpu, "python": platform.python_version(), "epochs": epochs, "small": small,
            "torch": __import__("torch").__version__, "settings": results}


def _train_elsewhere(epochs: int, small: bool, launcher: str, env: dict[str, str]) -> dict:
    """:func:`child` in a fresh process (the libraries read their kernels once) with ``env``
    on top of this one's, less its kernel settings."""
    clean = {k: v for k, v in os.environ.items()
             if k not in {*PINS, "FMNIST_KERNELS", "MKL_ENABLE_INSTRUCTIONS"}}
    proc = subprocess.run(
        [*shlex.split(launcher), sys.executable, "-m", "fmnist_helpers.repro", "--child",
         "--epochs", str(epochs)] + ["--small"] * small,
        env={**clean, **env, "FMNIST_PROGRESS": "0"}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"training in a fresh process failed ({launcher or 'no launcher'}):"
                           f"\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def digest(history: dict) -> str:
    """SHA-256 of a run's history columns, written exactly (JSON keeps every float's bits)."""
    return hashlib.sha256(json.dumps({c: history[c] for c in COLUMNS}).encode()).hexdigest()


def fingerprint(launcher: str = "") -> dict:
    """The fingerprint's runs trained now, in portable mode, in a fresh process."""
    import torch

    found = _train_elsewhere(FINGERPRINT_EPOCHS, True, launcher, {"FMNIST_KERNELS": "portable"})
    runs = {run: {"sha256": digest(h), **h} for run, h in found["histories"].items()}
    return {"torch": torch.__version__.split("+")[0], "kernels": found["kernels"],
            "epochs": FINGERPRINT_EPOCHS, "small": list(SMALL),
            "made_on": cpu_name() + (f", under {launcher}" if launcher else ""), "runs": runs}


def check(launcher: str = "", path: Path = FINGERPRINT) -> bool:
    """Reproduce the committed fingerprint here; print the verdict; True if bit-identical."""
    committed = json.loads(path.read_text())
    where = cpu_name() + (f", under {launcher}" if launcher else "")
    print(f"Training the fingerprint's {len(committed['runs'])} runs in portable mode on "
          f"{where} ({committed['epochs']} epochs each, small subset) ...", flush=True)
    same, lines = verdict(committed, fingerprint(launcher))
    print("\n".join(lines))
    return same


def verdict(committed: dict, now: dict) -> tuple[bool, list[str]]:
    """Whether ``now`` is bit for bit the ``committed`` fingerprint, and what to print."""
    lines = []
    if now["torch"] != committed["torch"]:
        lines.append(f"note: torch {now['torch']} here, {committed['torch']} in the "
                     "fingerprint: another version may compute otherwise")
    mismatched = [run for run in committed["runs"]
                  if now["runs"].get(run, {}).get("sha256") != committed["runs"][run]["sha256"]]
    if not mismatched:
        return True, [*lines, "bit-identical to the committed fingerprint (made on "
                              f"{committed['made_on']})"]
    for run in mismatched:
        if run not in now["runs"]:
            lines.append(f"  {run}: not trained here")
            continue
        diff = largest_difference({run: committed["runs"][run]}, {run: now["runs"][run]})
        lines.append(f"  {run}: differs, largest difference {diff:.3g} (final test acc "
                     f"{committed['runs'][run]['test_acc'][-1]:.4f} committed, "
                     f"{now['runs'][run]['test_acc'][-1]:.4f} here)")
    lines.append(f"NOT bit-identical: {len(mismatched)} of {len(committed['runs'])} runs differ "
                 f"from the committed fingerprint (made on {committed['made_on']}, kernels "
                 f"{committed['kernels']}; here {now['kernels']})")
    return False, lines


def largest_difference(a: dict, b: dict) -> float:
    """The largest absolute difference between two sets of histories (0.0: bit-identical)."""
    return max(abs(x - y) for run in a for c in COLUMNS
               for x, y in zip(a[run][c], b[run][c], strict=True))


def report_one(found: dict) -> None:
    base = found["settings"]["native"]  # always there: it needs nothing of the CPU
    subset = ", small subset" if found.get("small") else ""
    print(f"{found['cpu']}, torch {found['torch']}, {found['epochs']} epochs per run{subset}")
    for name, r in found["settings"].items():
        diff = largest_difference(base["histories"], r["histories"])
        print(f"  {name:9s} kernels {r['capability']:8s} {r['seconds']:6.1f} s "
              f"({r['seconds'] / base['seconds']:.2f}x native)  largest difference from "
              f"native: {diff:.3g}" + ("  (bit-identical)" if diff == 0 else ""))


def compare(a: dict, b: dict) -> None:
    print(f"A: {a['cpu']}, torch {a['torch']}\nB: {b['cpu']}, torch {b['torch']}")
    for name in a["settings"]:
        if name in b["settings"]:
            ha, hb = a["settings"][name]["histories"], b["settings"][name]["histories"]
            diff = largest_difference(ha, hb)
            finals = ", ".join(f"{run} {ha[run]['test_acc'][-1]:.4f}/{hb[run]['test_acc'][-1]:.4f}"
                               for run in ha)
            print(f"  {name:9s} largest difference A-B: {diff:.3g}"
                  + (" (bit-identical)" if diff == 0 else "") + f"; final test acc A/B: {finals}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist_helpers.repro",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the histories to this file")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument("--small", action="store_true",
                        help=f"train on {SMALL[0]:,} / {SMALL[1]:,} images per class (train / "
                             "test), e.g. under an emulated CPU")
    parser.add_argument("--launcher", default="", metavar="CMD",
                        help='prefix for the training processes, e.g. "qemu-x86_64 -cpu Haswell" '
                             "(an emulated CPU; use with --small)")
    parser.add_argument("--check", action="store_true",
                        help="reproduce the committed fingerprint on this CPU (exit 1 if not)")
    parser.add_argument("--write-fingerprint", action="store_true",
                        help=f"train the fingerprint's runs and write them to {FINGERPRINT.name}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be 1 or more, got {args.epochs}")
    if args.child:
        print(json.dumps(child(args.epochs, args.small)))
        return
    if args.check:
        sys.exit(0 if check(args.launcher) else 1)
    if args.write_fingerprint:
        FINGERPRINT.write_text(json.dumps(fingerprint(args.launcher), indent=1) + "\n")
        print(f"fingerprint written to {FINGERPRINT}")
        return
    if args.compare:
        compare(*(json.loads(p.read_text()) for p in args.compare))
        return
    found = measure(args.epochs, args.small, args.launcher)
    report_one(found)
    if args.json:
        args.json.write_text(json.dumps(found))
        print(f"histories written to {args.json}")


if __name__ == "__main__":
    main()
