"""report.html in a real headless Chromium, opened from disk: not blank (the metric table is visible, the page is
not all white), every request is the file itself or a data: URI (nothing from the network), a thumbnail opens
its full-size image in the CSS overlay and the close link hides it again. Writes a full-page screenshot (a PNG
of 256 colours: Pillow's fast-octree quantizer, optimized). A report of four runs fits a 1280 px window: its
metric table, runs table and image grids need no sideways scrolling, and every table sits in a container that
would scroll.

Needs Debian's `chromium` and the `playwright` Python package (skips otherwise). The committed
reports/report/report_page.png is this test's screenshot of a report of two real toy-world runs; how it is made
is in reports/report/README.md (EVALKIT_REPORT_RUNS chooses the runs, EVALKIT_SCREENSHOT where the PNG goes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit.reports.report import build_report, write_report
from tests.reports.report_runs import toy_runs  # noqa: F401 (fixture)
from tests.reports.test_report_labels import four_runs  # noqa: F401 (fixture)
from tests.reports.test_sweeps import make_run, reference  # noqa: F401 (fixtures of four_runs)

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture
def chromium():
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _runs(toy_runs) -> list[Path]:
    chosen = os.environ.get("EVALKIT_REPORT_RUNS")
    return [Path(p) for p in chosen.split(os.pathsep)] if chosen else [toy_runs.truth, toy_runs.shuffled]


def test_report_opens_from_disk_in_chromium(chromium, toy_runs, tmp_path):
    paths = write_report(build_report(_runs(toy_runs)), tmp_path / "report")
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(paths["html"].resolve().as_uri())
    page.wait_for_load_state("load")
    table = page.locator("section[id^='metrics-'] table.data").first
    assert table.is_visible() and "toyworld.all" in table.inner_text()
    assert page.locator("figure.chart img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    assert requests[0] == paths["html"].resolve().as_uri()
    assert all(url.startswith(("file://", "data:")) for url in requests), requests

    shot = Path(os.environ.get("EVALKIT_SCREENSHOT", tmp_path / "report_page.png"))
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as image:  # 256 colours (text, tables, charts, toy-world shapes): a small file to commit
        image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(shot, optimize=True)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape[0] > 2000  # the full page, not the viewport
    assert (pixels < 235).mean() > 0.03 and len(np.unique(pixels)) > 50  # text, tables, charts, images: not blank

    overlay_id = page.locator("table.grid a[href^='#img-']").first.get_attribute("href")[1:]
    overlay = page.locator(f"[id='{overlay_id}']")
    assert not overlay.is_visible()
    page.locator(f"table.grid a[href='#{overlay_id}']").first.click()
    assert overlay.is_visible()
    assert overlay.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    overlay.locator("a.close").click()
    assert not overlay.is_visible()


OVERFLOW = """() => [...document.querySelectorAll('.table-wrap')].map(wrap => ({
    kind: wrap.querySelector('table').className, first: wrap.querySelector('th').textContent,
    scrolls: wrap.scrollWidth > wrap.clientWidth + 1, overflow: getComputedStyle(wrap).overflowX}))"""


def test_four_runs_fit_a_1280_px_window(chromium, four_runs, tmp_path):
    paths = write_report(build_report(four_runs), tmp_path / "report")
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(paths["html"].resolve().as_uri())
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # nothing pushes the page wider
    wraps = page.evaluate(OVERFLOW)
    assert wraps and all(w["overflow"] == "auto" for w in wraps)  # a wider table would scroll, not be cut off
    fitted = [w for w in wraps if w["kind"] == "grid" or (w["kind"] == "data" and w["first"] in ("stat", "label"))]
    assert len(fitted) >= 4 and not [w for w in fitted if w["scrolls"]]  # metric table, runs, grids: no scrolling
