"""The rating study under load: raters at once on the storage layer (threads, processes) and in headless Chromium
through the real app, every submitted answer checked against the votes table; durable studies (synchronous=FULL).

Full counts: `python -m evalkit.experiments.rating_load` (or `pytest -m slow tests/rating/test_load.py`)."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from evalkit.cli import main as cli_main
from evalkit.experiments.rating_browser import Submission, check_votes
from evalkit.experiments.rating_load import browser_load, make_study, storage_load
from evalkit.experiments.rating_storage import storage_raters
from evalkit.rating import db


def _assert_nothing_lost(result: dict, raters: int, trials: int) -> None:
    assert result["ok"], result
    assert result["trials"] == raters * trials
    assert result["votes_submitted"] == result["votes_recorded"] == 2 * raters * trials
    assert (result["lost"], result["duplicated"], result["changed"], result["unsubmitted"]) == (0, 0, 0, 0)
    if "repeats_tried" in result:  # every trial was submitted a second time with other answers
        assert result["repeats_refused"] == result["repeats_tried"] == raters * trials
        assert result["first_submits_short"] == 0
    print(result)


def test_fifty_raters_hundred_trials_each_in_threads(tmp_path):
    """Streamlit's own model: every browser session is a thread of one server process, each with a connection."""
    _assert_nothing_lost(storage_load(tmp_path, 50, 100, "threads"), 50, 100)


@pytest.mark.parametrize("trials", [pytest.param(30), pytest.param(100, marks=pytest.mark.slow)])
def test_fifty_raters_in_processes(tmp_path, trials):
    """Several server processes (or CLI tools) on one study file."""
    _assert_nothing_lost(storage_load(tmp_path, 50, trials, "processes"), 50, trials)


def test_the_vote_check_sees_lost_changed_duplicated_and_unsubmitted_votes(tmp_path):
    path = make_study(tmp_path, prompts=5, set_size=1)
    results, _ = storage_raters(path, 3, 5, ["quality", "alignment"], workers="threads")
    submissions = [s for r in results for s in r.submissions]
    assert check_votes(path, submissions).ok
    loose = tmp_path / "loose.sqlite"  # the schema forbids all four; copies of the tables without it allow them
    raw = sqlite3.connect(loose)
    raw.execute("ATTACH DATABASE ? AS study", (str(path),))
    raw.executescript("CREATE TABLE votes AS SELECT * FROM study.votes; CREATE TABLE trials AS SELECT * FROM"
                      " study.trials; DETACH DATABASE study;")
    first, second = submissions[0], submissions[1]
    raw.execute("DELETE FROM votes WHERE rater_id = ? AND trial_id = ? AND question = 'quality'",
                (first.rater_id, first.trial_id))
    raw.execute("UPDATE votes SET choice = CASE choice WHEN 'tie' THEN 'A' ELSE 'tie' END"
                " WHERE rater_id = ? AND trial_id = ? AND question = 'alignment'", (second.rater_id, second.trial_id))
    raw.execute("INSERT INTO votes SELECT vote_id + 1000, rater_id, trial_id, question, choice, left_side, created_at"
                " FROM votes WHERE rater_id = ? AND trial_id = ? AND question = 'quality'",
                (second.rater_id, second.trial_id))
    raw.execute("INSERT INTO votes (vote_id, rater_id, trial_id, question, choice, left_side, created_at)"
                " VALUES (5000, ?, 999, 'quality', 'A', 'A', '2020-01-01T00:00:00.000Z')", (first.rater_id,))
    raw.commit()
    raw.close()
    assert check_votes(path, submissions).ok
    check = check_votes(loose, submissions)
    assert (check.lost, check.changed, check.duplicated, check.unsubmitted) == (1, 1, 1, 1) and not check.ok
    forged = Submission(first.rater_id, first.trial_id, first.answers, first.submitted_at, prompt_shown="another")
    assert check_votes(path, [forged]).wrong_trial == 1


def test_durable_study_fsyncs_every_commit_and_the_default_does_not(tmp_path):
    conn = db.connect(make_study(tmp_path / "default", prompts=4, set_size=1))
    assert db.synchronous(conn) == "NORMAL" and not db.read_config(conn)["durable"]
    conn.close()
    result = storage_load(tmp_path / "durable", 8, 10, "threads", durable=True)
    assert result["synchronous"] == "FULL"
    _assert_nothing_lost(result, 8, 10)


def test_create_durable_on_the_command_line(two_runs, tmp_path, capsys):
    path = tmp_path / "durable.sqlite"
    assert cli_main(["study", "create", "--runs", *map(str, two_runs), "--db", str(path), "--durable"]) == 0
    conn = db.connect(path)
    assert db.read_config(conn)["durable"] is True and db.synchronous(conn) == "FULL"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_study_from_before_invitation_expiry_gains_the_columns_and_keeps_its_votes(tmp_path):
    path = make_study(tmp_path, prompts=3, set_size=1)
    results, _ = storage_raters(path, 2, 3, ["quality", "alignment"], workers="threads")
    raw = sqlite3.connect(path)
    before = raw.execute("SELECT * FROM votes ORDER BY vote_id").fetchall()
    raw.execute("ALTER TABLE raters DROP COLUMN expires_at")
    raw.execute("ALTER TABLE raters DROP COLUMN session_hash")
    raw.execute("PRAGMA user_version = 0")  # as such a study was: made before the schema version was recorded
    raw.commit()
    raw.close()
    conn = db.connect(path)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(raters)")}
    assert {"expires_at", "session_hash"} <= columns
    assert [tuple(r) for r in conn.execute("SELECT * FROM votes ORDER BY vote_id")] == before
    assert check_votes(path, [s for r in results for s in r.submissions]).ok


def _browser_available():
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.async_api", reason="the playwright Python package is not installed")


@pytest.mark.browser
@pytest.mark.parametrize("raters,trials", [pytest.param(4, 5), pytest.param(8, 10, marks=pytest.mark.slow)])
def test_raters_at_once_in_chromium_through_the_app(tmp_path, raters, trials):
    _browser_available()
    result = browser_load(tmp_path, raters, trials)
    _assert_nothing_lost(result, raters, trials)
    assert result["dialogs"] == 0 and result["wrong_trial"] == 0
