"""Attacks on a rating study below the web page (what a forged request reaches): vote stuffing, forged ids, votes
on trials never shown, expired and reused invitations, admin tokens, CSV injection in exports. Every one refused."""

from __future__ import annotations

import csv
import hmac
import sqlite3
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from evalkit.cli import main as cli_main
from evalkit.errors import EvalkitError
from evalkit.experiments.rating_app import synthetic_run
from evalkit.rating import db, session
from evalkit.rating.build import create_study
from evalkit.rating.images import image_bytes
from evalkit.rating.session import (check_session, create_invitations, next_trial, record_answers, sign_in,
                                    start_session)
from evalkit.rating.votes import export_votes, spreadsheet_safe

BOTH = {"quality": "left", "alignment": "tie"}


@pytest.fixture
def study(two_runs, tmp_path):
    path = tmp_path / "study.sqlite"
    create_study(path, two_runs, ["quality", "alignment"], control_fraction=0.2)
    return path


def _votes(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute("SELECT rater_id, trial_id, question, choice FROM votes ORDER BY vote_id")]


@pytest.fixture
def voter(study):
    """alice, signed in with a session, looking at her first trial."""
    conn = db.connect(study)
    key = start_session(conn, sign_in(conn, "alice"))
    view = next_trial(conn, "alice")
    yield conn, key, view
    conn.close()


def test_repeated_votes_on_one_trial_add_nothing(voter):
    conn, key, view = voter
    assert record_answers(conn, "alice", view.trial_id, BOTH, session_key=key) == 2
    first = _votes(conn)
    for answers in ({"quality": "right", "alignment": "right"}, BOTH, {"quality": "tie", "alignment": "left"}):
        assert record_answers(conn, "alice", view.trial_id, answers, session_key=key) == 0
    assert _votes(conn) == first
    with pytest.raises(sqlite3.IntegrityError, match="cannot be changed"):  # not even behind the app's back
        conn.execute("UPDATE votes SET choice = 'B'")


@pytest.mark.parametrize("forged", [10**9, -1, 0, "1 OR 1=1", "1; DROP TABLE votes", None, 2**63 - 1])
def test_forged_trial_ids_are_refused(voter, forged):
    conn, key, _ = voter
    with pytest.raises(EvalkitError, match="not shown to this rater"):
        record_answers(conn, "alice", forged, BOTH, session_key=key)
    assert _votes(conn) == [] and conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0] > 0


def test_votes_on_trials_not_assigned_to_the_rater_are_refused(voter):
    conn, key, view = voter
    bob_key = start_session(conn, sign_in(conn, "bob"))
    bobs = next_trial(conn, "bob")
    assert bobs.trial_id != view.trial_id  # bob gets the least-seen trial
    never_shown = conn.execute("SELECT trial_id FROM trials WHERE trial_id NOT IN (SELECT trial_id FROM assignments)"
                               " LIMIT 1").fetchone()[0]
    for trial_id in (bobs.trial_id, never_shown):
        with pytest.raises(EvalkitError, match="not shown to this rater"):
            record_answers(conn, "alice", trial_id, BOTH, session_key=key)
    with pytest.raises(EvalkitError, match="not shown to this rater"):
        record_answers(conn, "bob", view.trial_id, BOTH, session_key=bob_key)
    assert _votes(conn) == []


@pytest.mark.parametrize("answers", [
    {"quality": "A", "alignment": "B"},                           # canonical sides instead of screen sides
    {"quality": "left"},                                          # a question missing
    {"quality": "left", "alignment": "left", "colour": "left"},   # a question the study does not ask
    {"quality": "<script>", "alignment": "left"}, {"quality": None, "alignment": "left"},
])
def test_forged_answers_are_refused(voter, answers):
    conn, key, view = voter
    with pytest.raises(EvalkitError):
        record_answers(conn, "alice", view.trial_id, answers, session_key=key)
    assert _votes(conn) == []


