"""What a rater can do: sign in, get the next trial, vote. Everything a rater page needs and nothing more:
no function here returns another rater's votes or which model is on which side.

Invitations are bearer tokens (128 random bits; only their sha256 is stored) that may carry an expiry. Each sign-in
starts a session (``start_session``); only a rater's latest session may vote, so a token opened in a second
browser, by the rater or by anyone it was passed to, signs the first one out instead of giving two voters one
rater's place. Whatever a page sends, a rater votes at most once per trial and question, only on trials the
database assigned to them, and sides come from that assignment.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from evalkit.errors import EvalkitError
from evalkit.rating import db
from evalkit.rating.questions import CHOICES

RATER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
TOKEN_PREFIX = "inv-"
SCREEN_ANSWERS = ("left", "tie", "right")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invitations(conn: sqlite3.Connection, count: int, prefix: str = "rater",
                       expires_at: datetime | None = None) -> list[tuple[str, str]]:
    """New raters with one secret token each, valid until ``expires_at`` (aware datetime; None: no expiry);
    returns (rater_id, token). Only the token's hash is stored."""
    if not RATER_ID.match(f"{prefix}-abcdef"):
        raise EvalkitError(f"--prefix {prefix!r}: rater ids are letters, digits or . _ - @, starting with a letter "
                           "or digit, at most 57 characters before the random suffix")
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    expiry = None if expires_at is None else expires_at.astimezone(timezone.utc).isoformat(timespec="seconds")
    made = []
    with db.write(conn):
        for _ in range(count):
            rater_id = f"{prefix}-{secrets.token_hex(3)}"
            token = TOKEN_PREFIX + secrets.token_urlsafe(16)
            conn.execute("INSERT INTO raters (rater_id, token_hash, expires_at) VALUES (?, ?, ?)",
                         (rater_id, _token_hash(token), expiry))
            made.append((rater_id, token))
    return made


def _expired(expires_at: str | None) -> bool:
    return expires_at is not None and datetime.fromisoformat(expires_at) <= datetime.now(timezone.utc)


def sign_in(conn: sqlite3.Connection, text: str) -> str:
    """Turn what a rater typed (an invitation token, or a self-chosen id when the study allows it) into a rater id."""
    text = (text or "").strip()
    if text.startswith(TOKEN_PREFIX):
        row = conn.execute("SELECT rater_id, expires_at FROM raters WHERE token_hash = ?",
                           (_token_hash(text),)).fetchone()
        if row is None:
            raise EvalkitError("unknown invitation token")
        if _expired(row["expires_at"]):
            raise EvalkitError(f"this invitation expired at {row['expires_at']}")
        return row["rater_id"]
    if db.read_config(conn).get("invite_only"):
        raise EvalkitError("this study is by invitation only: enter your invitation token")
    if not RATER_ID.match(text):
        raise EvalkitError("a rater id is 2-64 letters, digits or . _ - @, starting with a letter or digit")
    with db.write(conn):
        row = conn.execute("SELECT token_hash FROM raters WHERE rater_id = ?", (text,)).fetchone()
        if row is not None and row["token_hash"] is not None:
            # An invited rater's id is not a password: only their token opens their session.
            raise EvalkitError("this id belongs to an invited rater: enter the invitation token instead")
        conn.execute("INSERT OR IGNORE INTO raters (rater_id) VALUES (?)", (text,))
    return text


def start_session(conn: sqlite3.Connection, rater_id: str) -> str:
    """A new session key for a rater who just signed in; from now on only this key may vote for the rater."""
    key = secrets.token_urlsafe(16)
    with db.write(conn):
        if conn.execute("UPDATE raters SET session_hash = ? WHERE rater_id = ?",
                        (_token_hash(key), rater_id)).rowcount != 1:
            raise EvalkitError(f"unknown rater {rater_id!r}")
    return key


def check_session(conn: sqlite3.Connection, rater_id: str, session_key: str) -> None:
    """Refuse a session that is no longer the rater's latest, or whose invitation has expired."""
    row = conn.execute("SELECT session_hash, expires_at FROM raters WHERE rater_id = ?", (rater_id,)).fetchone()
    if row is None:
        raise EvalkitError(f"unknown rater {rater_id!r}")
    if row["session_hash"] is None or not hmac.compare_digest(row["session_hash"], _token_hash(session_key or "")):
        raise EvalkitError("you signed in again in another window (or someone else used your invitation): "
                           "this window is signed out")
    if _expired(row["expires_at"]):
        raise EvalkitError(f"this invitation expired at {row['expires_at']}")


@dataclass(frozen=True)
class TrialView:
    """One trial as one rater sees it: sides already in screen order, images only as opaque ids."""

    trial_id: int
    prompt: str
    left_images: list[str]
    right_images: list[str]


def progress(conn: sqlite3.Connection, rater_id: str) -> tuple[int, int]:
    """(trials this rater finished, trials this rater will be asked)."""
    config = db.read_config(conn)
    n_questions = len(config["questions"])
    done = conn.execute(
        "SELECT COUNT(*) FROM (SELECT trial_id FROM votes WHERE rater_id = ? GROUP BY trial_id HAVING COUNT(*) >= ?)",
        (rater_id, n_questions),
    ).fetchone()[0]
    total = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    if config.get("trials_per_rater"):
        total = min(total, int(config["trials_per_rater"]))
    return done, total


