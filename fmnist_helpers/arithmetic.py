"""The same numbers on every x86 CPU: pin PyTorch's and MKL's CPU kernels to AVX2.

On the CPU, PyTorch picks its vectorised kernels by what the processor offers (AVX-512, AVX2 or
plain) and MKL, which computes the matrix products, picks its own code path. Two CPUs of
different generations thus add the same numbers in another order, and training amplifies the
last bit until a seed that converges on one machine sits at chance on another. Measured with
``python -m fmnist_helpers.repro`` (see the README): with ``ATEN_CPU_CAPABILITY=avx2`` and
``MKL_CBWR=AVX2``, an AVX-512 Xeon trains bit for bit like a Haswell-class CPU, while with each
library's own choice the two differ.

So, on importing ``fmnist_helpers``, a CPU that has AVX2 (nearly every x86 CPU since 2013) gets
those two variables, unless they are set already or ``FMNIST_CPU_KERNELS=native`` asks for
each library's own choice. A CPU without AVX2, or not x86, keeps its own choice (the AVX2
kernels would crash there), and its numbers may differ from those of an AVX2 machine. The
setting is part of each cached run's key and shown in the notebooks' mode line.
"""

from __future__ import annotations

import os
import platform
import warnings
from pathlib import Path

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


def has_avx2() -> bool:
    """Whether this CPU offers AVX2 (read from Linux's /proc/cpuinfo; False where unknown)."""
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return "avx2" in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


def wanted() -> bool:
    """Whether the kernels are to be pinned: an AVX2 CPU, and not ``FMNIST_CPU_KERNELS=native``."""
    choice = os.environ.get("FMNIST_CPU_KERNELS", "avx2").strip().lower()
    if choice not in {"avx2", "native"}:
        raise ValueError(f"FMNIST_CPU_KERNELS must be 'avx2' (the default) or 'native', got "
                         f"{choice!r}")
    return choice == "avx2" and has_avx2()


def pin() -> None:
    """Set :data:`PINS` in the environment (where not set), before torch computes anything.

    Both libraries read them when first used, so this works after ``import torch`` too, as long
    as no tensor operation has run yet; :func:`describe` warns when it was too late.
    """
    if wanted():
        for name, value in PINS.items():
            os.environ.setdefault(name, value)


def describe() -> str:
    """The CPU arithmetic in force, e.g. ``"AVX2 kernels, MKL_CBWR=AVX2"`` (for keys and
    the mode line); warns when the pins were asked for but torch had already chosen."""
    import torch

    kernels = torch.backends.cpu.get_cpu_capability()
    if wanted() and os.environ.get("ATEN_CPU_CAPABILITY") == PINS["ATEN_CPU_CAPABILITY"] \
            and kernels != "AVX2":
        warnings.warn(f"torch already chose its {kernels} kernels before fmnist_helpers was "
                      "imported, so this process's numbers may differ from the report's. "
                      "Restart the kernel and import fmnist_helpers before running any torch "
                      "code, or start Python with ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2.",
                      stacklevel=2)
    return f"{kernels} kernels, MKL_CBWR={os.environ.get('MKL_CBWR', 'unset')}"


pin()  # on import: fmnist_helpers/__init__.py imports this module before anything uses torch
