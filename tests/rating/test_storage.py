"""The study database: WAL, unique votes, frozen definitions, and no lost vote under 50 concurrent raters."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time

import pytest

from evalkit.errors import EvalkitError
from evalkit.rating import db
from evalkit.rating.build import create_study
from evalkit.rating.session import next_trial, record_answers, sign_in


@pytest.fixture
def study(two_runs, tmp_path):
    path = tmp_path / "study.sqlite"
    create_study(path, two_runs, ["quality", "alignment"], control_fraction=0.2)
    return path


def test_database_is_wal_with_busy_timeout(study):
    conn = db.connect(study)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


def test_double_submit_changes_nothing(study):
    conn = db.connect(study)
    rater = sign_in(conn, "alice")
    view = next_trial(conn, rater)
    assert record_answers(conn, rater, view.trial_id, {"quality": "left", "alignment": "tie"}) == 2
    assert record_answers(conn, rater, view.trial_id, {"quality": "right", "alignment": "right"}) == 0
    rows = conn.execute("SELECT question, choice, left_side FROM votes ORDER BY question").fetchall()
    assert [(r["question"], r["choice"]) for r in rows] == [("alignment", "tie"), ("quality", rows[1]["left_side"])]
    with pytest.raises(sqlite3.IntegrityError, match="cannot be changed"):
        conn.execute("UPDATE votes SET choice = 'B'")


def test_votes_only_on_trials_shown_to_that_rater(study):
    conn = db.connect(study)
    alice, bob = sign_in(conn, "alice"), sign_in(conn, "bob")
    view = next_trial(conn, alice)
    with pytest.raises(EvalkitError, match="not shown"):
        record_answers(conn, bob, view.trial_id, {"quality": "left", "alignment": "left"})
    with pytest.raises(EvalkitError, match="answer every question"):
        record_answers(conn, alice, view.trial_id, {"quality": "left"})
    with pytest.raises(EvalkitError, match="one of"):
        record_answers(conn, alice, view.trial_id, {"quality": "A", "alignment": "left"})


def test_sides_are_randomised_and_recorded(study):
    conn = db.connect(study)
    sides = []
    for number in range(12):
        rater = sign_in(conn, f"rater{number}")
        view = next_trial(conn, rater)
        left = conn.execute("SELECT left_side FROM assignments WHERE rater_id = ? AND trial_id = ?",
                            (rater, view.trial_id)).fetchone()[0]
        a_images = [r[0] for r in conn.execute(
            "SELECT image_id FROM trial_images WHERE trial_id = ? AND side = 'A' ORDER BY position", (view.trial_id,))]
        assert (view.left_images == a_images) == (left == "A")
        sides.append(left)
    assert set(sides) == {"A", "B"}  # 12 fair coin flips all equal: p = 2^-11


def test_study_definition_is_frozen_once_votes_exist(study, two_runs):
    conn = db.connect(study)
    rater = sign_in(conn, "alice")
    view = next_trial(conn, rater)
    conn.execute("UPDATE trials SET prompt = prompt")  # allowed while no vote exists
    record_answers(conn, rater, view.trial_id, {"quality": "left", "alignment": "left"})
    for statement in ("UPDATE meta SET value = '{}'", "DELETE FROM trials", "UPDATE images SET path = 'x'",
                      "INSERT INTO models VALUES (9, 'x', '/')", "UPDATE trial_images SET position = 7"):
        with pytest.raises(sqlite3.IntegrityError, match="frozen"):
            conn.execute(statement)
    conn.close()
    with pytest.raises(EvalkitError, match="frozen"):
        create_study(study, two_runs, ["quality"], replace=True)


def _rater_process(path: str, rater: str, n_votes: int, queue) -> None:
    conn = db.connect(path)
    sign_in(conn, rater)
    new = 0
    for _ in range(n_votes):
        view = next_trial(conn, rater)
        new += record_answers(conn, rater, view.trial_id, {"quality": "left"})
        # a second submit of the same form, as a double click would send
        new += record_answers(conn, rater, view.trial_id, {"quality": "right"})
    queue.put((rater, new))


def test_fifty_raters_hundred_votes_each_in_parallel(tmp_path):
    from tests.rating.conftest import make_run

    runs = [make_run(tmp_path, "run-a", prompts=100, samples=1, size=8),
            make_run(tmp_path, "run-b", prompts=100, samples=1, size=8)]
    path = tmp_path / "busy.sqlite"
    create_study(path, runs, ["quality"], set_size=1, control_fraction=0)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    started = time.perf_counter()
    workers = [context.Process(target=_rater_process, args=(str(path), f"r{i:02d}", 100, queue)) for i in range(50)]
    for worker in workers:
        worker.start()
    results = dict(queue.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    elapsed = time.perf_counter() - started
    assert all(worker.exitcode == 0 for worker in workers)
    assert results == {f"r{i:02d}": 100 for i in range(50)}  # each process saw exactly its 100 new votes
    conn = db.connect(path)
    total, distinct = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT rater_id || ':' || trial_id || ':' || question) FROM votes").fetchone()
    assert (total, distinct) == (5000, 5000)
    per_rater = conn.execute("SELECT COUNT(DISTINCT trial_id) FROM votes GROUP BY rater_id").fetchall()
    assert [r[0] for r in per_rater] == [100] * 50  # every rater saw every trial exactly once
    assert all(r["choice"] == r["left_side"] for r in conn.execute("SELECT choice, left_side FROM votes"))
    print(f"50 raters x 100 votes: {elapsed:.1f} s")


def test_trials_per_rater_cap_and_least_seen_trials_first(two_runs, tmp_path):
    path = tmp_path / "capped.sqlite"
    create_study(path, two_runs, ["quality"], control_fraction=0, trials_per_rater=3)  # 6 trials
    conn = db.connect(path)
    seen = {}
    for rater in ("alice", "bob"):
        sign_in(conn, rater)
        seen[rater] = []
        while (view := next_trial(conn, rater)) is not None:
            seen[rater].append(view.trial_id)
            record_answers(conn, rater, view.trial_id, {"quality": "tie"})
    assert len(seen["alice"]) == len(seen["bob"]) == 3
    assert not set(seen["alice"]) & set(seen["bob"])  # bob got the trials nobody had rated yet


def test_refresh_before_voting_keeps_the_same_trial_and_sides(study):
    conn = db.connect(study)
    rater = sign_in(conn, "alice")
    first = next_trial(conn, rater)
    assert next_trial(conn, rater) == first
    assert conn.execute("SELECT COUNT(*) FROM assignments").fetchone()[0] == 1
