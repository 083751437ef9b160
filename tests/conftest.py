"""Shared fixtures: the real Fashion-MNIST (quick subset), and a private results cache."""

import pytest

from fmnist_helpers.runs import get_data


@pytest.fixture(scope="session")
def quick_data():
    """The real data, stratified quick subset (200 train / 50 test images per class)."""
    return get_data(quick=True)


@pytest.fixture(autouse=True)
def private_results(tmp_path, monkeypatch):
    """Each test caches its runs in its own folder, never in the project's results/."""
    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("FMNIST_PROGRESS", "0")
