"""Study databases that are not what they claim: not SQLite, another program's SQLite, another schema version,
truncated or overwritten. `evalkit study summarize/export/invite/create`, `evalkit report --study` and the app's
``db.connect`` each end with one line (exit 2), and never change the file: no WAL switch, no migration, no
deletion.

    .venv/bin/python -m pytest tests/rating/test_hostile_db.py -q
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from evalkit.errors import EvalkitError
from evalkit.rating import db
from tests.hostile import evalkit_cli
from tests.rating.conftest import make_run


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    """A real study (two fake runs, one vote-less study database made by `evalkit study create`), checkpointed so
    the database is one self-contained file."""
    root = tmp_path_factory.mktemp("hostile-db")
    runs = [make_run(root, "run-alpha", colour=(200, 30, 30)), make_run(root, "run-beta", colour=(30, 30, 200))]
    study = root / "study.sqlite"
    outcome = evalkit_cli(["study", "create", "--runs", *runs, "--db", study, "--set-size", "2"])
    assert outcome.code == 0, outcome.describe()
    conn = sqlite3.connect(study)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    return {"root": root, "runs": runs, "study": study}


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _copy_then(*statements):
    def make(template, path):
        shutil.copy(template["study"], path)
        _sql(path, *statements)
    return make


def _bytes(data: bytes):
    return lambda template, path: path.write_bytes(data)


def _cut(fraction):
    def make(template, path):
        data = template["study"].read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])
    return make


def _overwrite_middle(template, path):
    data = bytearray(template["study"].read_bytes())
    page = 4096
    data[page: page * 3] = b"\xa5" * (page * 2)  # pages 2-3: b-tree pages turned to noise, header intact
    path.write_bytes(bytes(data))


def _other_program(template, path):
    _sql(path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users VALUES (1, 'ada')")


def _other_votes(template, path):
    _sql(path, "CREATE TABLE meta (key TEXT, value TEXT)", "CREATE TABLE votes (id INTEGER, ballot TEXT)",
         "INSERT INTO votes VALUES (1, 'yes')")


# (name, how the file is made, a regex of the one-line error)
CASES = [
    ("text", _bytes(b"hello, I am not a database\n"), r"cannot open study database .*: file is not a database"),
    ("png", _bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), r"file is not a database"),
    ("empty", _bytes(b""), r"is not an evalkit study database \(it has no study tables\)"),
    ("other-program", _other_program, r"is not an evalkit study database \(it has no study tables\)"),
    ("other-votes-table", _other_votes, r"another evalkit version \(no table models\)"),
    ("schema-version-2", _copy_then("PRAGMA user_version = 2"), r"schema version 2; this evalkit reads version 1"),
    ("schema-version-99", _copy_then("PRAGMA user_version = 99"), r"schema version 99"),
    ("schema-version-negative", _copy_then("PRAGMA user_version = -1"), r"schema version -1"),
    ("table-dropped", _copy_then("DROP TABLE trial_images"), r"another evalkit version \(no table trial_images\)"),
    ("column-dropped", _copy_then("ALTER TABLE trials DROP COLUMN control_kind"), r"no column trials\.control_kind"),
    ("truncated-half", _cut(0.5), r"(malformed|damaged|not a database)"),
    ("truncated-header", _cut(0.02), r"(malformed|damaged|not a database)"),
    ("pages-overwritten", _overwrite_middle, r"(malformed|damaged|not a database)"),
    ("config-not-json", _copy_then("UPDATE meta SET value = '{oops' WHERE key = 'config'"),
     r"the study's config is not a JSON object"),
    ("config-list", _copy_then("UPDATE meta SET value = '[1, 2]' WHERE key = 'config'"),
     r"the study's config is not a JSON object"),
]


def commands(template, path: Path, tmp: Path) -> dict[str, list]:
    return {
        "summarize": ["study", "summarize", "--db", path, "--bootstrap", "50"],
        "summarize --json": ["study", "summarize", "--db", path, "--bootstrap", "50", "--json"],
        "export": ["study", "export", "--db", path, "--out", tmp / "votes.csv"],
        "invite": ["study", "invite", "--db", path],
        "create --force": ["study", "create", "--runs", *template["runs"], "--db", path, "--set-size", "2",
                           "--force"],
        "report --study": ["report", *template["runs"], "--study", path, "--out", tmp / "report"],
    }


@pytest.mark.parametrize("name, make, message", CASES, ids=[c[0] for c in CASES])
def test_every_opener_refuses_it_in_one_line_and_leaves_it_alone(template, tmp_path, name, make, message):
    import re

    path = tmp_path / "study.sqlite"
    make(template, path)
    before = path.read_bytes()
    with pytest.raises(EvalkitError) as info:
        db.connect(path).close()  # what the app's pages call
    assert re.search(message, str(info.value)) and "\n" not in str(info.value), str(info.value)
    for label, argv in commands(template, path, tmp_path).items():
        outcome = evalkit_cli(argv)
        assert outcome.clean_error, f"{label}: {outcome.describe()}"
        if label != "report --study":  # the report has its own wording for a study it cannot read
            assert re.search(message, outcome.error_lines[0]), f"{label}: {outcome.describe()}"
        assert path.read_bytes() == before, f"{label} changed the file"
        assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0, f"{label} made a WAL"
    assert not (tmp_path / "votes.csv").exists()


def test_a_directory_is_not_a_study(template, tmp_path):
    with pytest.raises(EvalkitError, match="is not a file"):
        db.connect(tmp_path)


def test_a_study_from_before_schema_versions_opens_and_is_upgraded(template, tmp_path):
    """Version 0: every study made before PRAGMA user_version was set (and before the rater expiry columns)."""
    path = tmp_path / "old.sqlite"
    shutil.copy(template["study"], path)
    _sql(path, "PRAGMA user_version = 0", "ALTER TABLE raters DROP COLUMN expires_at",
         "ALTER TABLE raters DROP COLUMN session_hash")
    outcome = evalkit_cli(["study", "summarize", "--db", path, "--bootstrap", "50", "--json"])
    assert outcome.code == 0, outcome.describe()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert {"expires_at", "session_hash"} <= {r[1] for r in conn.execute("PRAGMA table_info(raters)")}
    conn.close()
    assert evalkit_cli(["study", "invite", "--db", path]).code == 0


def test_a_new_study_records_its_schema_version(template, tmp_path):
    path = tmp_path / "study.sqlite"
    shutil.copy(template["study"], path)  # the template stays as it is: other tests copy it
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION == 1
    conn.close()
    summary = evalkit_cli(["study", "summarize", "--db", path, "--bootstrap", "50", "--json"])
    assert summary.code == 0 and json.loads(summary.stdout), summary.describe()


def test_a_study_database_without_a_study_is_said_and_can_be_replaced(template, tmp_path):
    """Tables but no config: a `study create` that was killed before its first commit. Readers say so in one line;
    `study create --force` may replace it (it is evalkit's own file, and it holds no votes)."""
    path = tmp_path / "study.sqlite"
    _copy_then("DELETE FROM meta")(template, path)
    for argv in (["study", "summarize", "--db", path], ["study", "invite", "--db", path]):
        outcome = evalkit_cli(argv)
        assert outcome.clean_error and "no study in it" in outcome.error_lines[0], outcome.describe()
    outcome = evalkit_cli(["study", "create", "--runs", *template["runs"], "--db", path, "--set-size", "2", "--force"])
    assert outcome.code == 0, outcome.describe()
