"""The README's pictures of the report: its index, a section page and the explorer.

    python -m fmnist_helpers.screenshots [--report DIR] [--out DIR]

Each page of a built report (``make report`` writes ``report/``) is opened from disk in
Debian's headless Chromium, driven by Playwright (nothing is downloaded; the network is refused,
as the pages need none), at a 1000 x 700 viewport, and saved into ``docs/images/`` as a PNG,
or as a JPEG where the PNG would pass :data:`MAX_BYTES`. Run it again after ``make report`` to
refresh them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")  # Debian's (apt-get install chromium), as the tests use
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
VIEWPORT = {"width": 1000, "height": 700}
MAX_BYTES = 150_000
QUALITIES = (75, 65, 55, 45)  # JPEG qualities tried in turn until the image fits MAX_BYTES


@dataclass(frozen=True)
class Shot:
    """One picture: which page, which element to scroll to the top (None: the page's top),
    what to wait for before taking it, and the file it goes to."""

    page: str
    image: str  # the file's name, without its suffix
    top: str | None = None
    ready: str | None = None


SHOTS = (
    Shot("index.html", "index", top="h2"),  # the findings' verdicts
    Shot("01_depth.html", "section", top=".jp-OutputArea-output img"),  # the first figure
    Shot("explorer.html", "explorer", top=".js-plotly-plot", ready=".js-plotly-plot .main-svg"),
)


def take(report: Path, out: Path, shots: tuple[Shot, ...] = SHOTS, browser=None) -> list[Path]:
    """Take every shot of ``report`` into ``out``; return the images written. ``browser``: a
    Playwright browser to use (default: Debian's Chromium, started and closed here)."""
    missing = [s.page for s in shots if not (Path(report) / s.page).is_file()]
    if missing:
        raise SystemExit(f"{report}: no {', '.join(missing)}; build the report first "
                         "(make report)")
    Path(out).mkdir(parents=True, exist_ok=True)
    if browser is not None:
        return _take(browser, Path(report), Path(out), shots)
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium, as "
                         "`make setup` does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            return _take(browser, Path(report), Path(out), shots)
        finally:
            browser.close()


def _take(browser, report: Path, out: Path, shots: tuple[Shot, ...]) -> list[Path]:
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.route("**/*", lambda route: route.continue_()
                   if route.request.url.startswith("file://") else route.abort())
        written = []
        for shot in shots:
            page.goto((report / shot.page).resolve().as_uri())
            page.wait_for_load_state("load")
            if shot.ready:
                page.locator(shot.ready).first.wait_for()
            if shot.top:
                page.locator(shot.top).first.evaluate(
                    "e => window.scrollTo(0, e.getBoundingClientRect().top + scrollY - 8)")
            written.append(_save(page, out / shot.image))
        return written
    finally:
        page.close()


def _save(page, stem: Path) -> Path:
    """The viewport as ``stem``.png, or as ``stem``.jpg at the best of :data:`QUALITIES` that
    fits :data:`MAX_BYTES`; the other format's file, if any, is removed."""
    data, suffix = page.screenshot(type="png"), ".png"
    for quality in QUALITIES:
        if len(data) <= MAX_BYTES:
            break
        data, suffix = page.screenshot(type="jpeg", quality=quality), ".jpg"
    if len(data) > MAX_BYTES:
        raise ValueError(f"{stem.name}: {len(data):,} bytes at JPEG quality {QUALITIES[-1]}, "
                         f"over {MAX_BYTES:,}")
    for old in (".png", ".jpg"):
        stem.with_suffix(old).unlink(missing_ok=True)
    path = stem.with_suffix(suffix)
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmnist_helpers.screenshots",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=ROOT / "report",
                        help="a built report (default: report/)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images",
                        help="where the images go (default: docs/images/)")
    args = parser.parse_args(argv)
    for path in take(args.report, args.out):
        print(f"{path} ({path.stat().st_size / 1000:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
