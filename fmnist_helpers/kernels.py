"""Which CPU arithmetic trains the runs: the same on every x86-64 CPU, or this CPU's fastest.

On the CPU, PyTorch picks its elementwise and reduction kernels by the instruction set the
processor offers (``ATEN_CPU_CAPABILITY``: default, avx2, avx512) and MKL picks the code path of
its matrix products (``MKL_CBWR``). Two CPUs of different generations or vendors thus add the
same numbers in another order, and training amplifies the last bit into other accuracies.

``FMNIST_KERNELS`` chooses:

* ``native`` (the default): each library's own choice for this CPU, the fastest, and not the
  same across CPUs (an ``ATEN_CPU_CAPABILITY`` or ``MKL_CBWR`` you set yourself is left as it
  is);
* ``portable``: PyTorch's plain kernels and MKL's ``COMPATIBLE`` path, which run on every x86-64
  CPU and give the same bits on all of them (``python -m fmnist_helpers.repro --check`` checks
  a committed fingerprint), at about twice the training time (``python -m fmnist_helpers.bench
  --only kernels`` measures it). The committed notebooks were made in this mode.

Either way a run's numbers are the same alone or in any stack (the engine's promise). Both
libraries read their setting once, before their first operation: :func:`apply`, called when the
package is imported, sets it, and fails with a clear message if PyTorch has already computed
with other kernels in this process.
"""

from __future__ import annotations

import os

ENV = "FMNIST_KERNELS"
MODES: dict[str, dict[str, str]] = {
    "portable": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
    "native": {},
}
DEFAULT = "native"  # portable costs about 2x (docs/reproducibility.md)


class KernelsError(RuntimeError):
    """The requested CPU arithmetic cannot be had in this process."""


def requested() -> str:
    """The mode asked for by ``FMNIST_KERNELS`` (default :data:`DEFAULT`), validated."""
    mode = os.environ.get(ENV, DEFAULT).strip().lower() or DEFAULT
    if mode not in MODES:
        raise KernelsError(f"{ENV}={os.environ[ENV]!r} is not a mode: use one of "
                           f"{', '.join(MODES)} (or leave it unset for {DEFAULT!r})")
    return mode


def apply() -> str:
    """Put the requested mode in force for this process and the processes it starts.

    Sets the libraries' variables, then checks that PyTorch's kernels are the mode's: in a
    notebook that ran a PyTorch operation before importing this package, they are already
    chosen, and the error says how to start over.
    """
    mode = requested()
    os.environ.update(MODES[mode])
    os.environ[ENV] = mode  # worker processes and notebook kernels inherit the choice
    import torch

    wanted = MODES[mode].get("ATEN_CPU_CAPABILITY")
    found = torch.backends.cpu.get_cpu_capability()
    if wanted is not None and found.lower() != wanted:
        raise KernelsError(
            f"{ENV}={mode} needs PyTorch's {wanted!r} CPU kernels, but this process already "
            f"computed with {found!r} ones (a PyTorch operation ran before fmnist_helpers was "
            f"imported). Restart the kernel and import fmnist_helpers before anything else, "
            f"or set {ENV}=native to train with this CPU's own kernels.")
    return mode


def in_force() -> str:
    """The CPU arithmetic in force, e.g. ``"portable: DEFAULT kernels, MKL_CBWR=COMPATIBLE"``
    (part of every CPU run's cache key: other arithmetic, other numbers)."""
    import torch

    return (f"{requested()}: {torch.backends.cpu.get_cpu_capability()} kernels, "
            f"MKL_CBWR={os.environ.get('MKL_CBWR', 'unset')}")