@pytest.mark.parametrize("forged", ["", "x" * 16, "../images/00000_00.png", "' OR '1'='1", "%00", "run-alpha"])
def test_forged_image_ids_are_refused(voter, forged):
    conn, _, view = voter
    assert image_bytes(conn, view.left_images[0]).startswith(b"\x89PNG")
    with pytest.raises(EvalkitError, match="unknown image"):
        image_bytes(conn, forged)


def test_expired_invitation_is_refused_at_sign_in_and_at_the_vote(study):
    conn = db.connect(study)
    [(old_id, old)] = create_invitations(conn, 1, expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    with pytest.raises(EvalkitError, match="expired"):
        sign_in(conn, old)
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    [(rater_id, token)] = create_invitations(conn, 1, expires_at=soon)
    key = start_session(conn, sign_in(conn, token))
    view = next_trial(conn, rater_id)
    raw = sqlite3.connect(study)  # the clock passes the expiry while the rater's window is open
    raw.execute("UPDATE raters SET expires_at = ? WHERE rater_id = ?",
                ((datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat(), rater_id))
    raw.commit()
    raw.close()
    with pytest.raises(EvalkitError, match="expired"):
        record_answers(conn, rater_id, view.trial_id, BOTH, session_key=key)
    assert _votes(conn) == []


def test_invite_cli_valid_hours_sets_the_expiry(study, capsys):
    assert cli_main(["study", "invite", "--db", str(study), "--count", "2", "--valid-hours", "2"]) == 0
    captured = capsys.readouterr()
    assert "valid until" in captured.err
    conn = db.connect(study)
    expiries = [datetime.fromisoformat(r[0]) for r in conn.execute("SELECT expires_at FROM raters")]
    assert len(expiries) == 2
    assert all(timedelta(hours=1.99) < e - datetime.now(timezone.utc) <= timedelta(hours=2) for e in expiries)
    with pytest.raises(SystemExit) as refused:
        cli_main(["study", "invite", "--db", str(study), "--valid-hours", "0"])
    assert refused.value.code == 2 and "--valid-hours" in capsys.readouterr().err


def test_a_reused_invitation_signs_the_older_window_out(study):
    conn = db.connect(study)
    [(rater_id, token)] = create_invitations(conn, 1)
    first = start_session(conn, sign_in(conn, token))
    view = next_trial(conn, rater_id)
    assert record_answers(conn, rater_id, view.trial_id, BOTH, session_key=first) == 2
    second = start_session(conn, sign_in(conn, token))  # the token again: another browser, or another person
    view = next_trial(conn, rater_id)
    with pytest.raises(EvalkitError, match="signed out"):
        record_answers(conn, rater_id, view.trial_id, BOTH, session_key=first)
    with pytest.raises(EvalkitError, match="signed out"):
        check_session(conn, rater_id, first)
    for stale in ("", None, first.upper()):
        with pytest.raises(EvalkitError, match="signed out"):
            record_answers(conn, rater_id, view.trial_id, BOTH, session_key=stale or "")
    assert record_answers(conn, rater_id, view.trial_id, BOTH, session_key=second) == 2
    assert len(_votes(conn)) == 4  # two trials, never a third voter's worth
    assert conn.execute("SELECT session_hash FROM raters").fetchone()[0] not in (first, second)  # hashed


@pytest.mark.parametrize("invite_only", [True, False])
def test_near_tokens_and_invited_ids_never_sign_in_as_the_invited_rater(two_runs, tmp_path, invite_only):
    path = tmp_path / "study.sqlite"
    create_study(path, two_runs, ["quality"], invite_only=invite_only)
    conn = db.connect(path)
    [(rater_id, token)] = create_invitations(conn, 1)
    for text in ("inv-" + "A" * 22, token[:-1], token + "x", token.upper(), " " + token.upper(), rater_id):
        try:
            signed_in = sign_in(conn, text)
        except EvalkitError:
            continue
        assert not invite_only and signed_in != rater_id  # an open study: at most a new, empty rater
    assert sign_in(conn, f"  {token}\n") == rater_id


@pytest.mark.parametrize("prefix", ["=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", "[x](http://x)", "a b", ""])
def test_hostile_invitation_prefixes_are_refused(study, prefix):
    conn = db.connect(study)
    with pytest.raises(EvalkitError, match="prefix"):
        create_invitations(conn, 1, prefix=prefix)
    assert conn.execute("SELECT COUNT(*) FROM raters").fetchone()[0] == 0


def test_admin_token_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    token = "a-long-admin-token-for-tests-123"
    assert session.check_token(token, token)
    for wrong in (token[:-1] + "4", token[:-1], token + "4", "x", token.upper()):
        assert not session.check_token(wrong, token)
    # every guess went through compare_digest, as equal-length digests: the time says nothing of the token
    assert len(calls) == 6 and all(len(a) == len(b) == 32 for a, b in calls)
    assert not session.check_token(None, token) and not session.check_token(token, None)


FORMULAS = ["=1+2", "+SUM(A1:A2)", "-2+3", "@SUM(A1)", "\t=1+2", "\r=1+2", "=HYPERLINK(\"http://x\",\"y\")"]


@pytest.fixture
def hostile_export_study(tmp_path):
    """Prompts, categories, run ids and a rater id that a spreadsheet would execute."""
    runs = [synthetic_run(tmp_path, name, prompts=len(FORMULAS), samples=2, shade=shade, prompt_format="{}")
            for name, shade in (("run-left", 200), ("run-right", 30))]
    path = tmp_path / "hostile.sqlite"
    create_study(path, runs, ["quality"], set_size=2, control_fraction=0)
    raw = sqlite3.connect(path)  # what a hand-edited benchmark file or database could hold
    for index, formula in enumerate(FORMULAS):
        raw.execute("UPDATE trials SET prompt = ?, category = ? WHERE prompt_index = ?", (formula, formula, index))
    raw.execute("UPDATE models SET run_id = CASE model_id WHEN 0 THEN '-2+3' ELSE '@SUM(A1)' END")
    raw.execute("INSERT INTO raters (rater_id) VALUES ('=cmd|'' /C calc''!A0')")  # as a tampered database holds
    raw.commit()
    raw.close()
    conn = db.connect(path)
    for rater in ("=cmd|' /C calc'!A0", sign_in(conn, "plain-rater")):
        start_session(conn, rater)
        while (view := next_trial(conn, rater)) is not None:
            record_answers(conn, rater, view.trial_id, {"quality": "tie"})
    conn.close()
    return path


def test_csv_export_neutralises_formulas_and_parquet_keeps_raw_values(hostile_export_study, tmp_path):
    conn = db.connect(hostile_export_study)
    rows = export_votes(conn, tmp_path / "votes.csv")
    assert export_votes(conn, tmp_path / "votes.parquet") == rows == 2 * len(FORMULAS)
    table = pd.read_csv(tmp_path / "votes.csv", dtype=str, keep_default_na=False)
    raw = pd.read_parquet(tmp_path / "votes.parquet")
    starts = ("=", "+", "-", "@", "\t", "\r")
    for column in ("prompt", "category", "rater_id", "model_a", "model_b"):
        assert not any(cell.startswith(starts) for cell in table[column]), column
        assert list(table[column]) == [spreadsheet_safe(v) for v in raw[column]], column
    assert set(raw["prompt"]) == set(FORMULAS)  # parquet: exactly what the study holds
    assert "'=1+2" in set(table["prompt"]) and "'\t=1+2" in set(table["prompt"])
    assert set(raw["rater_id"]) == {"=cmd|' /C calc'!A0", "plain-rater"}
    assert (table["prompt_index"].astype(int) >= 0).all() and table["vote_id"].str.isdigit().all()  # numbers untouched


def test_cli_export_is_the_neutralised_csv(hostile_export_study, tmp_path):
    out = tmp_path / "cli.csv"
    assert cli_main(["study", "export", "--db", str(hostile_export_study), "--out", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as handle:  # as a spreadsheet reads it: CR stays in its cell
        header, *rows = list(csv.reader(handle))
    assert len(rows) == 2 * len(FORMULAS) and all(len(row) == len(header) for row in rows)
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert {row[header.index("prompt")] for row in rows} == {"'" + formula for formula in FORMULAS}
