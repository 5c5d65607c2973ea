"""End to end in a real headless Chromium: `streamlit run app.py`, two raters sign in and vote at once, the
database holds exactly their votes. Needs Debian's `chromium` and the `playwright` Python package."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the fixture skips these tests
    expect = None

from evalkit.rating import db
from evalkit.rating.build import create_study
from evalkit.rating.plot import plot_summary
from evalkit.rating.summary import summarize

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(two_runs, tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    path = tmp_path / "study.sqlite"
    # no controls here, so both raters count in the summary whatever they click (controls: test_summary_cli)
    create_study(path, two_runs, ["quality", "alignment"], set_size=4, control_fraction=0)
    port = _free_port()
    log = open(tmp_path / "streamlit.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--", "--db", str(path)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "EVALKIT_ADMIN_TOKEN": ""},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text())
        time.sleep(0.5)
    yield url, path
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _http_body(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _sign_in(page, url: str, rater: str) -> None:
    page.goto(url)
    page.get_by_label("Your rater id or invitation token").fill(rater)
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Prompt:").wait_for(timeout=60_000)


def _vote(page, done_before: int, label: str, keys: tuple[str, ...] = ()) -> None:
    """Answer both questions with ``label`` by mouse, or by the given keyboard shortcuts, then submit."""
    page.get_by_text(f"{done_before} / ").first.wait_for(timeout=60_000)
    page.get_by_text("Which set of images is of higher quality?").wait_for(timeout=60_000)
    chosen = page.locator("[data-testid='stBaseButton-primary']").filter(has_text=label)
    for number in range(2):
        if keys:
            page.keyboard.press(keys[number])
        else:
            page.get_by_role("button").filter(has_text=label).nth(number).click()
        expect(chosen).to_have_count(number + 1, timeout=60_000)  # the server registered the choice
    if keys:
        page.keyboard.press("Enter")
    else:
        page.get_by_role("button").filter(has_text="Submit and next").click()
    page.get_by_text(f"{done_before + 1} / ").first.wait_for(timeout=60_000)


def test_two_raters_vote_in_chromium_at_once(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, path = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        try:
            pages = {}
            for rater in ("alice", "bob"):  # separate contexts = separate browser sessions
                pages[rater] = browser.new_context(viewport={"width": 1366, "height": 860}).new_page()
                _sign_in(pages[rater], url, rater)
            shot = Path(os.environ.get("EVALKIT_SCREENSHOT", tmp_path / "rater.png"))
            pages["alice"].screenshot(path=str(shot), full_page=True)
            html = pages["alice"].content()
            assert "run-alpha" not in html and "run-beta" not in html and "images/0" not in html
            for step in range(3):  # interleaved: both sessions write while the other is live
                _vote(pages["alice"], step, "◀ Left set")
                # bob uses the keyboard only on his last trial: D (quality: right), L (alignment: right), Enter
                _vote(pages["bob"], step, "Right set ▶", keys=("D", "L") if step == 2 else ())
        finally:
            browser.close()
    for probe in ("/media/../../../../etc/passwd", "/app/static/../../etc/passwd", "/media/" + "0" * 32 + ".png",
                  f"/{path.name}", "/run-alpha/images/00000_00.png"):
        # Streamlit answers unknown paths with its HTML shell; what matters is that no file content comes back
        if _http_status(url + probe) == 200:
            body = _http_body(url + probe)
            assert b"root:" not in body and not body.startswith(b"\x89PNG") and not body.startswith(b"SQLite")
    conn = db.connect(path)
    rows = [dict(r) for r in conn.execute("SELECT rater_id, trial_id, question, choice, left_side FROM votes")]
    assert len(rows) == 12
    for rater, want_left in (("alice", True), ("bob", False)):
        mine = [r for r in rows if r["rater_id"] == rater]
        assert len({r["trial_id"] for r in mine}) == 3 and len(mine) == 6
        assert all((r["choice"] == r["left_side"]) == want_left for r in mine)
    # and the browser's votes flow into the summary and the plot
    summary = summarize(conn, n_boot=50)
    assert summary["votes"]["total"] == summary["votes"]["analysed"] == 12
    assert sum(row["votes"] for c in summary["comparisons"] for row in c["categories"] if row["category"] == "all") == 12
    assert plot_summary(summary, tmp_path / "fig.png").stat().st_size > 10_000
