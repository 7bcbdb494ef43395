"""Writes docs/googlenet_report.png: the GoogLeNet HTML report as headless Chromium shows it.

Run after changing the page (viz/html.py): `python scripts/report_screenshot.py`. Needs
Debian's chromium and the `browser` extra (Playwright); tests/test_browser.py checks the same
page and that such a screenshot is not blank.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import inception_kit as ik
from inception_kit.files import staged_file
from inception_kit.viz.html import render_report

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "googlenet_report.png"


def main(out: Path = OUT) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "googlenet.html"
        page_file.write_text(render_report(ik.analyse("googlenet")), encoding="utf-8")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1250})
            page.goto(page_file.as_uri())
            page.locator('details[data-block="inc3a"] summary').click()  # one block opened to its layers
            page.evaluate("window.scrollTo(0, 0)")
            with staged_file(out, overwrite=True) as tmp_png:
                page.screenshot(path=str(tmp_png), type="png")
            browser.close()
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
