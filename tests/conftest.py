"""Shared fixtures: the real Fashion-MNIST (quick subset), a private results cache, and the
headless Chromium of the browser checks."""

from pathlib import Path

import pytest

from fmnist_helpers.runs import get_data

# Debian's Chromium (``apt-get install chromium``, as ``make setup`` does), driven by Playwright
# (nothing is downloaded), with the flags of every browser check.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def quick_data():
    """The real data, stratified quick subset (200 train / 50 test images per class)."""
    return get_data(quick=True)


@pytest.fixture(autouse=True)
def private_results(tmp_path, monkeypatch):
    """Each test caches its runs in its own folder, never in the project's results/."""
    monkeypatch.setenv("FMNIST_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("FMNIST_PROGRESS", "0")


@pytest.fixture
def chromium():
    """A headless Chromium browser (Playwright's ``Browser``), closed after the test; the test
    is skipped where Debian's chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium, "
                    "as `make setup` does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
