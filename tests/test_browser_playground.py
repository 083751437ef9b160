"""The playground in a real browser: JupyterLab on a loopback port, driven by headless Chromium.

JupyterLab runs from this virtual environment on a copy of the playground notebook, with every
Jupyter config, data, runtime, settings and workspace folder in the test's temporary folder, so
nothing is left behind. Chromium is Debian's, driven by Playwright (the ``chromium`` fixture of
``conftest.py``); nothing is downloaded.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from jupyter_core.paths import jupyter_path

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "09_playground.ipynb"
LAB_SETTINGS = {
    # start the notebook's kernel without asking ("Select Kernel" dialog)
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
    # no "get notified about Jupyter news?" toast over the page, no request for news
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}
TIMEOUT_MS = 60_000  # per step; the whole test takes about 40 s on two busy cores

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_lab(root: Path, home: Path, port: int, token: str) -> subprocess.Popen:
    settings = home / "lab-settings"
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.split(":")
        (settings / package).mkdir(parents=True, exist_ok=True)
        (settings / package / f"{name}.jupyterlab-settings").write_text(json.dumps(values))
    env = os.environ | {
        "FMNIST_QUICK": "1", "FMNIST_PROGRESS": "0",
        "FMNIST_RESULTS_DIR": str(home / "results"),
        "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    log = open(home / "jupyterlab.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_lab(proc: subprocess.Popen, url: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{log.read_text()}")


def _stop_lab(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)  # JupyterLab shuts its kernels down, then exits
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session started for this server only
        proc.wait(timeout=10)


def see(locator, text: str | None = None, count: int | None = None) -> None:
    """Wait until ``locator`` shows ``text`` (or matches ``count`` elements)."""
    from playwright.sync_api import expect

    if text is not None:
        expect(locator).to_contain_text(text, timeout=TIMEOUT_MS)
    if count is not None:
        expect(locator).to_have_count(count, timeout=TIMEOUT_MS)


def test_widgets_extension_is_installed():
    """Without ipywidgets' JupyterLab extension the playground would render as plain text."""
    found = [Path(p) / "@jupyter-widgets" / "jupyterlab-manager" for p in
             jupyter_path("labextensions")]
    assert any(p.is_dir() for p in found), f"jupyterlab_widgets missing from {found}"


@pytest.mark.slow
def test_playground_in_jupyterlab(tmp_path, chromium):
    root, home = tmp_path / "notebooks", tmp_path / "jupyter"
    root.mkdir()
    home.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    screenshot = tmp_path / "playground.png"  # after the first run
    last_screenshot = tmp_path / "playground-last.png"  # at the end, or where it failed
    errors: list[str] = []
    proc = _start_lab(root, home, port, token)
    try:
        _wait_for_lab(proc, f"{base}/api/status?token={token}", home / "jupyterlab.log")
        page = chromium.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}&reset")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            # the kernel is up when the status bar reads "Python 3 (ipykernel) | Idle"
            see(page.locator(".jp-StatusBar-Widget"), "| Idle")

            # Run > Run All Cells, as a reader would
            page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
            page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells",
                                                           exact=True).click()

            # the depth slider: focus its handle and press the right arrow once
            handle = page.locator(".fmnist-depth .noUi-handle")
            handle.wait_for()
            readout = page.locator(".fmnist-depth .widget-readout")
            see(readout, "3")
            handle.focus()
            handle.press("ArrowRight")
            see(readout, "4")

            # the notebook's example run is the first row of the runs table
            rows = page.locator(".fmnist-table-output table tbody tr")
            see(rows, count=1)
            page.locator(".fmnist-train-button").click()
            page.locator(".fmnist-plot-output img").wait_for()  # the curves
            status = page.locator(".fmnist-status")
            see(status, "depth 4")  # the kernel saw the slider move
            see(status, "finished")
            page.locator(".fmnist-table-output img").wait_for()  # runs table + overlay
            see(rows, count=2)
            page.locator(".fmnist-learned-tabs img").first.wait_for()  # per-class tab
            page.locator(".fmnist-playground").scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot))

            # the new knobs: tanh and Adam picked from their menus, trained, in the table
            page.locator(".fmnist-activation select").select_option(label="tanh")
            page.locator(".fmnist-optimizer select").select_option(label="Adam")
            share = page.locator(".fmnist-share-note")
            see(share, "act=tanh&opt=adam")  # the settings string follows the knobs
            page.locator(".fmnist-train-button").click()
            see(status, "act tanh, opt adam")
            see(rows, count=3)
            see(rows.nth(2), "act tanh, opt adam")
            see(page.locator(".fmnist-share-code pre"), "optimizer='adam'")

            # a settings string typed into the box sets the knobs
            box = page.locator(".fmnist-share-text input")
            box.fill("act=sigmoid&opt=momentum&bs=64")
            box.press("Enter")
            see(status, "Settings applied")
            see(page.locator(".fmnist-batch-size .widget-readout"), "64")
            see(share, "act=sigmoid&opt=momentum&bs=64")

            # a long run, stopped from the page while the kernel trains in the background
            epochs = page.locator(".widget-slider", has_text="epochs")
            epochs.locator(".noUi-handle").press("End")
            see(epochs.locator(".widget-readout"), "50")
            page.locator(".fmnist-train-button").click()
            see(status, "epoch 1/50")
            page.locator(".fmnist-stop-button").click()
            see(status, "stopped by you")
            see(rows, count=4)
        finally:
            page.screenshot(path=str(last_screenshot))  # on failure too: what it showed
    finally:
        _stop_lab(proc)
        print(f"screenshots: {screenshot}, {last_screenshot}\n"
              f"JupyterLab log: {home / 'jupyterlab.log'}")
    assert screenshot.stat().st_size > 10_000
    assert not errors, f"errors in the page: {errors}"
