"""Attacks through the real app in headless Chromium (`streamlit run app.py`, Debian's chromium via playwright):
markup and script in prompts, what the browser receives (HTML, websocket frames, image URLs), double submits,
reused and expired invitations, the admin page without or with a wrong token, one rater looking for another's."""

from __future__ import annotations

import re
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from evalkit.experiments.rating_app import serve_app
from evalkit.experiments.rating_browser import CHROMIUM_ARGS
from evalkit.experiments.rating_load import make_study
from evalkit.rating import db
from evalkit.rating.session import create_invitations

pytestmark = pytest.mark.browser

HOSTILE = ("<img src=x onerror=alert(1)> **bold** [link](http://x) <script>alert(2)</script> `code` $x$ "
           "![pic](http://x/p.png) prompt {} with enough words to need a tooltip")
ADMIN_TOKEN = "admin-token-for-the-browser-tests"
WAIT = 60_000


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    root = tmp_path_factory.mktemp("browser-attacks")
    path = make_study(root, prompts=6, set_size=2, prompt_format=HOSTILE)
    conn = db.connect(path)
    [(invited, token)] = create_invitations(conn, 1, prefix="invited")
    [(_, expired)] = create_invitations(conn, 1, prefix="late", expires_at=datetime.now(timezone.utc) - timedelta(1))
    conn.close()
    with serve_app(path, root / "streamlit.log", admin_token=ADMIN_TOKEN) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield {"url": url, "db": path, "root": root, "browser": browser, "invited": invited, "token": token,
               "expired": expired}
        browser.close()


class Window:
    """One browser context (a separate browser session) and everything it received."""

    def __init__(self, app):
        self.context = app["browser"].new_context(viewport={"width": 1366, "height": 860})
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT)
        self.frames: list[bytes] = []
        self.dialogs: list[str] = []
        self.page.on("websocket", lambda ws: ws.on("framereceived", lambda f: self.frames.append(
            f if isinstance(f, bytes) else f.encode())))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.goto(app["url"])

    def sign_in(self, text: str, expect: str = "Prompt:") -> None:
        self.page.get_by_label("Your rater id or invitation token").fill(text)
        self.page.get_by_role("button", name="Start").click()
        self.page.get_by_text(expect).first.wait_for()

    def progress(self, done: int) -> None:
        self.page.get_by_text(re.compile(rf"^{done} / \d+ done$")).first.wait_for()

    def trial_id(self) -> int:
        classes = self.page.locator("[class*='st-key-submit-']").first.get_attribute("class")
        return int(re.search(r"st-key-submit-(\d+)", classes).group(1))

    def answer(self, trial_id: int, answers: dict[str, str]) -> None:
        for question, choice in answers.items():
            key = f".st-key-answer-{trial_id}-{question}-{choice}"
            self.page.locator(f"{key} button").click()
            self.page.locator(f"{key} [data-testid='stBaseButton-primary']").wait_for()

    def received(self) -> bytes:
        return b"".join(self.frames) + self.page.content().encode()

    def close(self) -> None:
        self.context.close()


def _votes(path, rater_id: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT trial_id, question, choice FROM votes WHERE rater_id = ? ORDER BY vote_id",
                            (rater_id,)).fetchall()
    finally:
        conn.close()


def _secrets_of_the_study(app) -> list[bytes]:
    """What must never reach a rater: run ids, run and study paths, image file names."""
    conn = db.connect(app["db"])
    runs = [(r["run_id"], r["run_path"]) for r in conn.execute("SELECT run_id, run_path FROM models")]
    conn.close()
    return [text.encode() for run_id, run_path in runs for text in (run_id, run_path)] + [
        str(app["root"]).encode(), str(app["db"]).encode(), b"images/0", b"model_a", b"run_path"]


