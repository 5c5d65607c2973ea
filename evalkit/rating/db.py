"""The study database: one SQLite file in WAL mode, safe for many rater sessions writing at once.

Why SQLite and these settings: WAL lets readers proceed while one writer commits; a generous busy timeout
makes concurrent writers wait for the lock instead of failing; ``synchronous=NORMAL`` (SQLite's recommended WAL
setting) keeps a committed vote through any crash of the app or its server process, and only a power cut or kernel
crash can undo the last commits. A study created with ``durable`` (``evalkit study create --durable``, stored in its
config) opens every connection with ``synchronous=FULL`` instead: each commit is fsynced, so a vote the app
confirmed survives a power cut too, at the cost measured by ``benchmarks/perf/rating_db_bench.py``. Every write is
one short ``BEGIN IMMEDIATE`` transaction, so writers queue, never deadlock.

Integrity lives in the schema, not in the app: a vote is UNIQUE per (rater, trial, question) and inserted
with ON CONFLICT DO NOTHING (a double submit or a refresh changes nothing), votes cannot be updated, and
triggers freeze the study's definition (config, models, images, trials) as soon as one vote exists.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from evalkit.errors import EvalkitError

BUSY_TIMEOUT_S = 30.0
FROZEN_TABLES = ("meta", "models", "images", "trials", "trial_images")
RATER_COLUMNS = ("expires_at", "session_hash")  # added after the first schema; see _add_rater_columns
# PRAGMA user_version of a study database. 0: made before the version was recorded, read as (and upgraded to) 1;
# any other version (a newer evalkit's layout, or another program's database) is refused, never changed.
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    model_id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, run_path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    image_id TEXT PRIMARY KEY,                      -- opaque random id: the only handle a page ever sees
    model_id INTEGER REFERENCES models(model_id),   -- NULL for generated control images
    path TEXT,                                      -- relative to the model's run directory
    png BLOB,                                       -- control images (noise) live in the database
    CHECK ((path IS NULL) != (png IS NULL)));
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('real', 'control')),
    prompt_index INTEGER NOT NULL, prompt TEXT NOT NULL, category TEXT NOT NULL,
    model_a INTEGER REFERENCES models(model_id), model_b INTEGER REFERENCES models(model_id),
    control_kind TEXT,                              -- 'noise' or 'other-prompt' for controls
    expected TEXT NOT NULL DEFAULT '{}');           -- JSON {question: 'A'|'B'} for controls
CREATE TABLE IF NOT EXISTS trial_images (
    trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
    side TEXT NOT NULL CHECK (side IN ('A', 'B')), position INTEGER NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(image_id),
    PRIMARY KEY (trial_id, side, position));
CREATE TABLE IF NOT EXISTS raters (
    rater_id TEXT PRIMARY KEY,
    token_hash TEXT UNIQUE,                         -- sha256 of the invitation token; NULL for open sign-in
    expires_at TEXT,                                -- invitation valid until (ISO 8601 UTC); NULL: no expiry
    session_hash TEXT,                              -- sha256 of the latest sign-in's session key: older ones are out
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
CREATE TABLE IF NOT EXISTS assignments (
    rater_id TEXT NOT NULL REFERENCES raters(rater_id),
    trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
    left_side TEXT NOT NULL CHECK (left_side IN ('A', 'B')),   -- which canonical side was shown on the left
    shown_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (rater_id, trial_id));
CREATE TABLE IF NOT EXISTS votes (
    vote_id INTEGER PRIMARY KEY,
    rater_id TEXT NOT NULL REFERENCES raters(rater_id),
    trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
    question TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('A', 'tie', 'B')),
    left_side TEXT NOT NULL CHECK (left_side IN ('A', 'B')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (rater_id, trial_id, question));
CREATE INDEX IF NOT EXISTS votes_by_trial ON votes (trial_id);
CREATE INDEX IF NOT EXISTS assignments_by_trial ON assignments (trial_id);
CREATE TRIGGER IF NOT EXISTS votes_are_final BEFORE UPDATE ON votes
BEGIN SELECT RAISE(ABORT, 'votes cannot be changed'); END;
"""


def _freeze_triggers() -> str:
    statements = []
    for table in FROZEN_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS frozen_{table}_{event.lower()} BEFORE {event} ON {table} "
                f"WHEN EXISTS (SELECT 1 FROM votes) "
                f"BEGIN SELECT RAISE(ABORT, 'study is frozen: votes exist'); END;"
            )
    return "\n".join(statements)


