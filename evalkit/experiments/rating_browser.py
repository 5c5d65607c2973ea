"""Concurrent raters through the real rating app in headless Chromium, and the check of their votes against the
database.

Each rater is its own browser context (its own cookies and Streamlit session) in one Chromium, all driven at once
by playwright's asyncio API. A rater signs in, and for each trial reads the trial id from the page (the answer and
submit buttons carry it in their element keys), clicks a random answer per question, waits until the server shows
the choice, clicks "Submit and next" and waits for the next trial. What it clicked is its submission; latency is
measured twice from the submit click: to the vote's ``created_at`` in the database (SQLite's clock, milliseconds,
the same machine clock as ``time.time``) and to the next trial on screen (the app's round trip).
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from evalkit.errors import EvalkitError

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SCREEN_ANSWERS = ("left", "tie", "right")
WAIT_MS = 120_000
SUBMIT_KEY = re.compile(r"st-key-submit-(\d+)")


@dataclass(frozen=True)
class Submission:
    """One trial as a rater answered it, in screen terms, and when the answer was submitted (``time.time()``)."""

    rater_id: str
    trial_id: int
    answers: dict[str, str]
    submitted_at: float
    round_trip_s: float = float("nan")  # submit click to the next trial on screen; NaN outside a browser
    prompt_shown: str = ""


@dataclass
class VoteCheck:
    """Submissions against the votes table: every submitted answer must be there exactly once, unchanged."""

    submitted: int = 0        # answers submitted (trials x questions)
    recorded: int = 0         # vote rows of these raters
    lost: int = 0             # submitted, no row
    duplicated: int = 0       # rows beyond one per (rater, trial, question)
    changed: int = 0          # a row whose answer differs from the submitted one
    unsubmitted: int = 0      # a row nobody submitted
    wrong_trial: int = 0      # a browser submission whose page showed another trial's prompt
    latencies_s: list[float] = field(default_factory=list)  # submit to created_at, one per submitted trial

    @property
    def ok(self) -> bool:
        return self.submitted == self.recorded and not (self.lost or self.duplicated or self.changed
                                                        or self.unsubmitted or self.wrong_trial)


def _epoch(created_at: str) -> float:
    return datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def check_votes(db_path: str | Path, submissions: list[Submission]) -> VoteCheck:
    """Compare what raters submitted with the votes table, read through a plain read-only SQLite connection."""
    raters = sorted({s.rater_id for s in submissions})
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            f"SELECT rater_id, trial_id, question, choice, left_side, created_at FROM votes"
            f" WHERE rater_id IN ({','.join('?' * len(raters))})", raters).fetchall()
        prompts = dict(conn.execute("SELECT trial_id, prompt FROM trials"))
    finally:
        conn.close()
    check = VoteCheck(recorded=len(rows))
    stored: dict[tuple[str, int, str], list[tuple[str, float]]] = {}
    for rater_id, trial_id, question, choice, left_side, created_at in rows:
        screen = "tie" if choice == "tie" else ("left" if choice == left_side else "right")
        stored.setdefault((rater_id, trial_id, question), []).append((screen, _epoch(created_at)))
    check.duplicated = sum(len(found) - 1 for found in stored.values())
    wanted = set()
    for sub in submissions:
        if sub.prompt_shown and " ".join(str(prompts.get(sub.trial_id)).split()) not in sub.prompt_shown:
            check.wrong_trial += 1
        times = []
        for question, answer in sub.answers.items():
            key = (sub.rater_id, sub.trial_id, question)
            wanted.add(key)
            check.submitted += 1
            if key not in stored:
                check.lost += 1
                continue
            screen, created = stored[key][0]
            check.changed += screen != answer
            times.append(created)
        if times:
            # created_at has millisecond resolution: a vote can look up to 1 ms older than its click
            check.latencies_s.append(max(0.0, max(times) - sub.submitted_at))
    check.unsubmitted = sum(len(found) for key, found in stored.items() if key not in wanted)
    return check


async def _trial_id(page, done: set[int]) -> int:
    """The trial on screen: the submit button whose trial has not been voted yet (Streamlit keeps the previous
    page's elements on screen until the new run replaces them)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        # one snapshot of the DOM: elements listed one by one can vanish between two calls
        classes = await page.eval_on_selector_all("[class*='st-key-submit-']", "found => found.map(e => e.className)")
        ids = {int(match.group(1)) for text in classes if (match := SUBMIT_KEY.search(text))}
        fresh = ids - done
        if len(fresh) == 1 and not ids & done:
            return fresh.pop()
        await asyncio.sleep(0.05)
    raise EvalkitError("the next trial did not appear in the browser")


async def _progress(page, done: int) -> None:
    await page.get_by_text(re.compile(rf"^{done} / \d+ done$")).first.wait_for(timeout=WAIT_MS)


async def sign_in(page, url: str, text: str) -> None:
    await page.goto(url)
    await page.get_by_label("Your rater id or invitation token").fill(text)
    await page.get_by_role("button", name="Start").click()
    await page.get_by_text("Prompt:").first.wait_for(timeout=WAIT_MS)


async def prompt_text(page) -> str:
    """The prompt line as the rater reads it (rendered text, not markup)."""
    return await page.locator("[data-testid='stMarkdownContainer']").filter(has_text="Prompt:").first.inner_text()


async def answer_and_submit(page, trial_id: int, answers: dict[str, str]) -> float:
    """Click the answers, wait until the server shows each as chosen, click submit; returns the click's time."""
    from playwright.async_api import expect

    for question, answer in answers.items():
        key = f".st-key-answer-{trial_id}-{question}-{answer}"
        await page.locator(f"{key} button").click()
        await expect(page.locator(f"{key} [data-testid='stBaseButton-primary']")).to_have_count(1, timeout=WAIT_MS)
    submitted_at = time.time()
    await page.locator(f".st-key-submit-{trial_id} button").click()
    return submitted_at


async def _rater(browser, url: str, rater_id: str, votes: int, questions: list[str], seed: int,
                 dialogs: list[str]) -> list[Submission]:
    rng = random.Random(f"{seed}:{rater_id}")
    context = await browser.new_context(viewport={"width": 1366, "height": 860})
    try:
        page = await context.new_page()

        async def on_dialog(dialog):
            dialogs.append(f"{rater_id}: {dialog.type} {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        await sign_in(page, url, rater_id)
        made: list[Submission] = []
        for step in range(votes):
            await _progress(page, step)
            trial_id = await _trial_id(page, {s.trial_id for s in made})
            prompt = await prompt_text(page)
            answers = {question: rng.choice(SCREEN_ANSWERS) for question in questions}
            submitted_at = await answer_and_submit(page, trial_id, answers)
            await _progress(page, step + 1)
            made.append(Submission(rater_id, trial_id, answers, submitted_at, time.time() - submitted_at, prompt))
        return made
    finally:
        await context.close()


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise EvalkitError("Debian's chromium is not installed (apt-get install chromium)")
    return path


async def _all_raters(url: str, raters: list[str], votes: int, questions: list[str], seed: int):
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise EvalkitError("the playwright Python package is not installed (pip install playwright)") from None
    dialogs: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            results = await asyncio.gather(*(_rater(browser, url, r, votes, questions, seed, dialogs) for r in raters))
        finally:
            await browser.close()
    return [s for made in results for s in made], dialogs


def browser_raters(url: str, raters: list[str], votes: int, questions: list[str],
                   seed: int = 0) -> tuple[list[Submission], list[str]]:
    """Drive ``raters`` at once through the app at ``url``, ``votes`` trials each, random answers (seeded per
    rater). Returns every submission and every JavaScript dialog that fired (there must be none)."""
    return asyncio.run(_all_raters(url, raters, votes, questions, seed))
