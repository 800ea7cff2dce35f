"""A PNG of a report's first screen, for the docs: ``python -m warmbench.report.screenshot
runs/quickstart/report.html docs/img/report.png`` (needs playwright and a Chromium; Debian's
``chromium`` is used when present, ``make browser`` installs it)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ..errors import WarmbenchError

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


def screenshot(report: Path, out: Path, width: int = 1400, height: int = 1100) -> Path:
    if not report.is_file():
        raise WarmbenchError(f"{report}: no such report (run `warmbench report RUN` first)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise WarmbenchError("screenshots need playwright: pip install 'warmbench[dev]'") from e
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(report.resolve().as_uri())
        page.wait_for_load_state("load")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m warmbench.report.screenshot REPORT.html OUT.png")
    try:
        print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
    except WarmbenchError as e:
        sys.exit(f"error: {e}")