def _pending_trial(conn: sqlite3.Connection, rater_id: str, n_questions: int) -> int | None:
    row = conn.execute(
        "SELECT a.trial_id FROM assignments a LEFT JOIN votes v ON v.rater_id = a.rater_id AND v.trial_id = a.trial_id"
        " WHERE a.rater_id = ? GROUP BY a.trial_id HAVING COUNT(v.vote_id) < ? ORDER BY a.shown_at LIMIT 1",
        (rater_id, n_questions),
    ).fetchone()
    return None if row is None else row["trial_id"]


def _order_key(rater_id: str, trial_id: int) -> str:
    # A per-rater shuffle, stable across refreshes, so raters do not all walk the trials in the same order.
    return hashlib.sha256(f"{rater_id}:{trial_id}".encode()).hexdigest()


def next_trial(conn: sqlite3.Connection, rater_id: str) -> TrialView | None:
    """The trial to show now: the unfinished one already shown (a refresh shows it again, same sides), else a
    new one this rater has never seen, preferring trials with the fewest raters. None when the rater is done."""
    config = db.read_config(conn)
    n_questions = len(config["questions"])
    if conn.execute("SELECT 1 FROM raters WHERE rater_id = ?", (rater_id,)).fetchone() is None:
        raise EvalkitError(f"unknown rater {rater_id!r}")
    trial_id = _pending_trial(conn, rater_id, n_questions)  # read-only: most page loads take no write lock
    if trial_id is None:
        with db.write(conn):
            # re-check under the lock: another tab of the same rater may have just been given a trial
            trial_id = _pending_trial(conn, rater_id, n_questions)
            if trial_id is None:
                done, total = progress(conn, rater_id)
                if done >= total:
                    return None
                candidates = conn.execute(
                    "SELECT t.trial_id, COUNT(x.rater_id) AS seen FROM trials t"
                    " LEFT JOIN assignments x ON x.trial_id = t.trial_id"
                    " WHERE t.trial_id NOT IN (SELECT trial_id FROM assignments WHERE rater_id = ?)"
                    " GROUP BY t.trial_id",
                    (rater_id,),
                ).fetchall()
                if not candidates:
                    return None
                trial_id = min(candidates, key=lambda r: (r["seen"], _order_key(rater_id, r["trial_id"])))["trial_id"]
                conn.execute(
                    "INSERT INTO assignments (rater_id, trial_id, left_side) VALUES (?, ?, ?)",
                    (rater_id, trial_id, secrets.choice("AB")),
                )
    return _view(conn, rater_id, trial_id)


def _view(conn: sqlite3.Connection, rater_id: str, trial_id: int) -> TrialView:
    left = conn.execute(
        "SELECT left_side FROM assignments WHERE rater_id = ? AND trial_id = ?", (rater_id, trial_id)
    ).fetchone()["left_side"]
    prompt = conn.execute("SELECT prompt FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()["prompt"]
    images = {"A": [], "B": []}
    for row in conn.execute(
        "SELECT side, image_id FROM trial_images WHERE trial_id = ? ORDER BY position", (trial_id,)
    ):
        images[row["side"]].append(row["image_id"])
    right = "B" if left == "A" else "A"
    return TrialView(trial_id, prompt, images[left], images[right])


def record_answers(conn: sqlite3.Connection, rater_id: str, trial_id: int, answers: dict[str, str],
                   session_key: str | None = None) -> int:
    """Store one rater's answers to one trial, given in screen terms (left / tie / right).

    Sides come from the recorded assignment, never from the page, so a forged form cannot flip them. With a
    ``session_key`` (the app always passes one) the vote is refused unless it is the rater's latest session.
    Returns how many votes were new: 0 for a repeated submit."""
    config = db.read_config(conn)
    if set(answers) != set(config["questions"]):
        raise EvalkitError(f"answer every question: {', '.join(config['questions'])}")
    if any(answer not in SCREEN_ANSWERS for answer in answers.values()):
        raise EvalkitError(f"answers must be one of {', '.join(SCREEN_ANSWERS)}")
    with db.write(conn):
        if session_key is not None:
            check_session(conn, rater_id, session_key)  # under the write lock: no sign-in can slip in between
        row = conn.execute(
            "SELECT left_side FROM assignments WHERE rater_id = ? AND trial_id = ?", (rater_id, trial_id)
        ).fetchone()
        if row is None:
            raise EvalkitError("this trial was not shown to this rater")
        left = row["left_side"]
        to_canonical = {"left": left, "right": "B" if left == "A" else "A", "tie": "tie"}
        new = 0
        for question, answer in answers.items():
            choice = to_canonical[answer]
            assert choice in CHOICES
            cursor = conn.execute(
                "INSERT INTO votes (rater_id, trial_id, question, choice, left_side) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (rater_id, trial_id, question) DO NOTHING",
                (rater_id, trial_id, question, choice, left),
            )
            new += cursor.rowcount
    return new


def check_token(given: str | None, expected: str | None) -> bool:
    """Constant-time admin token check; no configured token means no admin access at all."""
    if not expected or not given:
        return False
    # digests, so that not even the token's length shows in the time a wrong guess takes
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())