def connect(path: str | Path, create: bool = False) -> sqlite3.Connection:
    """Open the study database in autocommit mode (transactions are explicit, see ``write``)."""
    path = Path(path)
    if not create and path.exists() and not path.is_file():
        raise EvalkitError(f"study database {path} is not a file")
    if not create and not path.is_file():
        raise EvalkitError(f"study database {path} does not exist (create it with `evalkit study create`)")
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if not create:
            try:  # read-only checks first: a file that is not ours is never switched to WAL or migrated
                version = check_study_file(conn, path)
            except EvalkitError:
                conn.close()
                raise
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if create:
            conn.executescript(SCHEMA + _freeze_triggers())
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        else:
            _add_rater_columns(conn)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # 0 -> 1: the columns are now there
            if _is_durable(conn):
                conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as error:
        raise EvalkitError(f"cannot open study database {path}: {error}") from None
    if mode.lower() != "wal":
        conn.close()
        raise EvalkitError(f"{path}: SQLite refused WAL mode (is it on a network file system?)")
    return conn


_INTACT: set[str] = set()  # study files that passed quick_check in this process (the app connects per page)


@lru_cache(maxsize=1)
def expected_columns() -> dict[str, frozenset[str]]:
    """Every table of this evalkit's study schema and its columns, read from SCHEMA itself."""
    memory = sqlite3.connect(":memory:")
    try:
        memory.executescript(SCHEMA)
        tables = [r[0] for r in memory.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: frozenset(r[1] for r in memory.execute(f"PRAGMA table_info({t})")) for t in tables}
    finally:
        memory.close()


def check_study_file(conn: sqlite3.Connection, path: str | Path) -> int:
    """The schema version of an open study database, after read-only checks that it is one this evalkit reads: its
    user_version (see SCHEMA_VERSION), every table and column of SCHEMA (version 0 may lack RATER_COLUMNS, which
    ``connect`` adds), SQLite's ``quick_check`` (a truncated or overwritten file) and a config that is a JSON
    object (when there is one). Raises a one-line
    EvalkitError; a file that is not SQLite raises sqlite3.DatabaseError (the caller names the file)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"meta", "votes"} <= found:
        raise EvalkitError(f"{path} is not an evalkit study database (it has no study tables)")
    if version not in (0, SCHEMA_VERSION):
        raise EvalkitError(f"{path} is a study database of schema version {version}; this evalkit reads version "
                           f"{SCHEMA_VERSION} (open it with the evalkit that made it)")
    for table, columns in expected_columns().items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")} if table in found else set()
        missing = sorted(columns - have - (set(RATER_COLUMNS) if version == 0 and table == "raters" else set()))
        if missing:
            what = f"table {table}" if not have else f"column {table}.{missing[0]}"
            raise EvalkitError(f"{path} is a study database of another evalkit version (no {what}); open it with "
                               "the evalkit that made it")
    key = str(Path(path).resolve())
    if key not in _INTACT:  # once per process: it reads every page (measured ~30-80 ms for a 1.8 MB study)
        verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if verdict != "ok":
            raise EvalkitError(f"{path} is damaged ({' '.join(str(verdict).split())[:160]}); restore it from a copy")
        _INTACT.add(key)
    row = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    if row is not None:  # no config yet: a study being created (read_config says so to those that need one)
        try:
            config = json.loads(row[0])
        except (TypeError, ValueError, RecursionError):
            config = None
        if not isinstance(config, dict):
            raise EvalkitError(f"{path}: the study's config is not a JSON object; the database is damaged")
    return version


def _add_rater_columns(conn: sqlite3.Connection) -> None:
    """Studies created before invitations could expire get the two nullable rater columns (no vote changes)."""
    missing = [c for c in RATER_COLUMNS if c not in {row[1] for row in conn.execute("PRAGMA table_info(raters)")}]
    if missing:
        with write(conn):
            present = {row[1] for row in conn.execute("PRAGMA table_info(raters)")}  # another process may have won
            for column in missing:
                if column not in present:
                    conn.execute(f"ALTER TABLE raters ADD COLUMN {column} TEXT")


def _is_durable(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    try:
        return bool(row is not None and json.loads(row["value"]).get("durable"))
    except (ValueError, AttributeError):
        raise EvalkitError("the study database's config is not a JSON object") from None


def synchronous(conn: sqlite3.Connection) -> str:
    """This connection's fsync policy: 'NORMAL' (default) or 'FULL' (a durable study)."""
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[conn.execute("PRAGMA synchronous").fetchone()[0]]


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; takes the write lock up front so two writers never deadlock on an upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_config(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    if row is None:
        raise EvalkitError("the study database has no study in it (create it with `evalkit study create`)")
    return json.loads(row["value"])


def vote_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
