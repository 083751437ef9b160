"""CPU kernels pinned to AVX2 on import, where the CPU has it (fmnist_helpers.arithmetic)."""

import os
import subprocess
import sys

import pytest

from fmnist_helpers import arithmetic, runs
from fmnist_helpers.study import STUDY

CAPABILITY = "import torch; print(torch.backends.cpu.get_cpu_capability())"


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in arithmetic.PINS}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, check=True)


def native_capability() -> str:
    return python(CAPABILITY).stdout.strip()


@pytest.mark.skipif(not arithmetic.has_avx2(), reason="needs an x86 CPU with AVX2")
def test_importing_the_package_pins_avx2_kernels_unless_asked_not_to():
    assert python("import fmnist_helpers; " + CAPABILITY).stdout.strip() == "AVX2"
    native = python("import fmnist_helpers; " + CAPABILITY, FMNIST_CPU_KERNELS="native")
    assert native.stdout.strip() == native_capability()
    mine = python("import fmnist_helpers; " + CAPABILITY, ATEN_CPU_CAPABILITY="default")
    assert mine.stdout.strip() == "DEFAULT"  # a user's own setting wins


@pytest.mark.skipif(not arithmetic.has_avx2(), reason="needs an x86 CPU with AVX2")
def test_a_warning_when_torch_chose_its_kernels_before_the_import():
    if native_capability() == "AVX2":
        pytest.skip("this CPU's own choice is AVX2 already")
    late = python("import torch; torch.ones(2) + 1; import fmnist_helpers; "
                  "from fmnist_helpers import arithmetic; print(arithmetic.describe())")
    assert "torch already chose its" in late.stderr and "Restart the kernel" in late.stderr


def test_no_pins_off_x86(monkeypatch):
    monkeypatch.setattr(arithmetic.platform, "machine", lambda: "arm64")
    assert not arithmetic.has_avx2() and not arithmetic.wanted()


def test_a_wrong_choice_says_what_is_allowed(monkeypatch):
    monkeypatch.setenv("FMNIST_CPU_KERNELS", "avx512")
    with pytest.raises(ValueError, match="'avx2' \\(the default\\) or 'native'"):
        arithmetic.wanted()


def test_other_kernels_are_another_cache_entry(monkeypatch):
    here = runs.cache_path(STUDY["shallow"], 0, quick=True, device="cpu")
    monkeypatch.setattr(arithmetic, "describe", lambda: "AVX512 kernels, MKL_CBWR=unset")
    assert runs.cache_path(STUDY["shallow"], 0, quick=True, device="cpu") != here