def _hover_tooltip(page):
    """Hover the help icon until its tooltip shows (a hover during a rerun's re-layout can be missed)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    icon = page.locator("[data-testid='stTooltipIcon']").first
    tooltip = page.locator("[data-testid='stTooltipContent']").first
    for _ in range(10):
        page.mouse.move(0, 0)
        icon.hover()
        try:
            tooltip.wait_for(timeout=5000)
            return tooltip
        except PlaywrightTimeout:
            continue
    raise AssertionError("the question's tooltip never appeared")


def test_prompt_markup_and_script_are_shown_as_text(app):
    window = Window(app)
    try:
        window.sign_in("alice")
        page = window.page
        shown = page.locator("[data-testid='stMarkdownContainer']").filter(has_text="Prompt:").first.inner_text()
        literal = HOSTILE.split(" prompt {}")[0]
        assert literal in shown  # every character of the markup, as text
        assert page.locator("img[src='x'], img[src*='p.png'], a[href^='http://x']").count() == 0
        assert page.locator("strong", has_text=re.compile("^bold$")).count() == 0
        assert page.locator("code", has_text="code").count() == 0 and page.locator(".katex").count() == 0
        assert page.locator("script", has_text="alert(2)").count() == 0
        tooltip = _hover_tooltip(page)  # the long question's tooltip
        assert literal in tooltip.inner_text()
        assert tooltip.locator("a, strong, img, code").count() == 0
        page.wait_for_timeout(500)  # an onerror handler or a script would have fired by now
        assert window.dialogs == []
    finally:
        window.close()


def test_the_rater_page_reveals_no_model_path_or_file_name(app):
    window = Window(app)
    try:
        window.sign_in("bob")
        window.page.locator("img").nth(3).wait_for()  # two sets of two
        sources = window.page.eval_on_selector_all("img", "found => found.map(e => e.getAttribute('src'))")
        # content-hash URLs from Streamlit's media store: nothing of the run, its path or the file's name
        assert len(sources) == 4 and all(re.fullmatch(f"({re.escape(app['url'])})?" + r"/media/[0-9a-f]{20,64}\.png", s)
                                         for s in sources), sources
        received = window.received()
        leaked = [secret for secret in _secrets_of_the_study(app) if secret in received]
        assert leaked == []
    finally:
        window.close()


def test_double_click_and_double_enter_store_one_vote_per_question(app):
    window = Window(app)
    try:
        window.sign_in("carol")
        first = window.trial_id()
        window.answer(first, {"quality": "left", "alignment": "right"})
        window.page.locator(f".st-key-submit-{first} button").dblclick()
        window.progress(1)
        window.page.wait_for_timeout(1000)  # let a second click's rerun finish
        second = window.trial_id()
        window.page.keyboard.press("D")
        window.page.keyboard.press("J")
        window.page.locator(f".st-key-answer-{second}-alignment-left [data-testid='stBaseButton-primary']").wait_for()
        window.page.keyboard.press("Enter")
        window.page.keyboard.press("Enter")
        window.progress(2)
        window.page.wait_for_timeout(1000)
        votes = _votes(app["db"], "carol")
        assert sorted((t, q) for t, q, _ in votes) == sorted(
            [(first, "alignment"), (first, "quality"), (second, "alignment"), (second, "quality")])
        assert window.page.get_by_text(re.compile(r"^2 / \d+ done$")).count() == 1
    finally:
        window.close()


def test_a_reused_invitation_signs_the_first_window_out(app):
    first, second = Window(app), Window(app)
    try:
        first.sign_in(app["token"])
        trial = first.trial_id()
        first.answer(trial, {"quality": "tie", "alignment": "tie"})
        first.page.locator(f".st-key-submit-{trial} button").click()
        first.progress(1)
        second.sign_in(app["token"])  # the same token in another browser
        second.progress(1)
        pending = first.trial_id()
        first.page.locator(f".st-key-answer-{pending}-quality-left button").click()
        first.page.get_by_text("this window is signed out").wait_for()
        first.page.get_by_label("Your rater id or invitation token").wait_for()
        assert len(_votes(app["db"], app["invited"])) == 2
        trial = second.trial_id()
        assert trial == pending  # the rater's one open trial, not a second rater's place
        second.answer(trial, {"quality": "right", "alignment": "left"})
        second.page.locator(f".st-key-submit-{trial} button").click()
        second.progress(2)
        assert len(_votes(app["db"], app["invited"])) == 4
    finally:
        first.close()
        second.close()


def test_an_expired_invitation_is_refused(app):
    window = Window(app)
    try:
        window.sign_in(app["expired"], expect="this invitation expired")
        assert window.page.get_by_text("Prompt:").count() == 0
    finally:
        window.close()


def _admin_token(window: Window, token: str) -> None:
    field = window.page.get_by_label("Admin token")
    if not field.is_visible():  # the sidebar may still be open from before a reload; the expander never is
        expand = window.page.locator("[data-testid='stExpandSidebarButton']")
        if expand.is_visible():
            expand.click()
        window.page.get_by_text("Study admin").click()
    field.fill(token)
    field.press("Enter")


def test_admin_page_needs_the_exact_token_and_raters_see_only_their_own(app):
    other, rater, admin = Window(app), Window(app), Window(app)
    try:
        other.sign_in("erin")
        trial = other.trial_id()
        other.answer(trial, {"quality": "left", "alignment": "left"})
        other.page.locator(f".st-key-submit-{trial} button").click()
        other.progress(1)
        rater.sign_in("dave")
        rater.progress(0)  # erin's vote is not dave's progress
        admin.page.get_by_label("Your rater id or invitation token").wait_for()  # no token typed: a rater's page
        for wrong in ("admin-token-for-the-browser-test", ADMIN_TOKEN + "s", ADMIN_TOKEN.upper(), " " + ADMIN_TOKEN):
            _admin_token(admin, wrong)
            admin.page.get_by_text("wrong admin token").wait_for()
            assert admin.page.locator("[data-testid='stDataFrame']").count() == 0
            admin.page.reload()
            admin.page.get_by_label("Your rater id or invitation token").wait_for()
        assert [secret for secret in _secrets_of_the_study(app) if secret in admin.received()] == []
        _admin_token(admin, ADMIN_TOKEN)
        admin.page.get_by_text("— admin").wait_for()
        assert b"run-left" in admin.received()  # the admin page does name the runs: the check above can fail
        admin.page.locator("[data-testid='stDataFrame']").nth(1).wait_for()  # progress and raters tables
        received = rater.received()
        assert b"erin" not in received and b"run-left" not in received
    finally:
        for window in (other, rater, admin):
            window.close()
